// The fused attention: few queries, and the blocked kernel for longer sequences (used by ct_sdpa only).
#include "kernels.h"

namespace fused {

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
      const float total = vec::exp_shifted(weights.data(), S, top);
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
  const float inverse = 1.f / vec::exp_shifted(row, n, vec::max(row, n));
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

extern "C" {

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
}  // extern "C"
