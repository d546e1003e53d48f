// Model-specific normalisation and position kernels in one place: RMSNorm and rotary embedding.
#include "kernels.h"

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
}  // namespace fused
