// Entry points of `realign bench ops`.
#include "internal.h"

extern "C" {

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
