// Private to the shim: what its files share (handles, errors, the thread setting, the entry-point macro) and the
// kernels' interfaces. See include/ctorch.h for the public rules.
#pragma once
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

// State shared by every file of the shim: one definition each (C++17 inline variables).
namespace ctorch {

inline thread_local std::string t_error;

// Intra-op threads. OpenMP keeps the thread count per calling thread, so a thread that has not yet seen the
// current setting applies it on its first call (a relaxed load and a thread-local compare per call).
// Whether the shim's own inference kernels (kernels.h) may run; off, every op takes libtorch's composite path.
inline std::atomic<bool> g_inference_kernels{true};

inline std::atomic<int> g_threads{0};
inline std::atomic<int> g_threads_generation{1};
inline thread_local int t_threads_generation = 0;

// A thread may override the count for itself (e.g. one thread per worker when workers share the cores). That
// goes to OpenMP directly: at::set_num_threads would also change the count every new thread starts with.
inline thread_local int t_threads_override = 0;
using omp_set_fn = void (*)(int);
inline const auto omp_set_threads = reinterpret_cast<omp_set_fn>(dlsym(RTLD_DEFAULT, "omp_set_num_threads"));

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

}  // namespace ctorch
using namespace ctorch;

namespace {

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

// ---- the shim's own CPU kernels (kernels.h has their shared helpers) ----

// LLaMA's RMSNorm and transformers' rotary embedding, one pass each (norms.cpp).
namespace fused {
at::Tensor rms_norm(const at::Tensor &x, const c10::optional<at::Tensor> &weight, double eps);
at::Tensor rotary(const at::Tensor &x, const at::Tensor &cos, const at::Tensor &sin);
// softmax(q k^T * scale + mask) v for fp32 CPU queries, or an undefined tensor when the case is not one for it
// (attention.cpp).
at::Tensor attention(const at::Tensor &q, const at::Tensor &k, const at::Tensor &v,
                     const c10::optional<at::Tensor> &mask, double dropout_p, bool is_causal, double scale);
}  // namespace fused

// Inference linears: few rows (decode steps) and oneDNN's gemm (linear.cpp); undefined when not for them.
namespace few_rows {
at::Tensor linear(const at::Tensor &x, const at::Tensor &w, const c10::optional<at::Tensor> &b);
}
namespace onednn {
using sgemm_fn = int (*)(char, char, int64_t, int64_t, int64_t, float, const float *, int64_t, const float *, int64_t,
                         float, float *, int64_t);
extern const sgemm_fn sgemm;
at::Tensor linear(const at::Tensor &x, const at::Tensor &w, const c10::optional<at::Tensor> &b);
bool bf16_native();
}  // namespace onednn
