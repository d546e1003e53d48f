// ReAlign's libtorch shim: the C entry points. See include/ctorch.h for the rules; every entry point is noexcept
// and returns a status. Compiles against libtorch 1.13 (Debian) and 2.x (a PyTorch install, CUDA builds).
#include "internal.h"

namespace {

// Debian's libtorch starts with one OpenMP thread: default to all cores unless the user chose a count.
struct ThreadDefaults {
  ThreadDefaults() {
    if (std::getenv("OMP_NUM_THREADS") == nullptr) {
      unsigned n = std::thread::hardware_concurrency();
      g_threads.store(n > 0 ? int(n) : 1);
    }
  }
} thread_defaults;
}  // namespace

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

char *ct_shim_path(void) noexcept {
  Dl_info info;
  if (dladdr(reinterpret_cast<void *>(&ct_version), &info) && info.dli_fname) return dup(info.dli_fname);
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

bool ct_set_inference_kernels(bool enabled) noexcept { return g_inference_kernels.exchange(enabled); }

int ct_from_blob(void *data, const intptr_t *shape, int ndim, int dtype, void (*release_context)(void *), void *context,
                 ct_tensor *out) noexcept {
  bool handed = false;  // once from_blob holds the deleter, it calls it
  const int status = [&]() -> int {
    CT_TRY({
      auto type = scalar_type(dtype);
      if (reinterpret_cast<uintptr_t>(data) % c10::elementSize(type) != 0)
        throw std::invalid_argument("data is not aligned to its element size");
      auto t = at::from_blob(data, dims(shape, ndim), [release_context, context](void *) { release_context(context); },
                             at::TensorOptions().dtype(type));
      handed = true;
      *out = wrap(std::move(t));
    })
  }();
  if (status != 0 && !handed) release_context(context);
  return status;
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
CT_UNARY(expm1, at::expm1(x))
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

}  // extern "C"
