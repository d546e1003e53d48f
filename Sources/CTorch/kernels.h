// Helpers of the shim's CPU kernels: eight-lane vectors, the AVX2 clones, the no-gradient test and the thread team.
#pragma once
#include "internal.h"

// ---- CPU kernels of our own: vector helpers, the thread team, few-row linears, fused inference ops ----

// Sixteen-lane float vectors in plain C++ (GCC/clang vector extensions): the compiler maps them to the target's SIMD,
// one AVX-512 register, two AVX2 ones or four SSE ones (more multiply-adds in flight than eight lanes on AVX2).
// Always inlined, so that each kernel's clone below gets its level's code for them.
#define CT_INLINE inline __attribute__((always_inline))
namespace vec {
constexpr int lanes = 16;
typedef float f32xN __attribute__((vector_size(4 * lanes)));
typedef uint16_t u16xN __attribute__((vector_size(2 * lanes)));
typedef uint32_t u32xN __attribute__((vector_size(4 * lanes)));
typedef int32_t i32xN __attribute__((vector_size(4 * lanes)));

CT_INLINE f32xN load(const float *p) {
  f32xN v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
// bf16 is the top half of an fp32: widening is a shift.
CT_INLINE f32xN load(const c10::BFloat16 *p) {
  u16xN h;
  std::memcpy(&h, p, sizeof h);
  const u32xN u = __builtin_convertvector(h, u32xN) << 16;
  f32xN v;
  std::memcpy(&v, &u, sizeof v);
  return v;
}
CT_INLINE float sum(f32xN a) {
  float s = 0;
  for (int i = 0; i < lanes; i++) s += a[i];
  return s;
}
// a . b over n elements (a float or bf16, b float), float sums.
template <typename A>
CT_INLINE float dot(const A *a, const float *b, int64_t n) {
  f32xN s0 = {}, s1 = {};  // two sums keep two multiply-adds in flight
  int64_t i = 0;
  for (; i + 2 * lanes <= n; i += 2 * lanes) {
    s0 += load(a + i) * load(b + i);
    s1 += load(a + i + lanes) * load(b + i + lanes);
  }
  float s = sum(s0 + s1);
  for (; i < n; i++) s += float(a[i]) * b[i];
  return s;
}
// The largest of row[0..<n) (-inf when n is 0; NaNs skipped, as std::max(top, x) skips them), a vector at a
// time: a scalar max is one dependent compare per element, which the compiler may not reorder, and it cost more
// than the exponentials of a 1024-key softmax row.
CT_INLINE float max(const float *row, int64_t n) {
  const float lowest = -std::numeric_limits<float>::infinity();
  f32xN m = f32xN{} + lowest;
  int64_t t = 0;
  for (; t + lanes <= n; t += lanes) {
    const f32xN x = load(row + t);
    m = m < x ? x : m;
  }
  float top = lowest;
  for (int i = 0; i < lanes; i++) top = std::max(top, m[i]);
  for (; t < n; t++) top = std::max(top, row[t]);
  return top;
}
// row[t] = e^(row[t] - top) for t < n (top their maximum), returning their sum. A vector at a time: Cephes'
// polynomial after reducing the argument by a multiple of ln 2 (within 2 ulp of expf); below -87.3 (no normal
// float) the result is 0; NaN stays NaN.
CT_INLINE float exp_shifted(float *row, int64_t n, float top) {
  const float shifter = 12582912.f;  // 1.5 * 2^23: adding it rounds to an integer
  f32xN sums = {};
  int64_t t = 0;
  for (; t + lanes <= n; t += lanes) {
    f32xN x = load(row + t) - top;
    const i32xN normal = ~(x < -87.3f);  // all ones per lane but where e^x is below the normal floats
    x = x > 88.f ? f32xN{} + 88.f : x;
    x = x < -87.3f ? f32xN{} - 87.3f : x;
    const f32xN m = (x * 1.44269504088896341f + shifter) - shifter;
    const f32xN r = x - m * 0.693359375f + m * 2.12194440e-4f;
    f32xN p = r * 1.9875691500e-4f + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.f;
    const i32xN exponent = (__builtin_convertvector(m, i32xN) + 127) << 23;
    f32xN scale;
    std::memcpy(&scale, &exponent, sizeof scale);
    const f32xN e = p * scale;
    i32xN bits;
    std::memcpy(&bits, &e, sizeof bits);
    bits &= normal;
    std::memcpy(row + t, &bits, sizeof bits);
    f32xN kept;
    std::memcpy(&kept, &bits, sizeof kept);
    sums += kept;
  }
  float sum = vec::sum(sums);
  for (; t < n; t++) sum += row[t] = std::exp(row[t] - top);
  return sum;
}
}  // namespace vec

// Compiled for AVX-512 (x86-64-v4), AVX2+FMA (v3) and the baseline, chosen when the library loads (x86-64 Linux).
// The level, not a CPU model: "arch=haswell" dispatches on `__builtin_cpu_is("haswell")`, true on Haswell alone, so
// every later Intel and every AMD CPU took the SSE2 baseline (measured on an AMD EPYC: the attention softmax 6 % of
// a forward). ct_cpu_info names the level this CPU gets.
#if defined(__x86_64__) && defined(__linux__)
#define CT_VECTOR_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define CT_VECTOR_CLONES
#endif

// True when no gradient will be asked of a result computed from these (undefined tensors are skipped): the only
// case the kernels below take; everything with autograd stays on libtorch's ops. Always false while the inference
// kernels are switched off (ct_set_inference_kernels).
inline bool no_grad(std::initializer_list<const at::Tensor *> ts) {
  if (!g_inference_kernels.load(std::memory_order_relaxed)) return false;
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
