/*
 * ctorch.h — the whole C surface of ReAlign's libtorch shim.
 *
 * Rules (as tch-rs does it):
 *  - Every fallible function returns 0 on success and non-zero on failure, and writes its results through
 *    out-parameters. On failure the out-parameters are left untouched and ct_last_error() holds the message
 *    (libtorch's message without the C++ backtrace). The message is thread-local: read it right away, on the
 *    same thread.
 *  - No C++ exception ever crosses this boundary (every entry point is noexcept and catches everything).
 *  - The caller owns every returned ct_tensor / ct_generator and releases it with ct_free / ct_generator_free.
 *    Arrays of handles (split, chunk) are allocated with malloc; free the array with ct_free_array after taking
 *    ownership of its elements. Strings returned as char* are freed with ct_free_string.
 *  - Shapes and dimension lists are intptr_t arrays (64-bit here, the same width as libtorch's int64_t).
 */
#ifndef CTORCH_H
#define CTORCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
#define CT_NOEXCEPT noexcept
extern "C" {
#else
#define CT_NOEXCEPT
#endif

typedef struct ct_tensor_s *ct_tensor;
typedef struct ct_generator_s *ct_generator;

/* Element types (values are ours, stable, independent of libtorch's numbering). */
enum {
  CT_FLOAT32 = 0, CT_FLOAT16 = 1, CT_BFLOAT16 = 2, CT_FLOAT64 = 3,
  CT_INT64 = 4, CT_INT32 = 5, CT_INT16 = 6, CT_INT8 = 7, CT_UINT8 = 8, CT_BOOL = 9
};
/* Device kinds. */
enum { CT_CPU = 0, CT_CUDA = 1 };
/* Reductions for losses. */
enum { CT_REDUCTION_NONE = 0, CT_REDUCTION_MEAN = 1, CT_REDUCTION_SUM = 2 };
/* Padding modes. */
enum { CT_PAD_CONSTANT = 0, CT_PAD_REFLECT = 1, CT_PAD_REPLICATE = 2 };

/* A scalar operand: an integer when is_int is non-zero (keeps integer tensors integer, as Python ints do),
 * a double otherwise. */
typedef struct { double f; int64_t i; int is_int; } ct_scalar;

/* ---- errors, library information, threads ---- */
const char *ct_last_error(void) CT_NOEXCEPT;
const char *ct_version(void) CT_NOEXCEPT;               /* libtorch version the shim was compiled against, e.g. "1.13.0" */
char *ct_library_path(void) CT_NOEXCEPT;                /* the libtorch_cpu shared object actually loaded (ct_free_string) */
char *ct_shim_path(void) CT_NOEXCEPT;                   /* this shim's own shared object, librealign_torch.so (ct_free_string) */
char *ct_parallel_info(void) CT_NOEXCEPT;               /* at::get_parallel_info() */
char *ct_build_config(void) CT_NOEXCEPT;                /* at::show_config() */
char *ct_cpu_info(void) CT_NOEXCEPT;                    /* the CPU's model name and the level its vector kernels take */
void ct_free_string(char *s) CT_NOEXCEPT;
int ct_get_num_threads(void) CT_NOEXCEPT;
int ct_set_num_threads(int n) CT_NOEXCEPT;
/* Intra-op threads for the calling thread only; 0 returns it to the process-wide count. */
int ct_set_thread_num_threads(int n) CT_NOEXCEPT;
int ct_get_num_interop_threads(void) CT_NOEXCEPT;
bool ct_cuda_is_available(void) CT_NOEXCEPT;
int ct_cuda_device_count(void) CT_NOEXCEPT;
int ct_manual_seed(uint64_t seed) CT_NOEXCEPT;
bool ct_is_grad_enabled(void) CT_NOEXCEPT;
/* Keeps blocks up to 32 MB in the malloc heap instead of mapping and unmapping fresh pages for each (glibc),
 * and keeps freed CPU tensor blocks of 32 MB and more (up to 1 GiB in all) for the next request of their size:
 * a process that allocates activations layer after layer spends much less time in page faults. Call once,
 * early; later calls do nothing. */
void ct_tune_allocator(void) CT_NOEXCEPT;
/* Switches the shim's own inference kernels (fused RMSNorm, rotary, attention, few-row and oneDNN products; used
 * only where no gradient is needed) on or off for the whole process; returns the previous setting. Off, those ops
 * round exactly as with gradients: a no-grad pass then equals a pass that records, bit for bit. */
bool ct_set_inference_kernels(bool enabled) CT_NOEXCEPT;
/* Sets how many bytes of freed large blocks are kept (1 GiB at first; 0 keeps none), freeing the oldest beyond it
 * now; returns the previous limit. */
size_t ct_set_cpu_reuse_limit(size_t bytes) CT_NOEXCEPT;
/* Bytes of large blocks kept for reuse now, and how many requests a kept block has served so far. */
void ct_cpu_reuse_stats(size_t *kept_bytes, uint64_t *reused) CT_NOEXCEPT;
void ct_set_grad_enabled(bool enabled) CT_NOEXCEPT;

/* ---- generators ---- */
int ct_generator_new(uint64_t seed, ct_generator *out) CT_NOEXCEPT;
void ct_generator_free(ct_generator g) CT_NOEXCEPT;
int ct_generator_set_seed(ct_generator g, uint64_t seed) CT_NOEXCEPT;
/* Serialized state of a generator (NULL: the default CPU generator) as a uint8 tensor, and back. */
int ct_generator_get_state(ct_generator g, ct_tensor *out) CT_NOEXCEPT;
int ct_generator_set_state(ct_generator g, ct_tensor state) CT_NOEXCEPT;

/* ---- lifecycle and information ---- */
void ct_free(ct_tensor t) CT_NOEXCEPT;
void ct_free_array(ct_tensor *ts) CT_NOEXCEPT;
int ct_shallow_clone(ct_tensor t, ct_tensor *out) CT_NOEXCEPT;  /* a second handle to the same tensor */
int ct_clone(ct_tensor t, ct_tensor *out) CT_NOEXCEPT;          /* a copy with its own storage */
int64_t ct_dim(ct_tensor t) CT_NOEXCEPT;
void ct_sizes(ct_tensor t, intptr_t *out) CT_NOEXCEPT;
void ct_strides(ct_tensor t, intptr_t *out) CT_NOEXCEPT;
int64_t ct_numel(ct_tensor t) CT_NOEXCEPT;
int ct_dtype(ct_tensor t) CT_NOEXCEPT;
void ct_device(ct_tensor t, int *kind, int *index) CT_NOEXCEPT;
bool ct_is_contiguous(ct_tensor t) CT_NOEXCEPT;
bool ct_requires_grad(ct_tensor t) CT_NOEXCEPT;
bool ct_is_leaf(ct_tensor t) CT_NOEXCEPT;
char *ct_to_string(ct_tensor t) CT_NOEXCEPT;
/* Replace dst's data (shape, dtype, storage) by src's, keeping dst's identity (PyTorch's `param.data = src`). */
int ct_set_data(ct_tensor dst, ct_tensor src) CT_NOEXCEPT;

/* ---- creation ---- */
int ct_empty(const intptr_t *shape, int ndim, int dtype, int dev, int dev_index, ct_tensor *out) CT_NOEXCEPT;
int ct_zeros(const intptr_t *shape, int ndim, int dtype, int dev, int dev_index, ct_tensor *out) CT_NOEXCEPT;
int ct_ones(const intptr_t *shape, int ndim, int dtype, int dev, int dev_index, ct_tensor *out) CT_NOEXCEPT;
int ct_full(const intptr_t *shape, int ndim, ct_scalar value, int dtype, int dev, int dev_index, ct_tensor *out) CT_NOEXCEPT;
int ct_arange(ct_scalar start, ct_scalar end, ct_scalar step, int dtype, int dev, int dev_index, ct_tensor *out) CT_NOEXCEPT;
int ct_linspace(double start, double end, int64_t steps, int dtype, int dev, int dev_index, ct_tensor *out) CT_NOEXCEPT;
int ct_eye(int64_t n, int dtype, int dev, int dev_index, ct_tensor *out) CT_NOEXCEPT;
/* gen may be NULL (the default generator). */
int ct_randn(const intptr_t *shape, int ndim, ct_generator gen, int dtype, int dev, int dev_index, ct_tensor *out) CT_NOEXCEPT;
int ct_rand(const intptr_t *shape, int ndim, ct_generator gen, int dtype, int dev, int dev_index, ct_tensor *out) CT_NOEXCEPT;
int ct_randint(int64_t low, int64_t high, const intptr_t *shape, int ndim, ct_generator gen, int dtype, int dev,
               int dev_index, ct_tensor *out) CT_NOEXCEPT;
int ct_randperm(int64_t n, ct_generator gen, ct_tensor *out) CT_NOEXCEPT;
/* Copies nbytes of contiguous data (row-major) into a new CPU tensor. */
int ct_from_data(const void *data, size_t nbytes, const intptr_t *shape, int ndim, int dtype, ct_tensor *out) CT_NOEXCEPT;
/* A CPU tensor over memory it does not own (no copy): data must stay valid and aligned to the element size until
 * release(context) is called, once, when the tensor's storage goes (at once on failure). */
int ct_from_blob(void *data, const intptr_t *shape, int ndim, int dtype, void (*release)(void *), void *context,
                 ct_tensor *out) CT_NOEXCEPT;
/* Copies the tensor's elements (converted to a contiguous CPU tensor of its own dtype) into dst. */
int ct_copy_to_buffer(ct_tensor t, void *dst, size_t nbytes) CT_NOEXCEPT;
int ct_item_double(ct_tensor t, double *out) CT_NOEXCEPT;
int ct_item_int64(ct_tensor t, int64_t *out) CT_NOEXCEPT;

/* ---- views, indexing, joining ---- */
int ct_reshape(ct_tensor t, const intptr_t *shape, int ndim, ct_tensor *out) CT_NOEXCEPT;
int ct_view(ct_tensor t, const intptr_t *shape, int ndim, ct_tensor *out) CT_NOEXCEPT;
int ct_permute(ct_tensor t, const intptr_t *dims, int ndim, ct_tensor *out) CT_NOEXCEPT;
int ct_transpose(ct_tensor t, int64_t d0, int64_t d1, ct_tensor *out) CT_NOEXCEPT;
int ct_flatten(ct_tensor t, int64_t start, int64_t end, ct_tensor *out) CT_NOEXCEPT;
int ct_squeeze(ct_tensor t, ct_tensor *out) CT_NOEXCEPT;
int ct_squeeze_dim(ct_tensor t, int64_t dim, ct_tensor *out) CT_NOEXCEPT;
int ct_unsqueeze(ct_tensor t, int64_t dim, ct_tensor *out) CT_NOEXCEPT;
int ct_expand(ct_tensor t, const intptr_t *shape, int ndim, ct_tensor *out) CT_NOEXCEPT;
int ct_contiguous(ct_tensor t, ct_tensor *out) CT_NOEXCEPT;
int ct_narrow(ct_tensor t, int64_t dim, int64_t start, int64_t length, ct_tensor *out) CT_NOEXCEPT;
int ct_slice(ct_tensor t, int64_t dim, int64_t start, int64_t end, int64_t step, ct_tensor *out) CT_NOEXCEPT;
int ct_select(ct_tensor t, int64_t dim, int64_t index, ct_tensor *out) CT_NOEXCEPT;
int ct_index_select(ct_tensor t, int64_t dim, ct_tensor index, ct_tensor *out) CT_NOEXCEPT;
int ct_gather(ct_tensor t, int64_t dim, ct_tensor index, ct_tensor *out) CT_NOEXCEPT;
int ct_scatter(ct_tensor t, int64_t dim, ct_tensor index, ct_tensor src, ct_tensor *out) CT_NOEXCEPT;
int ct_scatter_add(ct_tensor t, int64_t dim, ct_tensor index, ct_tensor src, ct_tensor *out) CT_NOEXCEPT;
int ct_masked_fill(ct_tensor t, ct_tensor mask, ct_scalar value, ct_tensor *out) CT_NOEXCEPT;
int ct_masked_select(ct_tensor t, ct_tensor mask, ct_tensor *out) CT_NOEXCEPT;
/* Copies src's elements, in order, into the positions where mask is true (torch.Tensor.masked_scatter). */
int ct_masked_scatter(ct_tensor t, ct_tensor mask, ct_tensor src, ct_tensor *out) CT_NOEXCEPT;
int ct_where(ct_tensor cond, ct_tensor a, ct_tensor b, ct_tensor *out) CT_NOEXCEPT;
int ct_nonzero(ct_tensor t, ct_tensor *out) CT_NOEXCEPT;
int ct_cat(const ct_tensor *ts, int n, int64_t dim, ct_tensor *out) CT_NOEXCEPT;
int ct_stack(const ct_tensor *ts, int n, int64_t dim, ct_tensor *out) CT_NOEXCEPT;
/* *outs is a malloc'd array of *n handles. */
int ct_split(ct_tensor t, int64_t size, int64_t dim, ct_tensor **outs, int64_t *n) CT_NOEXCEPT;
int ct_split_sizes(ct_tensor t, const intptr_t *sizes, int nsizes, int64_t dim, ct_tensor **outs, int64_t *n) CT_NOEXCEPT;
int ct_chunk(ct_tensor t, int64_t chunks, int64_t dim, ct_tensor **outs, int64_t *n) CT_NOEXCEPT;
int ct_repeat(ct_tensor t, const intptr_t *repeats, int n, ct_tensor *out) CT_NOEXCEPT;
int ct_tril(ct_tensor t, int64_t diagonal, ct_tensor *out) CT_NOEXCEPT;
int ct_triu(ct_tensor t, int64_t diagonal, ct_tensor *out) CT_NOEXCEPT;
/* pads as torch.nn.functional.pad: (last dim left, last dim right, next-to-last left, ...). */
int ct_pad(ct_tensor t, const intptr_t *pads, int npads, int mode, double value, ct_tensor *out) CT_NOEXCEPT;
int ct_flip(ct_tensor t, const intptr_t *dims, int ndim, ct_tensor *out) CT_NOEXCEPT;
int ct_roll(ct_tensor t, int64_t shift, int64_t dim, ct_tensor *out) CT_NOEXCEPT;

/* ---- elementwise math ---- */
int ct_add(ct_tensor a, ct_tensor b, ct_tensor *out) CT_NOEXCEPT;
int ct_sub(ct_tensor a, ct_tensor b, ct_tensor *out) CT_NOEXCEPT;
int ct_mul(ct_tensor a, ct_tensor b, ct_tensor *out) CT_NOEXCEPT;
int ct_div(ct_tensor a, ct_tensor b, ct_tensor *out) CT_NOEXCEPT;
int ct_pow(ct_tensor a, ct_tensor b, ct_tensor *out) CT_NOEXCEPT;
int ct_maximum(ct_tensor a, ct_tensor b, ct_tensor *out) CT_NOEXCEPT;
int ct_minimum(ct_tensor a, ct_tensor b, ct_tensor *out) CT_NOEXCEPT;
int ct_remainder(ct_tensor a, ct_tensor b, ct_tensor *out) CT_NOEXCEPT;
int ct_atan2(ct_tensor a, ct_tensor b, ct_tensor *out) CT_NOEXCEPT;
int ct_add_scalar(ct_tensor a, ct_scalar s, ct_tensor *out) CT_NOEXCEPT;
int ct_sub_scalar(ct_tensor a, ct_scalar s, ct_tensor *out) CT_NOEXCEPT;
int ct_rsub_scalar(ct_tensor a, ct_scalar s, ct_tensor *out) CT_NOEXCEPT;   /* s - a */
int ct_mul_scalar(ct_tensor a, ct_scalar s, ct_tensor *out) CT_NOEXCEPT;
int ct_div_scalar(ct_tensor a, ct_scalar s, ct_tensor *out) CT_NOEXCEPT;
int ct_rdiv_scalar(ct_tensor a, ct_scalar s, ct_tensor *out) CT_NOEXCEPT;   /* s / a */
int ct_pow_scalar(ct_tensor a, ct_scalar exponent, ct_tensor *out) CT_NOEXCEPT;
int ct_rpow_scalar(ct_tensor a, ct_scalar base, ct_tensor *out) CT_NOEXCEPT; /* base ** a */
int ct_remainder_scalar(ct_tensor a, ct_scalar s, ct_tensor *out) CT_NOEXCEPT;
int ct_clamp(ct_tensor a, double min, bool has_min, double max, bool has_max, ct_tensor *out) CT_NOEXCEPT;

int ct_neg(ct_tensor a, ct_tensor *out) CT_NOEXCEPT;
int ct_abs(ct_tensor a, ct_tensor *out) CT_NOEXCEPT;
int ct_exp(ct_tensor a, ct_tensor *out) CT_NOEXCEPT;
int ct_log(ct_tensor a, ct_tensor *out) CT_NOEXCEPT;
int ct_log1p(ct_tensor a, ct_tensor *out) CT_NOEXCEPT;
int ct_expm1(ct_tensor a, ct_tensor *out) CT_NOEXCEPT;
int ct_sqrt(ct_tensor a, ct_tensor *out) CT_NOEXCEPT;
int ct_rsqrt(ct_tensor a, ct_tensor *out) CT_NOEXCEPT;
int ct_square(ct_tensor a, ct_tensor *out) CT_NOEXCEPT;
int ct_reciprocal(ct_tensor a, ct_tensor *out) CT_NOEXCEPT;
int ct_sin(ct_tensor a, ct_tensor *out) CT_NOEXCEPT;
int ct_cos(ct_tensor a, ct_tensor *out) CT_NOEXCEPT;
int ct_tanh(ct_tensor a, ct_tensor *out) CT_NOEXCEPT;
int ct_erf(ct_tensor a, ct_tensor *out) CT_NOEXCEPT;
int ct_sigmoid(ct_tensor a, ct_tensor *out) CT_NOEXCEPT;
int ct_logsigmoid(ct_tensor a, ct_tensor *out) CT_NOEXCEPT;
int ct_relu(ct_tensor a, ct_tensor *out) CT_NOEXCEPT;
int ct_silu(ct_tensor a, ct_tensor *out) CT_NOEXCEPT;
int ct_gelu(ct_tensor a, bool tanh_approximation, ct_tensor *out) CT_NOEXCEPT;
int ct_floor(ct_tensor a, ct_tensor *out) CT_NOEXCEPT;
int ct_ceil(ct_tensor a, ct_tensor *out) CT_NOEXCEPT;
int ct_round(ct_tensor a, ct_tensor *out) CT_NOEXCEPT;
int ct_sign(ct_tensor a, ct_tensor *out) CT_NOEXCEPT;
int ct_isnan(ct_tensor a, ct_tensor *out) CT_NOEXCEPT;
int ct_isfinite(ct_tensor a, ct_tensor *out) CT_NOEXCEPT;
int ct_logical_not(ct_tensor a, ct_tensor *out) CT_NOEXCEPT;

/* comparisons and logic (results are bool tensors) */
int ct_eq(ct_tensor a, ct_tensor b, ct_tensor *out) CT_NOEXCEPT;
int ct_ne(ct_tensor a, ct_tensor b, ct_tensor *out) CT_NOEXCEPT;
int ct_lt(ct_tensor a, ct_tensor b, ct_tensor *out) CT_NOEXCEPT;
int ct_le(ct_tensor a, ct_tensor b, ct_tensor *out) CT_NOEXCEPT;
int ct_gt(ct_tensor a, ct_tensor b, ct_tensor *out) CT_NOEXCEPT;
int ct_ge(ct_tensor a, ct_tensor b, ct_tensor *out) CT_NOEXCEPT;
int ct_eq_scalar(ct_tensor a, ct_scalar s, ct_tensor *out) CT_NOEXCEPT;
int ct_ne_scalar(ct_tensor a, ct_scalar s, ct_tensor *out) CT_NOEXCEPT;
int ct_lt_scalar(ct_tensor a, ct_scalar s, ct_tensor *out) CT_NOEXCEPT;
int ct_le_scalar(ct_tensor a, ct_scalar s, ct_tensor *out) CT_NOEXCEPT;
int ct_gt_scalar(ct_tensor a, ct_scalar s, ct_tensor *out) CT_NOEXCEPT;
int ct_ge_scalar(ct_tensor a, ct_scalar s, ct_tensor *out) CT_NOEXCEPT;
int ct_logical_and(ct_tensor a, ct_tensor b, ct_tensor *out) CT_NOEXCEPT;
int ct_logical_or(ct_tensor a, ct_tensor b, ct_tensor *out) CT_NOEXCEPT;
int ct_logical_xor(ct_tensor a, ct_tensor b, ct_tensor *out) CT_NOEXCEPT;
int ct_equal(ct_tensor a, ct_tensor b, bool *out) CT_NOEXCEPT;  /* same shape and elements */

/* ---- linear algebra ---- */
int ct_matmul(ct_tensor a, ct_tensor b, ct_tensor *out) CT_NOEXCEPT;
int ct_bmm(ct_tensor a, ct_tensor b, ct_tensor *out) CT_NOEXCEPT;
int ct_linear(ct_tensor x, ct_tensor w, ct_tensor b /* nullable */, ct_tensor *out) CT_NOEXCEPT;
int ct_outer(ct_tensor a, ct_tensor b, ct_tensor *out) CT_NOEXCEPT;
int ct_mv(ct_tensor m, ct_tensor v, ct_tensor *out) CT_NOEXCEPT;

/* ---- reductions (ndims == 0: over all elements) ---- */
int ct_sum(ct_tensor t, const intptr_t *dims, int ndims, bool keepdim, int dtype /* -1: default */, ct_tensor *out) CT_NOEXCEPT;
int ct_mean(ct_tensor t, const intptr_t *dims, int ndims, bool keepdim, ct_tensor *out) CT_NOEXCEPT;
int ct_prod(ct_tensor t, ct_tensor *out) CT_NOEXCEPT;
int ct_max_all(ct_tensor t, ct_tensor *out) CT_NOEXCEPT;
int ct_min_all(ct_tensor t, ct_tensor *out) CT_NOEXCEPT;
int ct_max_dim(ct_tensor t, int64_t dim, bool keepdim, ct_tensor *values, ct_tensor *indices) CT_NOEXCEPT;
int ct_min_dim(ct_tensor t, int64_t dim, bool keepdim, ct_tensor *values, ct_tensor *indices) CT_NOEXCEPT;
int ct_argmax(ct_tensor t, int64_t dim, bool has_dim, bool keepdim, ct_tensor *out) CT_NOEXCEPT;
int ct_argmin(ct_tensor t, int64_t dim, bool has_dim, bool keepdim, ct_tensor *out) CT_NOEXCEPT;
int ct_topk(ct_tensor t, int64_t k, int64_t dim, bool largest, bool sorted, ct_tensor *values, ct_tensor *indices) CT_NOEXCEPT;
int ct_sort(ct_tensor t, int64_t dim, bool descending, bool stable, ct_tensor *values, ct_tensor *indices) CT_NOEXCEPT;
int ct_logsumexp(ct_tensor t, const intptr_t *dims, int ndims, bool keepdim, ct_tensor *out) CT_NOEXCEPT;
int ct_var(ct_tensor t, const intptr_t *dims, int ndims, bool unbiased, bool keepdim, ct_tensor *out) CT_NOEXCEPT;
int ct_vector_norm(ct_tensor t, double ord, const intptr_t *dims, int ndims, bool keepdim, ct_tensor *out) CT_NOEXCEPT;
int ct_cumsum(ct_tensor t, int64_t dim, ct_tensor *out) CT_NOEXCEPT;
int ct_all(ct_tensor t, ct_tensor *out) CT_NOEXCEPT;
int ct_any(ct_tensor t, ct_tensor *out) CT_NOEXCEPT;
int ct_softmax(ct_tensor t, int64_t dim, int dtype /* -1: input's */, ct_tensor *out) CT_NOEXCEPT;
int ct_log_softmax(ct_tensor t, int64_t dim, int dtype /* -1: input's */, ct_tensor *out) CT_NOEXCEPT;

/* ---- neural-network functions ---- */
int ct_layer_norm(ct_tensor x, const intptr_t *normalized_shape, int ndim, ct_tensor w /* nullable */,
                  ct_tensor b /* nullable */, double eps, ct_tensor *out) CT_NOEXCEPT;
/* LLaMA's RMSNorm over the last dimension: weight * to_x_dtype(h / sqrt(mean(h^2) + eps)), h = float32(x). */
int ct_rms_norm(ct_tensor x, ct_tensor w /* nullable */, double eps, ct_tensor *out) CT_NOEXCEPT;
/* Rotary embedding: x * cos + rotate_half(x) * sin; x [B, H, L, D], cos and sin [B, L, D]. */
int ct_rotary(ct_tensor x, ct_tensor cos, ct_tensor sin, ct_tensor *out) CT_NOEXCEPT;
int ct_embedding(ct_tensor weight, ct_tensor ids, int64_t padding_idx /* -1: none */, ct_tensor *out) CT_NOEXCEPT;
int ct_conv2d(ct_tensor x, ct_tensor w, ct_tensor b /* nullable */, const intptr_t *stride,
              const intptr_t *padding, const intptr_t *dilation, int64_t groups, ct_tensor *out) CT_NOEXCEPT;
int ct_dropout(ct_tensor x, double p, bool train, ct_tensor *out) CT_NOEXCEPT;
/* q, k, v: [..., L, E]. mask (nullable): bool (true = attend) or additive float, broadcastable to [..., L, S].
 * scale <= 0 means 1/sqrt(E). force_manual selects the composite path even where libtorch has the fused op. */
int ct_sdpa(ct_tensor q, ct_tensor k, ct_tensor v, ct_tensor mask, double dropout_p, bool is_causal,
            double scale, bool force_manual, ct_tensor *out) CT_NOEXCEPT;
bool ct_has_fused_sdpa(void) CT_NOEXCEPT;
/* logits [N, C] (or [N, C, d...]) and integer targets; weight nullable. */
int ct_cross_entropy(ct_tensor logits, ct_tensor target, ct_tensor weight, int reduction, int64_t ignore_index,
                     double label_smoothing, ct_tensor *out) CT_NOEXCEPT;
int ct_interpolate_bicubic(ct_tensor x, int64_t out_h, int64_t out_w, bool align_corners, ct_tensor *out) CT_NOEXCEPT;

/* ---- conversion ---- */
int ct_to_dtype(ct_tensor t, int dtype, ct_tensor *out) CT_NOEXCEPT;
int ct_to_device(ct_tensor t, int dev, int dev_index, ct_tensor *out) CT_NOEXCEPT;

/* ---- in-place (what optimizers and initializers need) ---- */
int ct_add_(ct_tensor t, ct_tensor other, ct_scalar alpha) CT_NOEXCEPT;
int ct_add_scalar_(ct_tensor t, ct_scalar s) CT_NOEXCEPT;
int ct_mul_(ct_tensor t, ct_tensor other) CT_NOEXCEPT;
int ct_mul_scalar_(ct_tensor t, ct_scalar s) CT_NOEXCEPT;
int ct_div_(ct_tensor t, ct_tensor other) CT_NOEXCEPT;
int ct_div_scalar_(ct_tensor t, ct_scalar s) CT_NOEXCEPT;
int ct_addcmul_(ct_tensor t, ct_tensor a, ct_tensor b, ct_scalar value) CT_NOEXCEPT;
int ct_addcdiv_(ct_tensor t, ct_tensor a, ct_tensor b, ct_scalar value) CT_NOEXCEPT;
int ct_lerp_(ct_tensor t, ct_tensor end, ct_scalar weight) CT_NOEXCEPT;
int ct_sqrt_(ct_tensor t) CT_NOEXCEPT;
int ct_clamp_(ct_tensor t, double min, bool has_min, double max, bool has_max) CT_NOEXCEPT;
int ct_copy_(ct_tensor dst, ct_tensor src) CT_NOEXCEPT;
int ct_zero_(ct_tensor t) CT_NOEXCEPT;
int ct_fill_(ct_tensor t, ct_scalar s) CT_NOEXCEPT;
int ct_uniform_(ct_tensor t, double from, double to, ct_generator gen) CT_NOEXCEPT;
int ct_normal_(ct_tensor t, double mean, double std, ct_generator gen) CT_NOEXCEPT;
int ct_masked_fill_(ct_tensor t, ct_tensor mask, ct_scalar value) CT_NOEXCEPT;

/* ---- autograd ---- */
int ct_set_requires_grad(ct_tensor t, bool requires_grad) CT_NOEXCEPT;
int ct_backward(ct_tensor t, ct_tensor grad /* nullable */, bool retain_graph) CT_NOEXCEPT;
/* *out is NULL when the tensor has no gradient. */
int ct_grad(ct_tensor t, ct_tensor *out) CT_NOEXCEPT;
int ct_set_grad(ct_tensor t, ct_tensor grad /* nullable: clears it */) CT_NOEXCEPT;
int ct_zero_grad(ct_tensor t) CT_NOEXCEPT;  /* clears the gradient (set to None, as zero_grad(set_to_none=True)) */
int ct_detach(ct_tensor t, ct_tensor *out) CT_NOEXCEPT;

/* ---- gradient checkpointing ---- */
/* A region's forward: reads n_inputs borrowed input handles (valid during the call), writes at most `capacity` new
 * output handles (owned by the shim from then on) and their count; returns 0, or non-zero after ct_set_error. */
typedef int (*ct_region_fn)(void *context, const ct_tensor *inputs, int n_inputs, ct_tensor *outputs, int capacity,
                            int *n_outputs);
/* The calling thread's error message, for a region callback that fails. */
void ct_set_error(const char *message) CT_NOEXCEPT;
/* outputs = fn(inputs), keeping none of the region's activations for backward: backward runs fn again (gradients
 * recorded, the CPU and the inputs' CUDA random-number states of the first run replayed) on the saved inputs and
 * differentiates that. params: the trainable tensors fn reads besides its inputs (their gradients reach them
 * through the checkpoint). fn runs on the thread that runs backward. release(context) is called once, when the graph
 * is freed (at once when nothing needs a gradient or on failure). Without gradients fn simply runs once. */
int ct_checkpoint(ct_region_fn fn, void *context, void (*release)(void *), const ct_tensor *inputs, int n_inputs,
                  const ct_tensor *params, int n_params, ct_tensor *outputs, int capacity, int *n_outputs) CT_NOEXCEPT;

/* ---- process groups (c10d): a TCPStore rendezvous and a backend, the collectives training needs ---- */
typedef struct ct_process_group_s *ct_process_group;
enum { CT_REDUCE_SUM = 0, CT_REDUCE_MAX = 1, CT_REDUCE_MIN = 2 };
bool ct_has_gloo(void) CT_NOEXCEPT;
bool ct_has_nccl(void) CT_NOEXCEPT;
/* Joins group `world` as `rank`: a TCPStore at host:port (served by this process when host_store), its keys under
 * `prefix`, then the backend ("gloo"). `interface` (nullable or empty: the default device) is the network interface
 * Gloo binds to. timeout_ms bounds the rendezvous and every collective; a failure names the rank and the operation.
 * Free with ct_pg_free. */
int ct_pg_init(const char *backend, const char *host, int port, int rank, int world, bool host_store,
               const char *prefix, const char *interface, int64_t timeout_ms, ct_process_group *out) CT_NOEXCEPT;
void ct_pg_free(ct_process_group pg) CT_NOEXCEPT;
/* In place over every rank, tensors of equal shapes in the same order on each. */
int ct_pg_allreduce(ct_process_group pg, ct_tensor *ts, int n, int op) CT_NOEXCEPT;
int ct_pg_broadcast(ct_process_group pg, ct_tensor *ts, int n, int root) CT_NOEXCEPT;
/* Every rank's `t` (equal shapes), in rank order: an array of world-size new handles (ct_free_array). */
int ct_pg_allgather(ct_process_group pg, ct_tensor t, ct_tensor **outs, int64_t *n) CT_NOEXCEPT;
int ct_pg_barrier(ct_process_group pg) CT_NOEXCEPT;
/* The rendezvous store's keys (under the group's prefix). get waits for the key up to the group's timeout;
 * free its bytes with ct_free_bytes. */
int ct_pg_store_set(ct_process_group pg, const char *key, const uint8_t *bytes, int64_t count) CT_NOEXCEPT;
int ct_pg_store_get(ct_process_group pg, const char *key, uint8_t **bytes, int64_t *count) CT_NOEXCEPT;
int ct_pg_store_check(ct_process_group pg, const char *key, bool *present) CT_NOEXCEPT;
void ct_free_bytes(uint8_t *bytes) CT_NOEXCEPT;
/* Gradient sums over the group overlapped with backward (as c10d's Reducer for DDP): post hooks on the tensors'
 * gradient accumulators. bucket_of[i] (0, 1, ...: the order the all-reduces start in, the same on every rank)
 * groups tensors of one dtype and device. arm: the next backward is the step's last; its hooks start each bucket's
 * all-reduce once its gradients are accumulated and every earlier bucket has started. finish (after that backward,
 * or with none): starts the rest, waits, and leaves each tensor's gradient summed over the ranks (a tensor no rank
 * has a gradient for keeps none); *started_in_backward says how many buckets the hooks started. */
typedef struct ct_grad_reducer_s *ct_grad_reducer;
int ct_grad_reducer_new(ct_process_group pg, ct_tensor *params, int n, const int64_t *bucket_of, ct_grad_reducer *out) CT_NOEXCEPT;
void ct_grad_reducer_free(ct_grad_reducer r) CT_NOEXCEPT;
int ct_grad_reducer_arm(ct_grad_reducer r) CT_NOEXCEPT;
int ct_grad_reducer_finish(ct_grad_reducer r, int *started_in_backward) CT_NOEXCEPT;

/* ---- benchmarks: the same loops in plain C++, against the same libtorch ---- */
/* ns per at::add of two numel-element float tensors, averaged over iters; below_autograd runs the loop with
 * the autograd dispatch keys excluded (what the shim does for ops whose inputs need no gradient). */
int ct_bench_add_loop(int64_t numel, int64_t iters, bool below_autograd, double *ns_per_op) CT_NOEXCEPT;

#ifdef __cplusplus
}
#endif

#endif
