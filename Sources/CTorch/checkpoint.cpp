// Gradient checkpointing: a region (one decoder layer) keeps none of its activations for backward; backward runs it
// again and takes the gradients of that recomputation (torch.utils.checkpoint, use_reentrant=True, with the
// region's trainable tensors passed explicitly, so it works when no input requires grad: a frozen embedding under
// LoRA, where PyTorch's reentrant form needs enable_input_require_grads).
#include "internal.h"

#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/autograd/custom_function.h>

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// What the region needs until the graph is freed: the callback, its context, the trainable tensors and the
// random-number states at the first run (dropout draws the same masks again).
struct Region {
  ct_region_fn fn;
  void *context;
  void (*release)(void *);
  std::vector<at::Tensor> params;
  std::vector<bool> input_requires_grad;
  std::vector<std::pair<at::Generator, at::Tensor>> rng;  // generator, its state before the first run

  ~Region() {
    if (release) release(context);
  }

  // The region on `inputs`, with gradients recorded (as an uncheckpointed forward runs: the same kernels, so the
  // same values to the last bit; the no-grad kernels would differ in the last bits).
  variable_list run(const variable_list &inputs, bool record = true) const {
    at::AutoGradMode enable(record || c10::GradMode::is_enabled());
    std::vector<ct_tensor> in(inputs.size()), out(64, nullptr);
    for (size_t i = 0; i < inputs.size(); i++) in[i] = reinterpret_cast<ct_tensor>(inputs[i].unsafeGetTensorImpl());
    int n = 0;
    if (fn(context, in.data(), int(in.size()), out.data(), int(out.size()), &n) != 0)
      throw std::runtime_error(t_error.empty() ? "a checkpointed region failed" : t_error);
    variable_list outputs;
    for (int i = 0; i < n; i++) {
      outputs.push_back(T(out[i]));
      ::release(out[i]);
    }
    return outputs;
  }

  // Fresh leaves sharing the inputs' data, asking for gradients where the originals did.
  variable_list leaves(const variable_list &inputs) const {
    variable_list out;
    for (size_t i = 0; i < inputs.size(); i++) {
      at::Tensor x = inputs[i].detach();
      if (input_requires_grad[i]) x.set_requires_grad(true);
      out.push_back(x);
    }
    return out;
  }
};

// Keeps the region alive exactly as long as the node (ctx->saved_data holds IValues: a one-byte tensor over the
// region whose deleter frees it).
at::Tensor holder(Region *r) {
  return at::from_blob(r, {1}, [](void *p) { delete static_cast<Region *>(p); }, at::TensorOptions().dtype(at::kByte));
}
Region *region(AutogradContext *ctx) { return static_cast<Region *>(ctx->saved_data["region"].toTensor().data_ptr()); }

struct Checkpoint : torch::autograd::Function<Checkpoint> {
  // inputs then params; keep: the region's holder (not a variable: never gets a gradient).
  static variable_list forward(AutogradContext *ctx, at::TensorList inputs, at::TensorList params, at::Tensor keep) {
    Region *r = static_cast<Region *>(keep.data_ptr());
    ctx->saved_data["region"] = keep;
    variable_list in(inputs.begin(), inputs.end());
    ctx->save_for_backward(in);
    variable_list outputs;
    {
      variable_list recorded = r->run(r->leaves(in));  // its graph goes when this scope ends
      for (const at::Tensor &y : recorded) outputs.push_back(y.detach());
    }
    return outputs;
  }

  static variable_list backward(AutogradContext *ctx, variable_list grads) {
    Region *r = region(ctx);
    const variable_list inputs = r->leaves(ctx->get_saved_variables());
    // Replay the first run's random numbers; the generators get their current state back however the run ends.
    std::vector<at::Tensor> now;
    for (auto &[g, state] : r->rng) {
      std::lock_guard<std::mutex> lock(g.mutex());
      now.push_back(g.get_state());
      g.set_state(state);
    }
    struct Restore {
      Region *r;
      std::vector<at::Tensor> &now;
      ~Restore() {
        for (size_t i = 0; i < r->rng.size(); i++) {
          std::lock_guard<std::mutex> lock(r->rng[i].first.mutex());
          r->rng[i].first.set_state(now[i]);
        }
      }
    };
    variable_list outputs;
    {
      Restore restore{r, now};
      outputs = r->run(inputs);
    }
    // d(sum of outputs . grads) / d(inputs, params), over the outputs that depend on something trainable.
    variable_list ys, gs, xs;
    for (size_t i = 0; i < outputs.size() && i < grads.size(); i++) {
      if (outputs[i].requires_grad() && grads[i].defined()) {
        ys.push_back(outputs[i]);
        gs.push_back(grads[i]);
      }
    }
    std::vector<int64_t> which;  // positions in (inputs, params) of xs
    for (size_t i = 0; i < inputs.size(); i++)
      if (inputs[i].requires_grad()) { xs.push_back(inputs[i]); which.push_back(int64_t(i)); }
    for (size_t i = 0; i < r->params.size(); i++)
      if (r->params[i].requires_grad()) { xs.push_back(r->params[i]); which.push_back(int64_t(inputs.size() + i)); }
    variable_list result(inputs.size() + r->params.size() + 1);  // + the holder's (none)
    if (ys.empty() || xs.empty()) return result;
    at::AutoGradMode enable(true);
    const variable_list dx = torch::autograd::grad(ys, xs, gs, /*retain_graph=*/false, /*create_graph=*/false,
                                                   /*allow_unused=*/true);
    for (size_t j = 0; j < which.size(); j++) result[size_t(which[j])] = dx[j];
    return result;
  }
};

}  // namespace

extern "C" {

void ct_set_error(const char *message) noexcept {
  try {
    t_error = message ? message : "";
  } catch (...) {
  }
}

int ct_checkpoint(ct_region_fn fn, void *context, void (*release_context)(void *), const ct_tensor *inputs,
                  int n_inputs, const ct_tensor *params, int n_params, ct_tensor *outputs, int capacity,
                  int *n_outputs) noexcept {
  auto *r = new (std::nothrow) Region{fn, context, release_context, {}, {}, {}};
  if (!r) {
    if (release_context) release_context(context);
    t_error = "out of memory";
    return 1;
  }
  at::Tensor keep;
  CT_TRY({
    try {
      keep = holder(r);
    } catch (...) {
      delete r;
      throw;
    }
    const at::TensorList in = list(inputs, n_inputs), ps = list(params, n_params);
    for (const at::Tensor &p : ps) r->params.push_back(p);
    bool any = false;
    c10::optional<at::Device> cuda;
    for (const at::Tensor &x : in) {
      const bool grad = x.requires_grad();
      r->input_requires_grad.push_back(grad);
      any = any || grad;
      if (x.is_cuda() && !cuda) cuda = x.device();
    }
    for (const at::Tensor &p : ps) any = any || p.requires_grad();
    auto cpu = at::detail::getDefaultCPUGenerator();
    {
      std::lock_guard<std::mutex> lock(cpu.mutex());
      r->rng.emplace_back(cpu, cpu.get_state());
    }
    if (cuda) {
      auto g = at::globalContext().defaultGenerator(*cuda);
      std::lock_guard<std::mutex> lock(g.mutex());
      r->rng.emplace_back(g, g.get_state());
    }
    // Nothing to differentiate: the region runs once, as it is.
    const bool recorded = c10::GradMode::is_enabled() && any;
    const variable_list out = recorded ? Checkpoint::apply(in, ps, keep)
                                       : r->run(variable_list(in.begin(), in.end()), /*record=*/false);
    keep.reset();  // the node holds the region now, or nothing does
    if (int(out.size()) > capacity) throw std::runtime_error("a checkpointed region returned more outputs than asked");
    for (size_t i = 0; i < out.size(); i++) outputs[i] = wrap(out[i]);
    *n_outputs = int(out.size());
  })
}

}  // extern "C"
