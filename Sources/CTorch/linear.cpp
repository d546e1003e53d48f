// Inference linears of our own: few-row products (decode steps) and oneDNN's gemm.
#include "kernels.h"

// A decode step multiplies a few rows by every weight matrix once, so it is bound by reading the weights. The BLAS
// and oneDNN kernels libtorch reaches read them at 12-18 GB/s here, about half of what the memory streams: they walk
// several weight rows at once (several streams the prefetcher must track), or pack a transposed copy first. The
// kernel below reads the weight one row at a time, front to back, each thread a contiguous block of rows, and
// reaches the streaming rate (measured 1.6-2x faster for a decode step's weights, fp32 and bf16, 1-16 rows).
namespace few_rows {
constexpr int64_t max_rows = 16;

// y[r, j] = bias[j] + x[r, :] . w[j, :] for weight rows j in [j0, j1), all m input rows (fp32 sums).
template <typename W>
CT_INLINE void dot_rows(const float *x, int64_t m, const W *w, const float *bias, int64_t k, float *y, int64_t n,
                        int64_t j0, int64_t j1) {
  for (int64_t j = j0; j < j1; j++) {
    for (int64_t r = 0; r < m; r++) {  // the weight row stays in L1 across the input rows
      const float s = vec::dot(w + j * k, x + r * k, k);
      y[r * n + j] = bias ? s + bias[j] : s;
    }
  }
}

CT_VECTOR_CLONES void rows_f32(const float *x, int64_t m, const float *w, const float *bias, int64_t k, float *y,
                               int64_t n, int64_t j0, int64_t j1) {
  dot_rows(x, m, w, bias, k, y, n, j0, j1);
}
CT_VECTOR_CLONES void rows_bf16(const float *x, int64_t m, const c10::BFloat16 *w, const float *bias, int64_t k,
                                float *y, int64_t n, int64_t j0, int64_t j1) {
  dot_rows(x, m, w, bias, k, y, n, j0, j1);
}

// y = x w^T + b for inference with up to max_rows rows, or an undefined tensor when this case is not one for it.
// fp32 sums from fp32 inputs; a bf16 weight under fp32 inputs takes bf16(x) (as the bf16 product it stands for); a
// bf16 model's result is rounded to bf16 once at the end.
at::Tensor linear(const at::Tensor &x, const at::Tensor &w, const c10::optional<at::Tensor> &b) {
  const auto type = x.scalar_type(), wtype = w.scalar_type();
  if (!((type == at::kFloat || type == at::kBFloat16) && (wtype == at::kFloat || wtype == at::kBFloat16)) ||
      (type == at::kBFloat16 && wtype == at::kFloat) || w.dim() != 2 || x.dim() < 1 || !x.device().is_cpu() ||
      !w.device().is_cpu() || !w.is_contiguous() || x.size(-1) != w.size(1))
    return {};
  const at::Tensor bias_in = b && b->defined() ? *b : at::Tensor();
  const bool has_bias = bias_in.defined();
  if (has_bias && (bias_in.dim() != 1 || bias_in.size(0) != w.size(0) || !bias_in.device().is_cpu() ||
                   !bias_in.is_floating_point()))
    return {};
  if (!no_grad({&x, &w, &bias_in})) return {};
  const int64_t k = w.size(1), n = w.size(0), m = k == 0 ? 0 : x.numel() / k;
  if (m == 0 || m > max_rows || k == 0) return {};
  at::Tensor rows = x.reshape({m, k});
  if (type == at::kFloat && wtype == at::kBFloat16) rows = rows.to(at::kBFloat16);
  rows = rows.to(at::kFloat).contiguous();
  const at::Tensor bias = has_bias ? bias_in.to(at::kFloat).contiguous() : at::Tensor();
  at::Tensor y = at::empty({m, n}, x.options().dtype(at::kFloat));
  const float *xp = rows.data_ptr<float>(), *bp = has_bias ? bias.data_ptr<float>() : nullptr;
  float *yp = y.data_ptr<float>();
  // Blocks of at least 16 KB of weights per thread: below that, starting threads costs more than it saves.
  const int64_t min_block = std::max<int64_t>(1, 4096 / k);
  if (wtype == at::kFloat) {
    const float *wp = w.data_ptr<float>();
    team::parallel_blocks(n, min_block, [&](int64_t j0, int64_t j1) { rows_f32(xp, m, wp, bp, k, yp, n, j0, j1); });
  } else {
    const c10::BFloat16 *wp = w.data_ptr<c10::BFloat16>();
    team::parallel_blocks(n, min_block, [&](int64_t j0, int64_t j1) { rows_bf16(xp, m, wp, bp, k, yp, n, j0, j1); });
  }
  auto sizes = x.sizes().vec();
  sizes.back() = n;
  return (type == at::kBFloat16 ? y.to(at::kBFloat16) : y).view(sizes);
}
}  // namespace few_rows

// Inference products with more rows than few_rows takes go through oneDNN's gemm when the libtorch in use exports
// it (Debian's does; a PyTorch wheel keeps oneDNN private):
// - fp32 inputs and weights: dnnl_sgemm, faster here than the OpenBLAS (OpenMP build) sgemm libtorch calls at this
//   project's mid-size shapes. Measured on whole layer sequences vs at::linear: MiniLM layers at 320-512 rows
//   1.09-1.20x, the bench LLaVA's decoder at 360 rows 1.15x, at 1440 rows 1.06-1.08x; one 640x384 by 384 product
//   0.96 vs 1.40 ms.
// - a bf16 weight under fp32 inputs (`--bf16-weights`): the bf16 gemm, bf16 inputs, fp32 sums and an fp32 result
//   with no bf16 copy of the output.
// Both sum in fp32, in their own order: results differ from libtorch's in the last bits, as two BLAS libraries do.
namespace onednn {
using bf16gemm_fn = int (*)(char, char, int64_t, int64_t, int64_t, float, const void *, int64_t, const void *, int64_t,
                            float, float *, int64_t);
const sgemm_fn sgemm = reinterpret_cast<sgemm_fn>(dlsym(RTLD_DEFAULT, "dnnl_sgemm"));
const bf16gemm_fn bf16gemm = reinterpret_cast<bf16gemm_fn>(dlsym(RTLD_DEFAULT, "dnnl_gemm_bf16bf16f32"));

at::Tensor linear(const at::Tensor &x, const at::Tensor &w, const c10::optional<at::Tensor> &b) {
  const bool fp32 = w.scalar_type() == at::kFloat, bf16 = w.scalar_type() == at::kBFloat16;
  if (x.scalar_type() != at::kFloat || !((fp32 && sgemm) || (bf16 && bf16gemm)) || w.dim() != 2 || x.dim() < 1 ||
      !x.device().is_cpu() || !w.device().is_cpu() || !w.is_contiguous() || x.size(-1) != w.size(1))
    return {};
  const at::Tensor bias_in = b && b->defined() ? *b : at::Tensor();
  const bool has_bias = bias_in.defined();
  if (has_bias && (bias_in.dim() != 1 || bias_in.size(0) != w.size(0) || !bias_in.device().is_cpu())) return {};
  if (!no_grad({&x, &w, &bias_in})) return {};
  const int64_t k = w.size(1), n = w.size(0), m = k == 0 ? 0 : x.numel() / k;
  if (m == 0 || k == 0) return {};
  const at::Tensor rows = (bf16 ? x.reshape({m, k}).to(at::kBFloat16) : x.reshape({m, k})).contiguous();
  // Accumulates in fp32 from the bias (beta 1). A fresh buffer always: with one row, the expanded bias would
  // otherwise be the bias itself.
  at::Tensor y = at::empty({m, n}, x.options());
  if (has_bias) y.copy_(bias_in.expand({m, n}));
  const float beta = has_bias ? 1.f : 0.f;
  const int status = fp32 ? sgemm('N', 'T', m, n, k, 1.f, rows.data_ptr<float>(), k, w.data_ptr<float>(), k, beta,
                                  y.data_ptr<float>(), n)
                          : bf16gemm('N', 'T', m, n, k, 1.f, rows.data_ptr(), k, w.data_ptr(), k, beta,
                                     y.data_ptr<float>(), n);
  if (status != 0) return {};
  auto sizes = x.sizes().vec();
  sizes.back() = n;
  return y.view(sizes);
}

// Whether this CPU runs oneDNN's bf16 gemm (it refuses CPUs without AVX-512; libtorch's own bf16 gemm there
// sums in bf16 steps, far from the fp32 sums the bf16 paths promise). Probed once on a 1 x 1 product.
bool bf16_native() {
  static const bool native = [] {
    if (!bf16gemm) return false;
    const c10::BFloat16 a(1.f), b(1.f);
    float c = 0.f;
    return bf16gemm('N', 'T', 1, 1, 1, 1.f, &a, 1, &b, 1, 0.f, &c, 1) == 0 && c == 1.f;
  }();
  return native;
}
}  // namespace onednn

extern "C" char *ct_cpu_info(void) noexcept {
  try {
    std::string model = "unknown CPU";
    if (FILE *f = std::fopen("/proc/cpuinfo", "r")) {
      char line[512];
      while (std::fgets(line, sizeof line, f)) {
        if (std::strncmp(line, "model name", 10) != 0) continue;
        const char *colon = std::strchr(line, ':');
        if (colon) model = std::string(colon + 2, std::strcspn(colon + 2, "\n"));
        break;
      }
      std::fclose(f);
    }
    std::string level = "baseline";
#if defined(__x86_64__)
    __builtin_cpu_init();
    const bool v3 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("bmi2");
    const bool v4 = v3 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                    __builtin_cpu_supports("avx512cd") && __builtin_cpu_supports("avx512dq") &&
                    __builtin_cpu_supports("avx512vl");
    level = v4 ? "x86-64-v4 (AVX-512)" : v3 ? "x86-64-v3 (AVX2)" : "x86-64 baseline (SSE2)";
#elif defined(__aarch64__)
    level = "aarch64 (NEON)";
#endif
    return dup(model + ", kernels: " + level);
  } catch (...) {
    return dup("unavailable");
  }
}
