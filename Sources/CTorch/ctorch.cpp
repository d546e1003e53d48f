// ReAlign's libtorch shim. See include/ctorch.h for the rules; every entry point is noexcept and returns a status.
// Compiles against libtorch 1.13 (Debian) and 2.x (a PyTorch install, CUDA builds).
#include "ctorch.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>
#include <ATen/detail/CUDAHooksInterface.h>
#include <c10/core/CPUAllocator.h>
#include <c10/core/GradMode.h>
#include <c10/core/impl/alloc_cpu.h>
#include <torch/csrc/autograd/variable.h>
#include <torch/version.h>

#include <dlfcn.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

static_assert(sizeof(intptr_t) == sizeof(int64_t), "ctorch assumes 64-bit intptr_t");

#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 1)
#define CT_FUSED_SDPA 1
#else
#define CT_FUSED_SDPA 0
#endif

struct ct_generator_s {
  at::Generator gen;
};

namespace {

thread_local std::string t_error;

// Intra-op threads. OpenMP keeps the thread count per calling thread, so a thread that has not yet seen the
// current setting applies it on its first call (a relaxed load and a thread-local compare per call).
std::atomic<int> g_threads{0};
std::atomic<int> g_threads_generation{1};
thread_local int t_threads_generation = 0;

// A thread may override the count for itself (e.g. one thread per worker when workers share the cores). That
// goes to OpenMP directly: at::set_num_threads would also change the count every new thread starts with.
thread_local int t_threads_override = 0;
using omp_set_fn = void (*)(int);
const auto omp_set_threads = reinterpret_cast<omp_set_fn>(dlsym(RTLD_DEFAULT, "omp_set_num_threads"));

inline void ensure_threads() {
  int gen = g_threads_generation.load(std::memory_order_relaxed);
  if (t_threads_generation != gen) {
    t_threads_generation = gen;
    if (t_threads_override > 0 && omp_set_threads) {
      at::get_num_threads();  // libtorch's own per-thread first-use setting must run before, not after, ours
      omp_set_threads(t_threads_override);
      return;
    }
    int n = g_threads.load(std::memory_order_relaxed);
    if (n > 0) at::set_num_threads(n);
    else at::init_num_threads();
  }
}

// Debian's libtorch starts with one OpenMP thread: default to all cores unless the user chose a count.
struct ThreadDefaults {
  ThreadDefaults() {
    if (std::getenv("OMP_NUM_THREADS") == nullptr) {
      unsigned n = std::thread::hardware_concurrency();
      g_threads.store(n > 0 ? int(n) : 1);
    }
  }
} thread_defaults;

// A handle is an owned TensorImpl* (one reference). An at::Tensor is exactly one intrusive pointer to its
// TensorImpl, so a handle variable can be viewed in place as a borrowed at::Tensor: no allocation and no reference
// count traffic per call. Entry points never assign to a borrowed tensor, only call it.
static_assert(sizeof(at::Tensor) == sizeof(at::TensorImpl *), "at::Tensor is expected to be one pointer");
inline at::Tensor &T(ct_tensor &t) { return *reinterpret_cast<at::Tensor *>(&t); }
inline ct_tensor wrap(at::Tensor t) {
  if (!t.defined()) throw std::runtime_error("libtorch returned an undefined tensor");
  return reinterpret_cast<ct_tensor>(t.unsafeReleaseTensorImpl());
}
inline void release(ct_tensor t) {
  // Takes the handle's reference back; the intrusive pointer drops it on scope exit.
  auto p = c10::intrusive_ptr<at::TensorImpl, at::UndefinedTensorImpl>::reclaim(reinterpret_cast<at::TensorImpl *>(t));
}

inline at::ScalarType scalar_type(int dtype) {
  switch (dtype) {
    case CT_FLOAT32: return at::kFloat;
    case CT_FLOAT16: return at::kHalf;
    case CT_BFLOAT16: return at::kBFloat16;
    case CT_FLOAT64: return at::kDouble;
    case CT_INT64: return at::kLong;
    case CT_INT32: return at::kInt;
    case CT_INT16: return at::kShort;
    case CT_INT8: return at::kChar;
    case CT_UINT8: return at::kByte;
    case CT_BOOL: return at::kBool;
  }
  throw std::invalid_argument("unknown dtype code " + std::to_string(dtype));
}

inline int dtype_code(at::ScalarType s) {
  switch (s) {
    case at::kFloat: return CT_FLOAT32;
    case at::kHalf: return CT_FLOAT16;
    case at::kBFloat16: return CT_BFLOAT16;
    case at::kDouble: return CT_FLOAT64;
    case at::kLong: return CT_INT64;
    case at::kInt: return CT_INT32;
    case at::kShort: return CT_INT16;
    case at::kChar: return CT_INT8;
    case at::kByte: return CT_UINT8;
    case at::kBool: return CT_BOOL;
    default: return -1;
  }
}

inline at::Device device(int kind, int index) {
  switch (kind) {
    case CT_CPU: return at::Device(at::kCPU);
    case CT_CUDA: return at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(index));
  }
  throw std::invalid_argument("unknown device kind " + std::to_string(kind));
}

inline at::TensorOptions options(int dtype, int dev, int index) {
  return at::TensorOptions().dtype(scalar_type(dtype)).device(device(dev, index));
}

inline at::Scalar S(ct_scalar s) { return s.is_int ? at::Scalar(s.i) : at::Scalar(s.f); }
inline at::IntArrayRef dims(const intptr_t *p, int n) {
  return at::IntArrayRef(reinterpret_cast<const int64_t *>(p), static_cast<size_t>(n));
}
inline c10::optional<at::Tensor> opt(ct_tensor t) {
  return t ? c10::optional<at::Tensor>(T(t)) : c10::optional<at::Tensor>();
}
inline c10::optional<at::Generator> gen(ct_generator g) {
  return g ? c10::optional<at::Generator>(g->gen) : c10::optional<at::Generator>();
}
inline at::TensorList list(const ct_tensor *ts, int n) {
  return at::TensorList(reinterpret_cast<const at::Tensor *>(ts), static_cast<size_t>(n));
}
inline void wrap_list(const std::vector<at::Tensor> &v, ct_tensor **outs, int64_t *n) {
  auto *arr = static_cast<ct_tensor *>(std::malloc(sizeof(ct_tensor) * (v.empty() ? 1 : v.size())));
  if (!arr) throw std::bad_alloc();
  for (size_t i = 0; i < v.size(); i++) arr[i] = wrap(v[i]);
  *outs = arr;
  *n = static_cast<int64_t>(v.size());
}
inline char *dup(const std::string &s) {
  char *p = static_cast<char *>(std::malloc(s.size() + 1));
  if (p) std::memcpy(p, s.c_str(), s.size() + 1);
  return p;
}

}  // namespace

#define CT_TRY(...)                                  \
  try {                                               \
    ensure_threads();                                 \
    __VA_ARGS__;                                      \
    return 0;                                         \
  } catch (const c10::Error &e) {                     \
    t_error = e.what_without_backtrace();             \
    return 1;                                         \
  } catch (const std::exception &e) {                 \
    t_error = e.what();                               \
    return 1;                                         \
  } catch (...) {                                     \
    t_error = "unknown C++ exception";                \
    return 1;                                         \
  }

// Functional (out-of-place, non-view) ops whose inputs need no gradient run below the autograd layer: autograd
// would only pass them through (their result never requires grad), so skipping it gives the same tensor for less
// per-call work. Ops on tensors that require grad take the full autograd path.
inline bool needs_autograd(const at::Tensor &a) { return c10::GradMode::is_enabled() && a.requires_grad(); }
inline bool needs_autograd(const at::Tensor &a, const at::Tensor &b) {
  return c10::GradMode::is_enabled() && (a.requires_grad() || b.requires_grad());
}
template <typename F>
inline at::Tensor functional(bool autograd, F &&f) {
  if (autograd) return f();
  at::AutoDispatchBelowAutograd guard;
  return f();
}

#define CT_UNARY(name, expr)                                                                  \
  int ct_##name(ct_tensor a, ct_tensor *out) noexcept {                                       \
    CT_TRY(const at::Tensor &x = T(a); *out = wrap(functional(needs_autograd(x), [&] { return expr; }))); \
  }
#define CT_BINARY(name, fn)                                                                   \
  int ct_##name(ct_tensor a, ct_tensor b, ct_tensor *out) noexcept {                          \
    CT_TRY(const at::Tensor &x = T(a); const at::Tensor &y = T(b);                            \
           *out = wrap(functional(needs_autograd(x, y), [&] { return fn(x, y); })));          \
  }
#define CT_SCALAR(name, expr)                                                                 \
  int ct_##name(ct_tensor a, ct_scalar s, ct_tensor *out) noexcept {                          \
    CT_TRY(const at::Tensor &x = T(a); *out = wrap(functional(needs_autograd(x), [&] { return expr; }))); \
  }

// ---- CPU kernels of our own: vector helpers, the thread team, few-row linears, fused inference ops ----

// Eight-lane float vectors in plain C++ (GCC/clang vector extensions): the compiler maps them to the target's SIMD.
// Always inlined, so that each kernel's AVX2 clone below gets AVX2 code for them.
#define CT_INLINE inline __attribute__((always_inline))
namespace vec {
typedef float f32x8 __attribute__((vector_size(32)));
typedef uint16_t u16x8 __attribute__((vector_size(16)));
typedef uint32_t u32x8 __attribute__((vector_size(32)));

CT_INLINE f32x8 load8(const float *p) {
  f32x8 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
// bf16 is the top half of an fp32: widening is a shift.
CT_INLINE f32x8 load8(const c10::BFloat16 *p) {
  u16x8 h;
  std::memcpy(&h, p, sizeof h);
  const u32x8 u = __builtin_convertvector(h, u32x8) << 16;
  f32x8 v;
  std::memcpy(&v, &u, sizeof v);
  return v;
}
CT_INLINE float sum(f32x8 a) {
  float s = 0;
  for (int i = 0; i < 8; i++) s += a[i];
  return s;
}
// a . b over n elements (a float or bf16, b float), float sums.
template <typename A>
CT_INLINE float dot(const A *a, const float *b, int64_t n) {
  f32x8 s0 = {}, s1 = {};  // two sums keep two multiply-adds in flight
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    s0 += load8(a + i) * load8(b + i);
    s1 += load8(a + i + 8) * load8(b + i + 8);
  }
  float s = sum(s0 + s1);
  for (; i < n; i++) s += float(a[i]) * b[i];
  return s;
}
// row[t] = e^(row[t] - top) for t < n (top their maximum), returning their sum. Eight at a time: Cephes'
// polynomial after reducing the argument by a multiple of ln 2 (within 2 ulp of expf); below -87.3 (no normal
// float) the result is 0; NaN stays NaN.
CT_INLINE float exp_shifted(float *row, int64_t n, float top) {
  typedef int32_t i32x8 __attribute__((vector_size(32)));
  const float shifter = 12582912.f;  // 1.5 * 2^23: adding it rounds to an integer
  f32x8 sums = {};
  int64_t t = 0;
  for (; t + 8 <= n; t += 8) {
    f32x8 x = load8(row + t) - top;
    const i32x8 normal = ~(x < -87.3f);  // all ones per lane but where e^x is below the normal floats
    x = x > 88.f ? f32x8{} + 88.f : x;
    x = x < -87.3f ? f32x8{} - 87.3f : x;
    const f32x8 m = (x * 1.44269504088896341f + shifter) - shifter;
    const f32x8 r = x - m * 0.693359375f + m * 2.12194440e-4f;
    f32x8 p = r * 1.9875691500e-4f + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.f;
    const i32x8 exponent = (__builtin_convertvector(m, i32x8) + 127) << 23;
    f32x8 scale;
    std::memcpy(&scale, &exponent, sizeof scale);
    const f32x8 e = p * scale;
    i32x8 bits;
    std::memcpy(&bits, &e, sizeof bits);
    bits &= normal;
    std::memcpy(row + t, &bits, sizeof bits);
    f32x8 kept;
    std::memcpy(&kept, &bits, sizeof kept);
    sums += kept;
  }
  float sum = vec::sum(sums);
  for (; t < n; t++) sum += row[t] = std::exp(row[t] - top);
  return sum;
}
}  // namespace vec

// Compiled for AVX2+FMA and for the baseline, chosen when the library loads (x86-64 Linux).
#if defined(__x86_64__) && defined(__linux__)
#define CT_VECTOR_CLONES __attribute__((target_clones("arch=haswell", "default")))
#else
#define CT_VECTOR_CLONES
#endif

// True when no gradient will be asked of a result computed from these (undefined tensors are skipped): the only
// case the kernels below take; everything with autograd stays on libtorch's ops.
inline bool no_grad(std::initializer_list<const at::Tensor *> ts) {
  if (!c10::GradMode::is_enabled()) return true;
  for (const at::Tensor *t : ts)
    if (t->defined() && t->requires_grad()) return false;
  return true;
}

namespace team {
// Runs f(begin, end) over [0, n) in contiguous blocks on libtorch's OpenMP team. With an OpenMP libtorch,
// at::parallel_for is header code that needs this file built with OpenMP; clang's OpenMP targets libomp, whose
// second thread pool would spin against libtorch's libgomp one. GOMP_parallel is the entry point that GCC-built code
// (libtorch's own) uses to run on that team. Threads take the next block as they finish one (about 8 blocks per
// thread): an even split left one thread waiting for the other at the end of most products. Without GOMP_parallel,
// at::parallel_for does the split.
using gomp_parallel_fn = void (*)(void (*)(void *), void *, unsigned, unsigned);
const auto gomp_parallel = reinterpret_cast<gomp_parallel_fn>(dlsym(RTLD_DEFAULT, "GOMP_parallel"));

template <typename F>
void parallel_blocks(int64_t n, int64_t min_block, const F &f) {
  if (!gomp_parallel) return at::parallel_for(0, n, min_block, f);
  const int64_t threads = at::in_parallel_region() ? 1 : std::min<int64_t>(at::get_num_threads(), n / min_block);
  if (threads <= 1) return f(0, n);
  struct Job {
    const F *f;
    int64_t n, block;
    std::atomic<int64_t> next{0};
  } job{&f, n, std::max(min_block, n / (threads * 8))};
  gomp_parallel(
      [](void *data) {
        Job &job = *static_cast<Job *>(data);
        for (int64_t begin; (begin = job.next.fetch_add(job.block)) < job.n;)
          (*job.f)(begin, std::min(job.n, begin + job.block));
      },
      &job, unsigned(threads), 0);
}

}  // namespace team

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
using sgemm_fn = int (*)(char, char, int64_t, int64_t, int64_t, float, const float *, int64_t, const float *, int64_t,
                         float, float *, int64_t);
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

// ---- fused inference kernels: RMSNorm, rotary embedding, attention for a few queries ----
// In a decode step each of these is a chain of 4-7 libtorch ops on a few hundred numbers (measured 13, 11 and 75 us
// at this project's bench shapes: about 0.9 ms of a 7.5 ms step). One pass each does the same arithmetic, with the
// composite's roundings (a bf16 result is rounded where the composite's bf16 ops round). They run only where no
// gradient is needed, on CPU tensors of the layouts below; every other case takes the composite ops.
namespace fused {
template <typename T>
inline float round_as(float v) {
  return float(T(v));
}

// LLaMA's RMSNorm: h = float(x); weight * to_x_dtype(h / sqrt(mean(h^2) + eps)).
at::Tensor rms_norm_composite(const at::Tensor &x, const c10::optional<at::Tensor> &w, double eps) {
  const at::Tensor h = x.to(at::kFloat);
  const at::Tensor normed = (h * (h.square().mean(-1, true) + eps).rsqrt()).to(x.scalar_type());
  return w && w->defined() ? *w * normed : normed;
}

template <typename T>
void rms_rows(const T *x, const T *w, float eps, T *y, int64_t d, int64_t r0, int64_t r1) {
  for (int64_t r = r0; r < r1; r++) {
    const T *xr = x + r * d;
    T *yr = y + r * d;
    double squares = 0;
    for (int64_t i = 0; i < d; i++) squares += double(float(xr[i])) * float(xr[i]);
    const float inv = 1.f / std::sqrt(float(squares / double(d)) + eps);
    for (int64_t i = 0; i < d; i++) {
      const float normed = round_as<T>(float(xr[i]) * inv);
      yr[i] = w ? T(float(w[i]) * normed) : T(normed);
    }
  }
}

at::Tensor rms_norm(const at::Tensor &x, const c10::optional<at::Tensor> &weight, double eps) {
  const at::Tensor w = weight && weight->defined() ? *weight : at::Tensor();
  const auto type = x.scalar_type();
  const bool fits = (type == at::kFloat || type == at::kBFloat16) && x.device().is_cpu() && x.dim() >= 1 &&
                    x.is_contiguous() && x.size(-1) > 0 &&
                    (!w.defined() || (w.scalar_type() == type && w.dim() == 1 && w.size(0) == x.size(-1) &&
                                      w.device().is_cpu() && w.is_contiguous()));
  if (!fits || !no_grad({&x, &w})) return rms_norm_composite(x, weight, eps);
  const int64_t d = x.size(-1), rows = x.numel() / d;
  at::Tensor y = at::empty_like(x);
  const int64_t min_block = std::max<int64_t>(1, 32768 / d);
  if (type == at::kFloat)
    team::parallel_blocks(rows, min_block, [&](int64_t r0, int64_t r1) {
      rms_rows(x.data_ptr<float>(), w.defined() ? w.data_ptr<float>() : nullptr, float(eps), y.data_ptr<float>(), d,
               r0, r1);
    });
  else
    team::parallel_blocks(rows, min_block, [&](int64_t r0, int64_t r1) {
      rms_rows(x.data_ptr<c10::BFloat16>(), w.defined() ? w.data_ptr<c10::BFloat16>() : nullptr, float(eps),
               y.data_ptr<c10::BFloat16>(), d, r0, r1);
    });
  return y;
}

// Rotary embedding as transformers applies it: x * cos + rotate_half(x) * sin, rotate_half(x) = cat(-x2, x1).
// x [B, H, L, D]; cos, sin [B, L, D] (shared by the heads).
at::Tensor rotary_composite(const at::Tensor &x, const at::Tensor &cos, const at::Tensor &sin) {
  const int64_t half = x.size(-1) / 2;
  const at::Tensor rotated = at::cat({x.slice(-1, half).neg(), x.slice(-1, 0, half)}, -1);
  return x * cos.unsqueeze(1) + rotated * sin.unsqueeze(1);
}

template <typename T>
void rotary_rows(const at::Tensor &x, const at::Tensor &cos, const at::Tensor &sin, at::Tensor &y, int64_t r0,
                 int64_t r1) {
#pragma clang fp contract(off)  // the composite rounds each product before the sum
  const int64_t H = x.size(1), L = x.size(2), D = x.size(3), half = D / 2;
  const T *xp = x.data_ptr<T>(), *cp = cos.data_ptr<T>(), *sp = sin.data_ptr<T>();
  T *yp = y.data_ptr<T>();
  const auto xs = x.strides();
  for (int64_t r = r0; r < r1; r++) {  // r runs over (b, h, l)
    const int64_t b = r / (H * L), h = r / L % H, l = r % L;
    const T *xr = xp + b * xs[0] + h * xs[1] + l * xs[2];
    const T *c = cp + (b * L + l) * D, *s = sp + (b * L + l) * D;
    T *yr = yp + r * D;
    for (int64_t i = 0; i < half; i++) {
      const float x1 = float(xr[i * xs[3]]), x2 = float(xr[(i + half) * xs[3]]);
      yr[i] = T(round_as<T>(x1 * float(c[i])) + round_as<T>(-x2 * float(s[i])));
      yr[i + half] = T(round_as<T>(x2 * float(c[i + half])) + round_as<T>(x1 * float(s[i + half])));
    }
  }
}

at::Tensor rotary(const at::Tensor &x, const at::Tensor &cos, const at::Tensor &sin) {
  const auto type = x.scalar_type();
  const bool fits = (type == at::kFloat || type == at::kBFloat16) && x.dim() == 4 && x.size(-1) > 0 &&
                    x.size(-1) % 2 == 0 &&
                    cos.dim() == 3 && sin.sizes() == cos.sizes() && cos.scalar_type() == type &&
                    sin.scalar_type() == type && cos.size(0) == x.size(0) && cos.size(1) == x.size(2) &&
                    cos.size(2) == x.size(3) && cos.is_contiguous() && sin.is_contiguous() && x.device().is_cpu() &&
                    cos.device().is_cpu() && sin.device().is_cpu();
  if (!fits || !no_grad({&x, &cos, &sin})) return rotary_composite(x, cos, sin);
  at::Tensor y = at::empty(x.sizes(), x.options().memory_format(at::MemoryFormat::Contiguous));
  const int64_t rows = x.size(0) * x.size(1) * x.size(2), min_block = std::max<int64_t>(1, 32768 / x.size(3));
  if (type == at::kFloat)
    team::parallel_blocks(rows, min_block, [&](int64_t r0, int64_t r1) { rotary_rows<float>(x, cos, sin, y, r0, r1); });
  else
    team::parallel_blocks(rows, min_block,
                          [&](int64_t r0, int64_t r1) { rotary_rows<c10::BFloat16>(x, cos, sin, y, r0, r1); });
  return y;
}

// softmax(q k^T * scale + mask) v for fp32 queries [B, H, L, D] against keys and values [B, H, S, D] (a KV cache's
// views: any strides but the last): a few queries (a decode step), or a short sequence (a sentence in the BERT
// encoder). One pass over the keys and values per (b, h) and query, threads over the pairs; libtorch runs the same
// as two small gemms with three elementwise ops between them, a chain that costs more than the arithmetic here.
constexpr int64_t max_queries = 16, max_scores = 64 * 64;

CT_VECTOR_CLONES void attend_pairs(const at::Tensor &q, const at::Tensor &k, const at::Tensor &v,
                                   const at::Tensor &mask, float scale, at::Tensor &y, int64_t p0, int64_t p1) {
  const int64_t H = q.size(1), L = q.size(2), S = k.size(2), D = q.size(3);
  const auto qs = q.strides(), ks = k.strides(), vs = v.strides();
  const float *qp = q.data_ptr<float>(), *kp = k.data_ptr<float>(), *vp = v.data_ptr<float>();
  const float *mp = mask.defined() ? mask.data_ptr<float>() : nullptr;
  const auto ms = mask.defined() ? mask.strides() : q.strides();
  float *yp = y.data_ptr<float>();
  std::vector<float> weights(S);
  for (int64_t pair = p0; pair < p1; pair++) {
    const int64_t b = pair / H, h = pair % H;
    for (int64_t i = 0; i < L; i++) {
      const float *qi = qp + b * qs[0] + h * qs[1] + i * qs[2];
      float top = -std::numeric_limits<float>::infinity();
      for (int64_t t = 0; t < S; t++) {
        float score = vec::dot(qi, kp + b * ks[0] + h * ks[1] + t * ks[2], D) * scale;
        if (mp) score += mp[b * ms[0] + h * ms[1] + i * ms[2] + t * ms[3]];
        weights[t] = score;
        top = std::max(top, score);
      }
      float total = 0;
      for (int64_t t = 0; t < S; t++) total += weights[t] = std::exp(weights[t] - top);
      float *yi = yp + ((b * H + h) * L + i) * D;
      std::fill(yi, yi + D, 0.f);
      for (int64_t t = 0; t < S; t++) {
        const float weight = weights[t] / total;
        const float *vt = vp + b * vs[0] + h * vs[1] + t * vs[2];
        for (int64_t e = 0; e < D; e++) yi[e] += weight * vt[e];
      }
    }
  }
}

// The same for longer sequences, threads over (b, h, block of `block_queries` queries): per block, the scores
// against every key it may see come from one single-threaded sgemm into a scratch that stays in cache, a row
// softmax runs on them in place, and a second sgemm multiplies them with the values. libtorch's composite (two
// batched products, a scale, a mask and a softmax, each a pass over memory) took 4x longer for the bench LLaVA's
// 360-token prompt. With is_causal a block skips the keys after its last query (torch's tril: query i sees keys
// 0...i), half the work of a full square.
constexpr int64_t block_queries = 64;

CT_VECTOR_CLONES void softmax_row(float *row, int64_t n, int64_t total) {
  float top = -std::numeric_limits<float>::infinity();
  for (int64_t t = 0; t < n; t++) top = std::max(top, row[t]);
  const float inverse = 1.f / vec::exp_shifted(row, n, top);
  for (int64_t t = 0; t < n; t++) row[t] *= inverse;
  std::fill(row + n, row + total, 0.f);
}

// False when oneDNN refused a product or the scratch could not be had (nothing may throw inside the OpenMP
// region): the caller falls back to the composite.
bool attend_blocks(const at::Tensor &q, const at::Tensor &k, const at::Tensor &v, const at::Tensor &mask, bool causal,
                   float scale, at::Tensor &y, int64_t t0, int64_t t1) {
  const int64_t H = q.size(1), L = q.size(2), S = k.size(2), D = q.size(3);
  const int64_t blocks = (L + block_queries - 1) / block_queries;
  const auto qs = q.strides(), ks = k.strides(), vs = v.strides();
  const auto ms = mask.defined() ? mask.strides() : q.strides();
  const float *mp = mask.defined() ? mask.data_ptr<float>() : nullptr;
  std::vector<float> scores;
  try {
    scores.resize(block_queries * S);
  } catch (const std::bad_alloc &) {
    return false;
  }
  for (int64_t task = t0; task < t1; task++) {
    const int64_t b = task / (H * blocks), h = task / blocks % H, i0 = task % blocks * block_queries;
    const int64_t rows = std::min(block_queries, L - i0), cols = causal ? std::min(S, i0 + rows) : S;
    const float *qb = q.data_ptr<float>() + b * qs[0] + h * qs[1] + i0 * qs[2];
    const float *kb = k.data_ptr<float>() + b * ks[0] + h * ks[1];
    const float *vb = v.data_ptr<float>() + b * vs[0] + h * vs[1];
    float *yb = y.data_ptr<float>() + ((b * H + h) * L + i0) * D;
    if (onednn::sgemm('N', 'T', rows, cols, D, scale, qb, qs[2], kb, ks[2], 0.f, scores.data(), cols) != 0)
      return false;
    for (int64_t r = 0; r < rows; r++) {
      float *row = scores.data() + r * cols;
      const int64_t seen = causal ? std::min(cols, i0 + r + 1) : cols;
      if (mp) {
        const float *mr = mp + b * ms[0] + h * ms[1] + (i0 + r) * ms[2];
        for (int64_t t = 0; t < seen; t++) row[t] += mr[t * ms[3]];
      }
      softmax_row(row, seen, cols);
    }
    if (onednn::sgemm('N', 'N', rows, D, cols, 1.f, scores.data(), cols, vb, vs[2], 0.f, yb, D) != 0)
      return false;
  }
  return true;
}

// The fused result, or an undefined tensor when this case is not one for it.
at::Tensor attention(const at::Tensor &q, const at::Tensor &k, const at::Tensor &v,
                     const c10::optional<at::Tensor> &mask, double dropout_p, bool is_causal, double scale) {
  const at::Tensor m = mask && mask->defined() ? *mask : at::Tensor();
  auto fits = [&](const at::Tensor &t) {
    return t.scalar_type() == at::kFloat && t.dim() == 4 && t.device().is_cpu() && t.stride(3) == 1;
  };
  if (!fits(q) || !fits(k) || !fits(v) || dropout_p > 0 || k.sizes() != v.sizes() || k.size(0) != q.size(0) ||
      k.size(1) != q.size(1) || k.size(3) != q.size(3) || k.size(2) == 0 || q.size(3) == 0 ||
      !no_grad({&q, &k, &v, &m}))
    return {};
  const bool few = q.size(2) <= max_queries || q.size(2) * k.size(2) <= max_scores;
  if ((is_causal || !few) && !onednn::sgemm) return {};
  const int64_t B = q.size(0), H = q.size(1), L = q.size(2), S = k.size(2), D = q.size(3);
  at::Tensor additive;
  if (m.defined()) {
    if (m.scalar_type() != at::kFloat || !m.device().is_cpu() || m.dim() > 4) return {};
    additive = m.expand({B, H, L, S});  // a view: broadcast dimensions get stride 0
  }
  at::Tensor y = at::empty({B, H, L, D}, q.options());
  const float s = float(scale > 0 ? scale : 1.0 / std::sqrt(double(D)));
  if (few && !is_causal) {
    team::parallel_blocks(B * H, std::max<int64_t>(1, 16384 / (2 * S * D)),
                          [&](int64_t p0, int64_t p1) { attend_pairs(q, k, v, additive, s, y, p0, p1); });
  } else {
    const int64_t blocks = (L + block_queries - 1) / block_queries;
    std::atomic<bool> failed{false};
    team::parallel_blocks(B * H * blocks, 1, [&](int64_t t0, int64_t t1) {
      if (!failed.load(std::memory_order_relaxed) && !attend_blocks(q, k, v, additive, is_causal, s, y, t0, t1))
        failed.store(true);
    });
    if (failed) return {};
  }
  return y;
}
}  // namespace fused

// ---- reuse of large CPU blocks ----
// A forward allocates the same large buffers on every call (the bench LLaVA's logits alone are 184 MB). glibc
// maps blocks above 32 MB fresh and unmaps them on free, so each call page-faults every page of them again
// (≈0.1 s per forward there). libtorch's CPU allocator is wrapped: freed blocks of 32 MB and more are kept, up
// to 1 GiB in all (the oldest go first), and handed out again for a request that fits them within 1/8.
// Smaller blocks stay libtorch's (glibc's heap reuses those already, see ct_tune_allocator).
namespace reuse {

constexpr size_t kLarge = size_t(32) << 20;
constexpr size_t kKeepBytes = size_t(1) << 30;

struct Block {
  void *data;
  size_t bytes;
};

// libtorch 2.3 made allocate non-const and added copy_data.
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 3)
#define CT_ALLOCATE_CONST
#else
#define CT_ALLOCATE_CONST const
#endif

struct Allocator final : c10::Allocator {
  explicit Allocator(c10::Allocator *base) : base(base) {}

#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 3)
  void copy_data(void *dest, const void *src, std::size_t count) const override {
    default_copy_data(dest, src, count);
  }
#endif

  c10::DataPtr allocate(size_t n) CT_ALLOCATE_CONST override {
    if (n < kLarge) return base->allocate(n);
    Block b = take(n);
    if (b.data == nullptr) {
      try {
        b = {c10::alloc_cpu(n), n};
      } catch (const c10::Error &) {  // out of memory: give the kept blocks back first, then try once more
        drop_kept();
        b = {c10::alloc_cpu(n), n};
      }
    }
    {
      std::lock_guard<std::mutex> lock(mutex);
      live[b.data] = b.bytes;
    }
    return {b.data, b.data, &release, c10::Device(c10::DeviceType::CPU)};
  }
  c10::DeleterFnPtr raw_deleter() const override { return &release; }

  static Allocator *shared;

  // Also reached through raw_deleter for small blocks, which go back to libtorch's allocator.
  static void release(void *data) {
    Allocator &a = *shared;
    std::unique_lock<std::mutex> lock(a.mutex);
    auto it = a.live.find(data);
    if (it == a.live.end()) {
      lock.unlock();
      if (auto deleter = a.base->raw_deleter()) deleter(data); else c10::free_cpu(data);
      return;
    }
    a.kept.push_back({data, it->second});
    a.kept_bytes += it->second;
    a.live.erase(it);
    std::vector<void *> dropped;
    while (a.kept_bytes > kKeepBytes) {
      dropped.push_back(a.kept.front().data);
      a.kept_bytes -= a.kept.front().bytes;
      a.kept.pop_front();
    }
    lock.unlock();
    for (void *p : dropped) c10::free_cpu(p);
  }

  void drop_kept() const {
    std::deque<Block> dropped;
    {
      std::lock_guard<std::mutex> lock(mutex);
      dropped.swap(kept);
      kept_bytes = 0;
    }
    for (const Block &b : dropped) c10::free_cpu(b.data);
  }

  // The smallest kept block of at least n bytes and at most n + n/8.
  Block take(size_t n) const {
    std::lock_guard<std::mutex> lock(mutex);
    auto best = kept.end();
    for (auto it = kept.begin(); it != kept.end(); ++it)
      if (it->bytes >= n && it->bytes <= n + n / 8 && (best == kept.end() || it->bytes < best->bytes)) best = it;
    if (best == kept.end()) return {nullptr, 0};
    Block b = *best;
    kept.erase(best);
    kept_bytes -= b.bytes;
    reused += 1;
    return b;
  }

  c10::Allocator *base;
  mutable std::mutex mutex;
  mutable std::unordered_map<void *, size_t> live;  // large blocks in use
  mutable std::deque<Block> kept;                    // large blocks freed, oldest first
  mutable size_t kept_bytes = 0;
  mutable uint64_t reused = 0;
};

Allocator *Allocator::shared = nullptr;

}  // namespace reuse

extern "C" {

// ---- errors, library information, threads ----

const char *ct_last_error(void) noexcept { return t_error.c_str(); }
const char *ct_version(void) noexcept { return TORCH_VERSION; }

char *ct_library_path(void) noexcept {
  Dl_info info;
  auto fn = reinterpret_cast<void *>(&at::get_num_threads);
  if (dladdr(fn, &info) && info.dli_fname) return dup(info.dli_fname);
  return dup("unknown");
}

char *ct_parallel_info(void) noexcept {
  try {
    ensure_threads();
    return dup(at::get_parallel_info());
  } catch (...) {
    return dup("unavailable");
  }
}

char *ct_build_config(void) noexcept {
  try {
    return dup(at::show_config());
  } catch (...) {
    return dup("unavailable");
  }
}

void ct_free_string(char *s) noexcept { std::free(s); }

int ct_get_num_threads(void) noexcept {
  try {
    ensure_threads();
    return at::get_num_threads();
  } catch (...) {
    return -1;
  }
}

int ct_set_num_threads(int n) noexcept {
  CT_TRY({
    if (n <= 0) throw std::invalid_argument("number of threads must be positive, got " + std::to_string(n));
    g_threads.store(n);
    g_threads_generation.fetch_add(1);
    ensure_threads();
  })
}

int ct_set_thread_num_threads(int n) noexcept {
  CT_TRY({
    if (n < 0) throw std::invalid_argument("number of threads must be positive or 0, got " + std::to_string(n));
    if (n > 0 && !omp_set_threads) throw std::runtime_error("this libtorch has no OpenMP runtime to set threads per thread");
    t_threads_override = n;
    t_threads_generation = 0;
    ensure_threads();
  })
}

int ct_get_num_interop_threads(void) noexcept {
  try {
    return at::get_num_interop_threads();
  } catch (...) {
    return -1;
  }
}

bool ct_cuda_is_available(void) noexcept {
  try {
    return at::hasCUDA() && at::detail::getCUDAHooks().getNumGPUs() > 0;
  } catch (...) {
    return false;
  }
}

int ct_cuda_device_count(void) noexcept {
  try {
    return at::hasCUDA() ? static_cast<int>(at::detail::getCUDAHooks().getNumGPUs()) : 0;
  } catch (...) {
    return 0;
  }
}

int ct_manual_seed(uint64_t seed) noexcept {
  CT_TRY({
    auto g = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(g.mutex());
    g.set_current_seed(seed);
  })
}

void ct_tune_allocator(void) noexcept {
#if defined(__GLIBC__)
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 512 << 20);
  mallopt(M_TOP_PAD, 64 << 20);
#endif
  static std::once_flag once;
  std::call_once(once, [] {
    reuse::Allocator::shared = new reuse::Allocator(c10::GetCPUAllocator());
    c10::SetCPUAllocator(reuse::Allocator::shared, /*priority=*/1);
  });
}

void ct_cpu_reuse_stats(size_t *kept_bytes, uint64_t *reused) noexcept {
  *kept_bytes = 0;
  *reused = 0;
  if (auto *a = reuse::Allocator::shared) {
    std::lock_guard<std::mutex> lock(a->mutex);
    *kept_bytes = a->kept_bytes;
    *reused = a->reused;
  }
}

bool ct_is_grad_enabled(void) noexcept { return c10::GradMode::is_enabled(); }
void ct_set_grad_enabled(bool enabled) noexcept { c10::GradMode::set_enabled(enabled); }

// ---- generators ----

int ct_generator_new(uint64_t seed, ct_generator *out) noexcept {
  CT_TRY(*out = new ct_generator_s{at::detail::createCPUGenerator(seed)})
}
void ct_generator_free(ct_generator g) noexcept { delete g; }
int ct_generator_set_seed(ct_generator g, uint64_t seed) noexcept {
  CT_TRY({
    std::lock_guard<std::mutex> lock(g->gen.mutex());
    g->gen.set_current_seed(seed);
  })
}
int ct_generator_get_state(ct_generator g, ct_tensor *out) noexcept {
  CT_TRY({
    at::Generator gg = g ? g->gen : at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(gg.mutex());
    *out = wrap(gg.get_state());
  })
}
int ct_generator_set_state(ct_generator g, ct_tensor state) noexcept {
  CT_TRY({
    at::Generator gg = g ? g->gen : at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(gg.mutex());
    gg.set_state(T(state));
  })
}

// ---- lifecycle and information ----

void ct_free(ct_tensor t) noexcept {
  if (t) release(t);
}
void ct_free_array(ct_tensor *ts) noexcept { std::free(ts); }
int ct_shallow_clone(ct_tensor t, ct_tensor *out) noexcept { CT_TRY(*out = wrap(T(t))) }
int ct_clone(ct_tensor t, ct_tensor *out) noexcept { CT_TRY(*out = wrap(T(t).clone())) }
int64_t ct_dim(ct_tensor t) noexcept { return T(t).dim(); }
void ct_sizes(ct_tensor t, intptr_t *out) noexcept {
  auto s = T(t).sizes();
  for (size_t i = 0; i < s.size(); i++) out[i] = s[i];
}
void ct_strides(ct_tensor t, intptr_t *out) noexcept {
  auto s = T(t).strides();
  for (size_t i = 0; i < s.size(); i++) out[i] = s[i];
}
int64_t ct_numel(ct_tensor t) noexcept { return T(t).numel(); }
int ct_dtype(ct_tensor t) noexcept { return dtype_code(T(t).scalar_type()); }
void ct_device(ct_tensor t, int *kind, int *index) noexcept {
  auto d = T(t).device();
  *kind = d.is_cuda() ? CT_CUDA : CT_CPU;
  *index = d.has_index() ? d.index() : 0;
}
bool ct_is_contiguous(ct_tensor t) noexcept { return T(t).is_contiguous(); }
bool ct_requires_grad(ct_tensor t) noexcept { return T(t).requires_grad(); }
bool ct_is_leaf(ct_tensor t) noexcept { return T(t).is_leaf(); }
char *ct_to_string(ct_tensor t) noexcept {
  try {
    std::ostringstream s;
    s << T(t);
    return dup(s.str());
  } catch (...) {
    return dup("<tensor>");
  }
}
int ct_set_data(ct_tensor dst, ct_tensor src) noexcept { CT_TRY(T(dst).set_data(T(src))) }

// ---- creation ----

int ct_empty(const intptr_t *shape, int ndim, int dtype, int dev, int idx, ct_tensor *out) noexcept {
  CT_TRY(*out = wrap(at::empty(dims(shape, ndim), options(dtype, dev, idx))))
}
int ct_zeros(const intptr_t *shape, int ndim, int dtype, int dev, int idx, ct_tensor *out) noexcept {
  CT_TRY(*out = wrap(at::zeros(dims(shape, ndim), options(dtype, dev, idx))))
}
int ct_ones(const intptr_t *shape, int ndim, int dtype, int dev, int idx, ct_tensor *out) noexcept {
  CT_TRY(*out = wrap(at::ones(dims(shape, ndim), options(dtype, dev, idx))))
}
int ct_full(const intptr_t *shape, int ndim, ct_scalar value, int dtype, int dev, int idx, ct_tensor *out) noexcept {
  CT_TRY(*out = wrap(at::full(dims(shape, ndim), S(value), options(dtype, dev, idx))))
}
int ct_arange(ct_scalar start, ct_scalar end, ct_scalar step, int dtype, int dev, int idx, ct_tensor *out) noexcept {
  CT_TRY(*out = wrap(at::arange(S(start), S(end), S(step), options(dtype, dev, idx))))
}
int ct_linspace(double start, double end, int64_t steps, int dtype, int dev, int idx, ct_tensor *out) noexcept {
  CT_TRY(*out = wrap(at::linspace(start, end, steps, options(dtype, dev, idx))))
}
int ct_eye(int64_t n, int dtype, int dev, int idx, ct_tensor *out) noexcept {
  CT_TRY(*out = wrap(at::eye(n, options(dtype, dev, idx))))
}
int ct_randn(const intptr_t *shape, int ndim, ct_generator g, int dtype, int dev, int idx, ct_tensor *out) noexcept {
  CT_TRY(*out = wrap(at::randn(dims(shape, ndim), gen(g), options(dtype, dev, idx))))
}
int ct_rand(const intptr_t *shape, int ndim, ct_generator g, int dtype, int dev, int idx, ct_tensor *out) noexcept {
  CT_TRY(*out = wrap(at::rand(dims(shape, ndim), gen(g), options(dtype, dev, idx))))
}
int ct_randint(int64_t low, int64_t high, const intptr_t *shape, int ndim, ct_generator g, int dtype, int dev,
               int idx, ct_tensor *out) noexcept {
  CT_TRY(*out = wrap(at::randint(low, high, dims(shape, ndim), gen(g), options(dtype, dev, idx))))
}
int ct_randperm(int64_t n, ct_generator g, ct_tensor *out) noexcept {
  CT_TRY(*out = wrap(at::randperm(n, gen(g), at::TensorOptions().dtype(at::kLong))))
}

int ct_from_data(const void *data, size_t nbytes, const intptr_t *shape, int ndim, int dtype,
                 ct_tensor *out) noexcept {
  CT_TRY({
    auto type = scalar_type(dtype);
    int64_t numel = 1;
    for (int i = 0; i < ndim; i++) {
      if (shape[i] < 0) throw std::invalid_argument("negative dimension in shape");
      if (shape[i] != 0 && numel > INT64_MAX / shape[i]) throw std::invalid_argument("shape overflows");
      numel *= shape[i];
    }
    size_t expected = static_cast<size_t>(numel) * c10::elementSize(type);
    if (expected != nbytes)
      throw std::invalid_argument("data has " + std::to_string(nbytes) + " bytes, shape and dtype need " +
                                  std::to_string(expected));
    auto t = at::empty(dims(shape, ndim), at::TensorOptions().dtype(type));
    if (nbytes) std::memcpy(t.data_ptr(), data, nbytes);
    *out = wrap(std::move(t));
  })
}

int ct_copy_to_buffer(ct_tensor t, void *dst, size_t nbytes) noexcept {
  CT_TRY({
    auto c = T(t).detach().to(at::kCPU).contiguous();
    size_t have = static_cast<size_t>(c.numel()) * c.element_size();
    if (have != nbytes)
      throw std::invalid_argument("tensor has " + std::to_string(have) + " bytes, buffer " + std::to_string(nbytes));
    if (nbytes) std::memcpy(dst, c.data_ptr(), nbytes);
  })
}
int ct_item_double(ct_tensor t, double *out) noexcept { CT_TRY(*out = T(t).item<double>()) }
int ct_item_int64(ct_tensor t, int64_t *out) noexcept { CT_TRY(*out = T(t).item<int64_t>()) }

// ---- views, indexing, joining ----

int ct_reshape(ct_tensor t, const intptr_t *shape, int ndim, ct_tensor *out) noexcept {
  CT_TRY(*out = wrap(T(t).reshape(dims(shape, ndim))))
}
int ct_view(ct_tensor t, const intptr_t *shape, int ndim, ct_tensor *out) noexcept {
  CT_TRY(*out = wrap(T(t).view(dims(shape, ndim))))
}
int ct_permute(ct_tensor t, const intptr_t *d, int ndim, ct_tensor *out) noexcept {
  CT_TRY(*out = wrap(T(t).permute(dims(d, ndim))))
}
int ct_transpose(ct_tensor t, int64_t d0, int64_t d1, ct_tensor *out) noexcept {
  CT_TRY(*out = wrap(T(t).transpose(d0, d1)))
}
int ct_flatten(ct_tensor t, int64_t start, int64_t end, ct_tensor *out) noexcept {
  CT_TRY(*out = wrap(T(t).flatten(start, end)))
}
int ct_squeeze(ct_tensor t, ct_tensor *out) noexcept { CT_TRY(*out = wrap(T(t).squeeze())) }
int ct_squeeze_dim(ct_tensor t, int64_t dim, ct_tensor *out) noexcept { CT_TRY(*out = wrap(T(t).squeeze(dim))) }
int ct_unsqueeze(ct_tensor t, int64_t dim, ct_tensor *out) noexcept { CT_TRY(*out = wrap(T(t).unsqueeze(dim))) }
int ct_expand(ct_tensor t, const intptr_t *shape, int ndim, ct_tensor *out) noexcept {
  CT_TRY(*out = wrap(T(t).expand(dims(shape, ndim))))
}
int ct_contiguous(ct_tensor t, ct_tensor *out) noexcept { CT_TRY(*out = wrap(T(t).contiguous())) }
int ct_narrow(ct_tensor t, int64_t dim, int64_t start, int64_t length, ct_tensor *out) noexcept {
  CT_TRY(*out = wrap(T(t).narrow(dim, start, length)))
}
int ct_slice(ct_tensor t, int64_t dim, int64_t start, int64_t end, int64_t step, ct_tensor *out) noexcept {
  CT_TRY(*out = wrap(T(t).slice(dim, start, end, step)))
}
int ct_select(ct_tensor t, int64_t dim, int64_t index, ct_tensor *out) noexcept {
  CT_TRY(*out = wrap(T(t).select(dim, index)))
}
int ct_index_select(ct_tensor t, int64_t dim, ct_tensor index, ct_tensor *out) noexcept {
  CT_TRY(*out = wrap(at::index_select(T(t), dim, T(index))))
}
int ct_gather(ct_tensor t, int64_t dim, ct_tensor index, ct_tensor *out) noexcept {
  CT_TRY(*out = wrap(at::gather(T(t), dim, T(index))))
}
int ct_scatter(ct_tensor t, int64_t dim, ct_tensor index, ct_tensor src, ct_tensor *out) noexcept {
  CT_TRY(*out = wrap(at::scatter(T(t), dim, T(index), T(src))))
}
int ct_scatter_add(ct_tensor t, int64_t dim, ct_tensor index, ct_tensor src, ct_tensor *out) noexcept {
  CT_TRY(*out = wrap(at::scatter_add(T(t), dim, T(index), T(src))))
}
int ct_masked_fill(ct_tensor t, ct_tensor mask, ct_scalar value, ct_tensor *out) noexcept {
  CT_TRY(*out = wrap(at::masked_fill(T(t), T(mask), S(value))))
}
int ct_masked_select(ct_tensor t, ct_tensor mask, ct_tensor *out) noexcept {
  CT_TRY(*out = wrap(at::masked_select(T(t), T(mask))))
}
int ct_masked_scatter(ct_tensor t, ct_tensor mask, ct_tensor src, ct_tensor *out) noexcept {
  CT_TRY(*out = wrap(at::masked_scatter(T(t), T(mask), T(src))))
}
int ct_where(ct_tensor cond, ct_tensor a, ct_tensor b, ct_tensor *out) noexcept {
  CT_TRY(*out = wrap(at::where(T(cond), T(a), T(b))))
}
int ct_nonzero(ct_tensor t, ct_tensor *out) noexcept { CT_TRY(*out = wrap(at::nonzero(T(t)))) }
int ct_cat(const ct_tensor *ts, int n, int64_t dim, ct_tensor *out) noexcept {
  CT_TRY(*out = wrap(at::cat(list(ts, n), dim)))
}
int ct_stack(const ct_tensor *ts, int n, int64_t dim, ct_tensor *out) noexcept {
  CT_TRY(*out = wrap(at::stack(list(ts, n), dim)))
}
int ct_split(ct_tensor t, int64_t size, int64_t dim, ct_tensor **outs, int64_t *n) noexcept {
  CT_TRY(wrap_list(at::split(T(t), size, dim), outs, n))
}
int ct_split_sizes(ct_tensor t, const intptr_t *sizes, int nsizes, int64_t dim, ct_tensor **outs,
                   int64_t *n) noexcept {
  CT_TRY(wrap_list(at::split_with_sizes(T(t), dims(sizes, nsizes), dim), outs, n))
}
int ct_chunk(ct_tensor t, int64_t chunks, int64_t dim, ct_tensor **outs, int64_t *n) noexcept {
  CT_TRY(wrap_list(at::chunk(T(t), chunks, dim), outs, n))
}
int ct_repeat(ct_tensor t, const intptr_t *repeats, int n, ct_tensor *out) noexcept {
  CT_TRY(*out = wrap(T(t).repeat(dims(repeats, n))))
}
int ct_tril(ct_tensor t, int64_t diagonal, ct_tensor *out) noexcept { CT_TRY(*out = wrap(at::tril(T(t), diagonal))) }
int ct_triu(ct_tensor t, int64_t diagonal, ct_tensor *out) noexcept { CT_TRY(*out = wrap(at::triu(T(t), diagonal))) }

int ct_pad(ct_tensor t, const intptr_t *pads, int npads, int mode, double value, ct_tensor *out) noexcept {
  CT_TRY({
    const at::Tensor &x = T(t);
    auto p = dims(pads, npads);
    if (npads % 2 != 0) throw std::invalid_argument("pad needs an even number of values, got " + std::to_string(npads));
    if (mode == CT_PAD_CONSTANT) {
      *out = wrap(at::constant_pad_nd(x, p, value));
    } else if (mode == CT_PAD_REFLECT || mode == CT_PAD_REPLICATE) {
      bool reflect = mode == CT_PAD_REFLECT;
      switch (npads) {
        case 2: *out = wrap(reflect ? at::reflection_pad1d(x, p) : at::replication_pad1d(x, p)); break;
        case 4: *out = wrap(reflect ? at::reflection_pad2d(x, p) : at::replication_pad2d(x, p)); break;
        case 6: *out = wrap(reflect ? at::reflection_pad3d(x, p) : at::replication_pad3d(x, p)); break;
        default: throw std::invalid_argument("reflect/replicate padding takes 2, 4 or 6 values");
      }
    } else {
      throw std::invalid_argument("unknown padding mode " + std::to_string(mode));
    }
  })
}
int ct_flip(ct_tensor t, const intptr_t *d, int ndim, ct_tensor *out) noexcept {
  CT_TRY(*out = wrap(at::flip(T(t), dims(d, ndim))))
}
int ct_roll(ct_tensor t, int64_t shift, int64_t dim, ct_tensor *out) noexcept {
  CT_TRY(*out = wrap(at::roll(T(t), {shift}, {dim})))
}

// ---- elementwise math ----

CT_BINARY(add, at::add)
CT_BINARY(sub, at::sub)
CT_BINARY(mul, at::mul)
CT_BINARY(div, at::div)
CT_BINARY(pow, at::pow)
CT_BINARY(maximum, at::maximum)
CT_BINARY(minimum, at::minimum)
CT_BINARY(remainder, at::remainder)
CT_BINARY(atan2, at::atan2)
CT_SCALAR(add_scalar, at::add(x, S(s)))
CT_SCALAR(sub_scalar, at::sub(x, S(s)))
CT_SCALAR(rsub_scalar, at::rsub(x, S(s)))
CT_SCALAR(mul_scalar, at::mul(x, S(s)))
CT_SCALAR(div_scalar, at::div(x, S(s)))
CT_SCALAR(rdiv_scalar, at::mul(at::reciprocal(x), S(s)))
CT_SCALAR(pow_scalar, at::pow(x, S(s)))
CT_SCALAR(rpow_scalar, at::pow(S(s), x))
CT_SCALAR(remainder_scalar, at::remainder(x, S(s)))

int ct_clamp(ct_tensor a, double min, bool has_min, double max, bool has_max, ct_tensor *out) noexcept {
  CT_TRY({
    c10::optional<at::Scalar> lo, hi;
    if (has_min) lo = at::Scalar(min);
    if (has_max) hi = at::Scalar(max);
    *out = wrap(at::clamp(T(a), lo, hi));
  })
}

CT_UNARY(neg, at::neg(x))
CT_UNARY(abs, at::abs(x))
CT_UNARY(exp, at::exp(x))
CT_UNARY(log, at::log(x))
CT_UNARY(log1p, at::log1p(x))
CT_UNARY(sqrt, at::sqrt(x))
CT_UNARY(rsqrt, at::rsqrt(x))
CT_UNARY(square, at::square(x))
CT_UNARY(reciprocal, at::reciprocal(x))
CT_UNARY(sin, at::sin(x))
CT_UNARY(cos, at::cos(x))
CT_UNARY(tanh, at::tanh(x))
CT_UNARY(erf, at::erf(x))
CT_UNARY(sigmoid, at::sigmoid(x))
CT_UNARY(logsigmoid, at::log_sigmoid(x))
CT_UNARY(relu, at::relu(x))
CT_UNARY(silu, at::silu(x))
CT_UNARY(floor, at::floor(x))
CT_UNARY(ceil, at::ceil(x))
CT_UNARY(round, at::round(x))
CT_UNARY(sign, at::sign(x))
CT_UNARY(isnan, at::isnan(x))
CT_UNARY(isfinite, at::isfinite(x))
CT_UNARY(logical_not, at::logical_not(x))

int ct_gelu(ct_tensor a, bool tanh_approximation, ct_tensor *out) noexcept {
  CT_TRY(*out = wrap(at::gelu(T(a), tanh_approximation ? "tanh" : "none")))
}

CT_BINARY(eq, at::eq)
CT_BINARY(ne, at::ne)
CT_BINARY(lt, at::lt)
CT_BINARY(le, at::le)
CT_BINARY(gt, at::gt)
CT_BINARY(ge, at::ge)
CT_SCALAR(eq_scalar, at::eq(x, S(s)))
CT_SCALAR(ne_scalar, at::ne(x, S(s)))
CT_SCALAR(lt_scalar, at::lt(x, S(s)))
CT_SCALAR(le_scalar, at::le(x, S(s)))
CT_SCALAR(gt_scalar, at::gt(x, S(s)))
CT_SCALAR(ge_scalar, at::ge(x, S(s)))
CT_BINARY(logical_and, at::logical_and)
CT_BINARY(logical_or, at::logical_or)
CT_BINARY(logical_xor, at::logical_xor)
int ct_equal(ct_tensor a, ct_tensor b, bool *out) noexcept {
  CT_TRY(*out = T(a).sizes() == T(b).sizes() && at::equal(T(a), T(b)))
}

// ---- linear algebra ----

CT_BINARY(matmul, at::matmul)
CT_BINARY(bmm, at::bmm)
CT_BINARY(outer, at::outer)
CT_BINARY(mv, at::mv)
int ct_linear(ct_tensor x, ct_tensor w, ct_tensor b, ct_tensor *out) noexcept {
  CT_TRY({
    at::Tensor y = few_rows::linear(T(x), T(w), opt(b));
    if (!y.defined()) y = onednn::linear(T(x), T(w), opt(b));
    if (!y.defined() && T(x).scalar_type() == at::kBFloat16 && T(w).scalar_type() == at::kBFloat16 && !onednn::bf16_native()) {
      // A bf16 model on a CPU without a native bf16 gemm: fp32 sums of the bf16 values, rounded to bf16 once.
      c10::optional<at::Tensor> bias = opt(b);
      if (bias && bias->defined()) bias = bias->to(at::kFloat);
      y = at::linear(T(x).to(at::kFloat), T(w).to(at::kFloat), bias).to(at::kBFloat16);
    }
    if (!y.defined() && T(x).scalar_type() == at::kFloat && T(w).scalar_type() == at::kBFloat16) {
      // A bf16 weight under fp32 inputs when oneDNN's bf16 gemm is not reachable, refuses this CPU (no AVX-512),
      // or autograd is on: the same product, bf16(x) . W summed in fp32 with an fp32 result. (A bf16 at::linear
      // would round the result to bf16 as well.)
      y = at::linear(T(x).to(at::kBFloat16).to(at::kFloat), T(w).to(at::kFloat), opt(b));
    }
    *out = wrap(y.defined() ? y : at::linear(T(x), T(w), opt(b)));
  })
}

// ---- reductions ----

int ct_sum(ct_tensor t, const intptr_t *d, int nd, bool keepdim, int dtype, ct_tensor *out) noexcept {
  CT_TRY({
    c10::optional<at::ScalarType> st;
    if (dtype >= 0) st = scalar_type(dtype);
    if (nd == 0 && !keepdim)
      *out = wrap(at::sum(T(t), st));
    else if (nd == 0) {
      std::vector<int64_t> all(T(t).dim());
      for (size_t i = 0; i < all.size(); i++) all[i] = int64_t(i);
      *out = wrap(at::sum(T(t), all, true, st));
    } else
      *out = wrap(at::sum(T(t), dims(d, nd), keepdim, st));
  })
}
int ct_mean(ct_tensor t, const intptr_t *d, int nd, bool keepdim, ct_tensor *out) noexcept {
  CT_TRY({
    if (nd == 0 && !keepdim)
      *out = wrap(at::mean(T(t)));
    else if (nd == 0) {
      std::vector<int64_t> all(T(t).dim());
      for (size_t i = 0; i < all.size(); i++) all[i] = int64_t(i);
      *out = wrap(at::mean(T(t), all, true));
    } else
      *out = wrap(at::mean(T(t), dims(d, nd), keepdim));
  })
}
int ct_prod(ct_tensor t, ct_tensor *out) noexcept { CT_TRY(*out = wrap(at::prod(T(t)))) }
int ct_max_all(ct_tensor t, ct_tensor *out) noexcept { CT_TRY(*out = wrap(at::max(T(t)))) }
int ct_min_all(ct_tensor t, ct_tensor *out) noexcept { CT_TRY(*out = wrap(at::min(T(t)))) }
int ct_max_dim(ct_tensor t, int64_t dim, bool keepdim, ct_tensor *values, ct_tensor *indices) noexcept {
  CT_TRY({
    auto r = at::max(T(t), dim, keepdim);
    *values = wrap(std::get<0>(r));
    *indices = wrap(std::get<1>(r));
  })
}
int ct_min_dim(ct_tensor t, int64_t dim, bool keepdim, ct_tensor *values, ct_tensor *indices) noexcept {
  CT_TRY({
    auto r = at::min(T(t), dim, keepdim);
    *values = wrap(std::get<0>(r));
    *indices = wrap(std::get<1>(r));
  })
}
int ct_argmax(ct_tensor t, int64_t dim, bool has_dim, bool keepdim, ct_tensor *out) noexcept {
  CT_TRY(*out = wrap(has_dim ? at::argmax(T(t), dim, keepdim) : at::argmax(T(t))))
}
int ct_argmin(ct_tensor t, int64_t dim, bool has_dim, bool keepdim, ct_tensor *out) noexcept {
  CT_TRY(*out = wrap(has_dim ? at::argmin(T(t), dim, keepdim) : at::argmin(T(t))))
}
int ct_topk(ct_tensor t, int64_t k, int64_t dim, bool largest, bool sorted, ct_tensor *values,
            ct_tensor *indices) noexcept {
  CT_TRY({
    auto r = at::topk(T(t), k, dim, largest, sorted);
    *values = wrap(std::get<0>(r));
    *indices = wrap(std::get<1>(r));
  })
}
int ct_sort(ct_tensor t, int64_t dim, bool descending, bool stable, ct_tensor *values, ct_tensor *indices) noexcept {
  CT_TRY({
    auto r = at::sort(T(t), stable, dim, descending);
    *values = wrap(std::get<0>(r));
    *indices = wrap(std::get<1>(r));
  })
}
int ct_logsumexp(ct_tensor t, const intptr_t *d, int nd, bool keepdim, ct_tensor *out) noexcept {
  CT_TRY({
    if (nd == 0) {
      std::vector<int64_t> all(T(t).dim());
      for (size_t i = 0; i < all.size(); i++) all[i] = int64_t(i);
      *out = wrap(at::logsumexp(T(t), all, keepdim));
    } else
      *out = wrap(at::logsumexp(T(t), dims(d, nd), keepdim));
  })
}
int ct_var(ct_tensor t, const intptr_t *d, int nd, bool unbiased, bool keepdim, ct_tensor *out) noexcept {
  CT_TRY({
    at::OptionalIntArrayRef od;
    if (nd > 0) od = dims(d, nd);
    *out = wrap(at::var(T(t), od, unbiased, keepdim));
  })
}
int ct_vector_norm(ct_tensor t, double ord, const intptr_t *d, int nd, bool keepdim, ct_tensor *out) noexcept {
  CT_TRY({
    at::OptionalIntArrayRef od;
    if (nd > 0) od = dims(d, nd);
    *out = wrap(at::linalg_vector_norm(T(t), ord, od, keepdim, c10::nullopt));
  })
}
int ct_cumsum(ct_tensor t, int64_t dim, ct_tensor *out) noexcept { CT_TRY(*out = wrap(at::cumsum(T(t), dim))) }
int ct_all(ct_tensor t, ct_tensor *out) noexcept { CT_TRY(*out = wrap(at::all(T(t)))) }
int ct_any(ct_tensor t, ct_tensor *out) noexcept { CT_TRY(*out = wrap(at::any(T(t)))) }
int ct_softmax(ct_tensor t, int64_t dim, int dtype, ct_tensor *out) noexcept {
  CT_TRY({
    c10::optional<at::ScalarType> st;
    if (dtype >= 0) st = scalar_type(dtype);
    *out = wrap(at::softmax(T(t), dim, st));
  })
}
int ct_log_softmax(ct_tensor t, int64_t dim, int dtype, ct_tensor *out) noexcept {
  CT_TRY({
    c10::optional<at::ScalarType> st;
    if (dtype >= 0) st = scalar_type(dtype);
    *out = wrap(at::log_softmax(T(t), dim, st));
  })
}

// ---- neural-network functions ----

int ct_layer_norm(ct_tensor x, const intptr_t *shape, int ndim, ct_tensor w, ct_tensor b, double eps,
                  ct_tensor *out) noexcept {
  CT_TRY(*out = wrap(at::layer_norm(T(x), dims(shape, ndim), opt(w), opt(b), eps)))
}
int ct_rms_norm(ct_tensor x, ct_tensor w, double eps, ct_tensor *out) noexcept {
  CT_TRY(*out = wrap(fused::rms_norm(T(x), opt(w), eps)))
}
int ct_rotary(ct_tensor x, ct_tensor cos, ct_tensor sin, ct_tensor *out) noexcept {
  CT_TRY(*out = wrap(fused::rotary(T(x), T(cos), T(sin))))
}
int ct_embedding(ct_tensor weight, ct_tensor ids, int64_t padding_idx, ct_tensor *out) noexcept {
  CT_TRY(*out = wrap(at::embedding(T(weight), T(ids), padding_idx)))
}
int ct_conv2d(ct_tensor x, ct_tensor w, ct_tensor b, const intptr_t *stride, const intptr_t *padding,
              const intptr_t *dilation, int64_t groups, ct_tensor *out) noexcept {
  CT_TRY(*out = wrap(at::conv2d(T(x), T(w), opt(b), dims(stride, 2), dims(padding, 2), dims(dilation, 2), groups)))
}
int ct_dropout(ct_tensor x, double p, bool train, ct_tensor *out) noexcept {
  CT_TRY(*out = wrap(at::dropout(T(x), p, train)))
}

// The composite attention, as PyTorch's math reference computes it.
static at::Tensor sdpa_manual(const at::Tensor &q, const at::Tensor &k, const at::Tensor &v,
                              const c10::optional<at::Tensor> &mask, double dropout_p, bool is_causal, double scale) {
  int64_t L = q.size(-2), S = k.size(-2);
  double s = scale > 0 ? scale : 1.0 / std::sqrt(static_cast<double>(q.size(-1)));
  auto scores = at::matmul(q, k.transpose(-2, -1)) * s;
  if (is_causal) {
    auto keep = at::ones({L, S}, q.options().dtype(at::kBool)).tril();
    scores = scores.masked_fill(keep.logical_not(), -std::numeric_limits<double>::infinity());
  }
  if (mask) {
    if (mask->scalar_type() == at::kBool)
      scores = scores.masked_fill(mask->logical_not(), -std::numeric_limits<double>::infinity());
    else
      scores = scores + *mask;
  }
  auto attn = at::softmax(scores, -1);
  if (dropout_p > 0) attn = at::dropout(attn, dropout_p, true);
  return at::matmul(attn, v);
}

bool ct_has_fused_sdpa(void) noexcept { return CT_FUSED_SDPA; }

int ct_sdpa(ct_tensor q, ct_tensor k, ct_tensor v, ct_tensor mask, double dropout_p, bool is_causal, double scale,
            bool force_manual, ct_tensor *out) noexcept {
  CT_TRY({
    if (is_causal && mask) throw std::invalid_argument("attention takes either is_causal or an explicit mask");
#if CT_FUSED_SDPA
    if (!force_manual) {
      c10::optional<double> sc;
      if (scale > 0) sc = scale;
      *out = wrap(at::scaled_dot_product_attention(T(q), T(k), T(v), opt(mask), dropout_p, is_causal, sc));
      return 0;
    }
#endif
    (void)force_manual;
    at::Tensor y = fused::attention(T(q), T(k), T(v), opt(mask), dropout_p, is_causal, scale);
    *out = wrap(y.defined() ? y : sdpa_manual(T(q), T(k), T(v), opt(mask), dropout_p, is_causal, scale));
  })
}

int ct_cross_entropy(ct_tensor logits, ct_tensor target, ct_tensor weight, int reduction, int64_t ignore_index,
                     double label_smoothing, ct_tensor *out) noexcept {
  CT_TRY(*out = wrap(at::cross_entropy_loss(T(logits), T(target), opt(weight), reduction, ignore_index,
                                            label_smoothing)))
}

int ct_interpolate_bicubic(ct_tensor x, int64_t out_h, int64_t out_w, bool align_corners, ct_tensor *out) noexcept {
  CT_TRY(*out = wrap(at::upsample_bicubic2d(T(x), {out_h, out_w}, align_corners, {}, {})))
}

// ---- conversion ----

int ct_to_dtype(ct_tensor t, int dtype, ct_tensor *out) noexcept { CT_TRY(*out = wrap(T(t).to(scalar_type(dtype)))) }
int ct_to_device(ct_tensor t, int dev, int idx, ct_tensor *out) noexcept {
  CT_TRY(*out = wrap(T(t).to(device(dev, idx))))
}

// ---- in-place ----

int ct_add_(ct_tensor t, ct_tensor other, ct_scalar alpha) noexcept { CT_TRY(T(t).add_(T(other), S(alpha))) }
int ct_add_scalar_(ct_tensor t, ct_scalar s) noexcept { CT_TRY(T(t).add_(S(s))) }
int ct_mul_(ct_tensor t, ct_tensor other) noexcept { CT_TRY(T(t).mul_(T(other))) }
int ct_mul_scalar_(ct_tensor t, ct_scalar s) noexcept { CT_TRY(T(t).mul_(S(s))) }
int ct_div_(ct_tensor t, ct_tensor other) noexcept { CT_TRY(T(t).div_(T(other))) }
int ct_div_scalar_(ct_tensor t, ct_scalar s) noexcept { CT_TRY(T(t).div_(S(s))) }
int ct_addcmul_(ct_tensor t, ct_tensor a, ct_tensor b, ct_scalar value) noexcept {
  CT_TRY(T(t).addcmul_(T(a), T(b), S(value)))
}
int ct_addcdiv_(ct_tensor t, ct_tensor a, ct_tensor b, ct_scalar value) noexcept {
  CT_TRY(T(t).addcdiv_(T(a), T(b), S(value)))
}
int ct_lerp_(ct_tensor t, ct_tensor end, ct_scalar weight) noexcept { CT_TRY(T(t).lerp_(T(end), S(weight))) }
int ct_sqrt_(ct_tensor t) noexcept { CT_TRY(T(t).sqrt_()) }
int ct_clamp_(ct_tensor t, double min, bool has_min, double max, bool has_max) noexcept {
  CT_TRY({
    c10::optional<at::Scalar> lo, hi;
    if (has_min) lo = at::Scalar(min);
    if (has_max) hi = at::Scalar(max);
    T(t).clamp_(lo, hi);
  })
}
int ct_copy_(ct_tensor dst, ct_tensor src) noexcept { CT_TRY(T(dst).copy_(T(src))) }
int ct_zero_(ct_tensor t) noexcept { CT_TRY(T(t).zero_()) }
int ct_fill_(ct_tensor t, ct_scalar s) noexcept { CT_TRY(T(t).fill_(S(s))) }
int ct_uniform_(ct_tensor t, double from, double to, ct_generator g) noexcept { CT_TRY(T(t).uniform_(from, to, gen(g))) }
int ct_normal_(ct_tensor t, double mean, double std, ct_generator g) noexcept {
  CT_TRY(T(t).normal_(mean, std, gen(g)))
}
int ct_masked_fill_(ct_tensor t, ct_tensor mask, ct_scalar value) noexcept {
  CT_TRY(T(t).masked_fill_(T(mask), S(value)))
}

// ---- autograd ----

int ct_set_requires_grad(ct_tensor t, bool requires_grad) noexcept { CT_TRY(T(t).requires_grad_(requires_grad)) }
int ct_backward(ct_tensor t, ct_tensor grad, bool retain_graph) noexcept {
  CT_TRY(T(t).backward(grad ? T(grad) : at::Tensor(), retain_graph, false))
}
int ct_grad(ct_tensor t, ct_tensor *out) noexcept {
  CT_TRY({
    const at::Tensor &g = T(t).grad();
    *out = g.defined() ? wrap(g) : nullptr;
  })
}
int ct_set_grad(ct_tensor t, ct_tensor grad) noexcept {
  CT_TRY(T(t).mutable_grad() = grad ? T(grad) : at::Tensor())
}
int ct_zero_grad(ct_tensor t) noexcept { CT_TRY(T(t).mutable_grad() = at::Tensor()) }
int ct_detach(ct_tensor t, ct_tensor *out) noexcept { CT_TRY(*out = wrap(T(t).detach())) }

// ---- benchmarks ----

int ct_bench_add_loop(int64_t numel, int64_t iters, bool below_autograd, double *ns_per_op) noexcept {
  CT_TRY({
    auto a = at::rand({numel});
    auto b = at::rand({numel});
    c10::optional<at::AutoDispatchBelowAutograd> guard;
    if (below_autograd) guard.emplace();
    for (int64_t i = 0; i < iters / 10 + 1; i++) {
      auto c = at::add(a, b);
    }
    auto t0 = std::chrono::steady_clock::now();
    for (int64_t i = 0; i < iters; i++) {
      auto c = at::add(a, b);
    }
    auto t1 = std::chrono::steady_clock::now();
    *ns_per_op = std::chrono::duration<double, std::nano>(t1 - t0).count() / static_cast<double>(iters);
  })
}

}  // extern "C"
