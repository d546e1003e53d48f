// Process groups over libtorch's own c10d: a TCPStore rendezvous and the Gloo backend (NCCL where the libtorch
// has it), and the collectives data-parallel training needs. Nothing here is a transport of ours.
#include "internal.h"

#include <condition_variable>

#include <torch/csrc/autograd/function.h>

#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

// Gloo's headers come from the libgloo-dev package (Debian) beside libtorch's; the c10d header compiles its
// class only when USE_C10D_GLOO is set, as libtorch's own build sets it.
#if __has_include(<gloo/algorithm.h>)
#define CT_GLOO 1
#ifndef USE_C10D_GLOO
#define USE_C10D_GLOO
#endif
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#else
#define CT_GLOO 0
#endif

// NCCL, for CUDA tensors: only in a build against a CUDA libtorch whose NCCL and CUDA headers Package.swift found
// (it sets CT_WITH_NCCL). Not built against Debian's CPU libtorch.
#if defined(CT_WITH_NCCL) && __has_include(<nccl.h>)
#define CT_NCCL 1
#ifndef USE_C10D_NCCL
#define USE_C10D_NCCL
#endif
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#else
#define CT_NCCL 0
#endif

// The backend is held by its own type: libtorch 1.13 derives the backends from ProcessGroup, 2.x from Backend,
// and both give each the same collective methods.
// Every rank beats a counter into the store (`heartbeat/<rank>`, its own connection, twice a second), so that
// when a collective fails the survivors can say which rank stopped: Gloo only reports a closed connection.
struct Heartbeat {
  std::mutex lock;
  std::condition_variable wake;
  bool stop = false, finished = false;
};

struct ct_process_group_s {
  c10::intrusive_ptr<c10d::Store> store;
  std::shared_ptr<Heartbeat> heartbeat;
#if CT_GLOO
  c10::intrusive_ptr<c10d::ProcessGroupGloo> gloo;
#endif
#if CT_NCCL
  c10::intrusive_ptr<c10d::ProcessGroupNCCL> nccl;
#endif
  int rank = 0, world = 1;
  std::chrono::milliseconds timeout{0};
};

namespace {

// Calls `f` with the group's backend.
template <typename F>
c10::intrusive_ptr<c10d::Work> on_backend(ct_process_group pg, F &&f) {
#if CT_NCCL
  if (pg->nccl) return f(*pg->nccl);
#endif
#if CT_GLOO
  if (pg->gloo) return f(*pg->gloo);
#endif
  (void)f;
  throw std::runtime_error("the process group has no backend");
}

// Starts a collective and waits for it within the group's timeout; a failure names this rank, the operation and
// the cause (Gloo reports a peer that went away as a closed connection or a timeout).
constexpr auto beat_interval = std::chrono::milliseconds(500);

std::vector<uint8_t> counter_bytes(int64_t n) {
  const std::string s = std::to_string(n);
  return std::vector<uint8_t>(s.begin(), s.end());
}

void start_heartbeat(ct_process_group pg, const std::string &host, int port, const std::string &prefix) {
  c10d::TCPStoreOptions options;
  options.port = static_cast<std::uint16_t>(port);
  options.isServer = false;
  options.waitWorkers = false;
  options.timeout = pg->timeout;
  auto store = c10::make_intrusive<c10d::PrefixStore>(prefix, c10::make_intrusive<c10d::TCPStore>(host, options));
  auto beat = std::make_shared<Heartbeat>();
  const std::string key = "heartbeat/" + std::to_string(pg->rank);
  std::thread([store, beat, key] {
    std::unique_lock<std::mutex> guard(beat->lock);
    for (int64_t n = 1; !beat->stop; n++) {
      guard.unlock();
      try {
        store->set(key, counter_bytes(n));
      } catch (...) {  // the store is gone: nothing left to tell
        guard.lock();
        break;
      }
      guard.lock();
      beat->wake.wait_for(guard, beat_interval, [&] { return beat->stop; });
    }
    beat->finished = true;
    beat->wake.notify_all();
  }).detach();
  pg->heartbeat = beat;
}

// Stops the beat and waits briefly for the thread (a store that hangs must not hang the caller: it then lives
// on, detached, holding only its own store connection).
void stop_heartbeat(ct_process_group pg) {
  if (!pg->heartbeat) return;
  std::unique_lock<std::mutex> guard(pg->heartbeat->lock);
  pg->heartbeat->stop = true;
  pg->heartbeat->wake.notify_all();
  pg->heartbeat->wake.wait_for(guard, std::chrono::seconds(2), [&] { return pg->heartbeat->finished; });
}

// After a failed collective: the ranks whose heartbeat does not move over a few beats, or a note that the store
// itself is gone (its host, rank 0 or torchrun's agent, stopped).
std::string stopped_ranks(ct_process_group pg) {
  try {
    auto read = [&] {
      std::vector<std::string> beats(pg->world);
      for (int r = 0; r < pg->world; r++) {
        const std::string key = "heartbeat/" + std::to_string(r);
        if (r != pg->rank && pg->store->check({key})) {
          auto v = pg->store->get(key);
          beats[r] = std::string(v.begin(), v.end());
        }
      }
      return beats;
    };
    const auto before = read();
    std::this_thread::sleep_for(beat_interval * 5);
    const auto after = read();
    std::string names;
    for (int r = 0; r < pg->world; r++)
      if (r != pg->rank && before[r] == after[r]) names += (names.empty() ? "" : ", ") + std::to_string(r);
    return names.empty() ? "" : "; rank " + names + " stopped (no heartbeat for " +
                                    std::to_string(beat_interval.count() * 5 / 1000.0).substr(0, 3) + " s)";
  } catch (...) {
    return "; the rendezvous store is gone (its host stopped: rank 0, or torchrun's agent)";
  }
}

[[noreturn]] void failed(ct_process_group pg, const char *what, const std::string &cause) {
  throw std::runtime_error("rank " + std::to_string(pg->rank) + " of " + std::to_string(pg->world) + ": " + what +
                           " failed: " + cause + stopped_ranks(pg));
}

template <typename Start>
void collective(ct_process_group pg, const char *what, Start &&start) {
  try {
    c10::intrusive_ptr<c10d::Work> work = start();
    if (!work->wait(pg->timeout)) throw std::runtime_error("timed out");
  } catch (const c10::Error &e) {
    failed(pg, what, e.what_without_backtrace());
  } catch (const std::exception &e) {
    failed(pg, what, e.what());
  }
}

c10d::AllreduceOptions sum_options(ct_process_group pg) {
  c10d::AllreduceOptions opts;
  opts.reduceOp = c10d::ReduceOp::SUM;
  opts.timeout = pg->timeout;
  return opts;
}

// Gradient sums overlapped with backward, as c10d's Reducer does it for DDP: each trainable tensor's gradient
// accumulator gets a post hook; while armed (the step's last backward), a bucket's all-reduce starts as soon as
// its last gradient has been accumulated and every bucket before it has started, so that the collectives keep one
// order on every rank whatever order the gradients arrive in. finish() starts the rest (a tensor that got no
// gradient in that backward sends what it holds from earlier micro-batches, or zeros), waits for all of them and
// writes the sums back. Reducer itself is not used: its constructor changes between libtorch 1.13 and 2.x.
struct ReducerState {
  std::mutex lock;
  ct_process_group pg = nullptr;
  std::vector<at::Tensor> params;
  std::vector<size_t> bucket_of;
  std::vector<int64_t> offset_of;
  std::vector<at::Tensor> flats;   // one flat buffer per bucket, in start order
  std::vector<int> sizes;          // tensors per bucket
  std::vector<int> waiting;        // per bucket: its tensors not yet ready in this backward
  std::vector<char> ready;
  std::vector<c10::intrusive_ptr<c10d::Work>> works;
  size_t next = 0;  // the first bucket not started
  bool armed = false;
  int started_in_backward = 0;
  int64_t twice = -1;  // a tensor whose gradient was ready twice in one backward (reentrant backward)

  void reset() {
    armed = false;
    std::fill(ready.begin(), ready.end(), 0);
    waiting = sizes;
    works.assign(flats.size(), {});
    next = 0;
    started_in_backward = 0;
    twice = -1;
  }
  // The tensor's gradient into its bucket (zeros without one).
  void copy_in(size_t i) {
    auto slot = flats[bucket_of[i]].narrow(0, offset_of[i], params[i].numel());
    const auto &g = params[i].grad();
    if (g.defined()) slot.copy_(g.reshape(-1)); else slot.zero_();
  }
  void start_ready_buckets() {
    while (next < flats.size() && waiting[next] == 0) {
      std::vector<at::Tensor> one{flats[next]};
      auto opts = sum_options(pg);
      works[next] = on_backend(pg, [&](auto &b) { return b.allreduce(one, opts); });
      next++;
    }
  }
  void mark_ready(size_t i) {
    std::lock_guard<std::mutex> guard(lock);
    if (!armed) return;
    if (ready[i]) {
      twice = static_cast<int64_t>(i);
      return;
    }
    ready[i] = 1;
    at::NoGradGuard no_grad;
    copy_in(i);
    waiting[bucket_of[i]]--;
    const size_t before = next;
    start_ready_buckets();
    started_in_backward += static_cast<int>(next - before);
  }
};

struct GradReadyHook : torch::autograd::FunctionPostHook {
  std::weak_ptr<ReducerState> state;
  size_t index;
  GradReadyHook(std::weak_ptr<ReducerState> s, size_t i) : state(std::move(s)), index(i) {}
  torch::autograd::variable_list operator()(const torch::autograd::variable_list &outputs,
                                            const torch::autograd::variable_list &) override {
    if (auto s = state.lock()) s->mark_ready(index);
    return outputs;
  }
};

c10d::ReduceOp reduce_op(int op) {
  switch (op) {
    case CT_REDUCE_SUM: return c10d::ReduceOp::SUM;
    case CT_REDUCE_MAX: return c10d::ReduceOp::MAX;
    case CT_REDUCE_MIN: return c10d::ReduceOp::MIN;
  }
  throw std::invalid_argument("unknown reduction " + std::to_string(op));
}

}  // namespace

struct ct_grad_reducer_s {
  std::shared_ptr<ReducerState> state;
  // Held so that the hooks outlive the graphs: a tensor keeps only a weak reference to its accumulator (a
  // shared_ptr in libtorch 1.13, an intrusive_ptr in recent 2.x).
  std::vector<decltype(torch::autograd::impl::grad_accumulator(std::declval<const at::Tensor &>()))> accumulators;
  std::vector<uintptr_t> keys;
  ~ct_grad_reducer_s() {
    for (size_t i = 0; i < accumulators.size(); i++) accumulators[i]->del_post_hook(keys[i]);
  }
};

extern "C" {

bool ct_has_gloo(void) noexcept { return CT_GLOO; }
bool ct_has_nccl(void) noexcept { return CT_NCCL; }

int ct_pg_init(const char *backend, const char *host, int port, int rank, int world, bool host_store,
               const char *prefix, const char *interface, int64_t timeout_ms, ct_process_group *out) noexcept {
  CT_TRY({
    if (world < 1 || rank < 0 || rank >= world)
      throw std::invalid_argument("rank " + std::to_string(rank) + " is not in a world of " + std::to_string(world));
    if (port < 1 || port > 65535) throw std::invalid_argument("port " + std::to_string(port) + " is out of range");
    auto pg = std::make_unique<ct_process_group_s>();
    pg->rank = rank;
    pg->world = world;
    pg->timeout = std::chrono::milliseconds(timeout_ms);
    c10d::TCPStoreOptions options;
    options.port = static_cast<std::uint16_t>(port);
    options.isServer = host_store;
    options.numWorkers = world;
    options.waitWorkers = false;
    options.timeout = pg->timeout;
    try {
      auto tcp = c10::make_intrusive<c10d::TCPStore>(std::string(host), options);
      pg->store = c10::make_intrusive<c10d::PrefixStore>(std::string(prefix), tcp);
    } catch (const std::exception &e) {
      throw std::runtime_error("rank " + std::to_string(rank) + ": the rendezvous store at " + host + ":" +
                               std::to_string(port) + (host_store ? " (hosted here)" : "") + " failed: " + e.what());
    }
    const std::string name(backend);
    if (name == "gloo") {
#if CT_GLOO
      auto opts = c10d::ProcessGroupGloo::Options::create(pg->timeout);
      opts->devices.push_back(interface && *interface ? c10d::ProcessGroupGloo::createDeviceForInterface(interface)
                                                      : c10d::ProcessGroupGloo::createDefaultDevice());
      try {
        pg->gloo = c10::make_intrusive<c10d::ProcessGroupGloo>(pg->store, rank, world, opts);
      } catch (const std::exception &e) {
        throw std::runtime_error("rank " + std::to_string(rank) + " of " + std::to_string(world) +
                                 ": joining the Gloo group failed (did every rank start?): " + e.what());
      }
#else
      throw std::runtime_error("this build has no Gloo: install libgloo-dev and rebuild the shim (make shim; its headers were missing)");
#endif
    } else if (name == "nccl") {
#if CT_NCCL
      auto opts = c10d::ProcessGroupNCCL::Options::create();
      opts->timeout = pg->timeout;
      pg->nccl = c10::make_intrusive<c10d::ProcessGroupNCCL>(pg->store, rank, world, opts);
#else
      throw std::runtime_error("this shim has no NCCL: build it against a CUDA libtorch with NCCL's headers (LIBTORCH=... scripts/build-shim.sh), or use --dist-backend gloo");
#endif
    } else {
      throw std::invalid_argument("unknown process-group backend \"" + name + "\" (gloo or nccl)");
    }
    start_heartbeat(pg.get(), host, port, prefix);
    *out = pg.release();
  })
}

void ct_pg_free(ct_process_group pg) noexcept {
  try {
    stop_heartbeat(pg);
    delete pg;
  } catch (...) {
  }
}

int ct_pg_allreduce(ct_process_group pg, ct_tensor *ts, int n, int op) noexcept {
  CT_TRY({
    c10d::AllreduceOptions opts;
    opts.reduceOp = reduce_op(op);
    opts.timeout = pg->timeout;
    // One collective per tensor: a list given to one call means one tensor per device of this process.
    for (int i = 0; i < n; i++) {
      std::vector<at::Tensor> one{T(ts[i])};
      collective(pg, "all-reduce", [&] { return on_backend(pg, [&](auto &b) { return b.allreduce(one, opts); }); });
    }
  })
}

int ct_pg_broadcast(ct_process_group pg, ct_tensor *ts, int n, int root) noexcept {
  CT_TRY({
    if (root < 0 || root >= pg->world) throw std::invalid_argument("broadcast root " + std::to_string(root) + " is not a rank");
    c10d::BroadcastOptions opts;
    opts.rootRank = root;
    opts.timeout = pg->timeout;
    for (int i = 0; i < n; i++) {
      std::vector<at::Tensor> one{T(ts[i])};
      collective(pg, "broadcast", [&] { return on_backend(pg, [&](auto &b) { return b.broadcast(one, opts); }); });
    }
  })
}

int ct_pg_allgather(ct_process_group pg, ct_tensor t, ct_tensor **outs, int64_t *n) noexcept {
  CT_TRY({
    std::vector<at::Tensor> input{T(t)};
    std::vector<std::vector<at::Tensor>> output(1);
    for (int r = 0; r < pg->world; r++) output[0].push_back(at::empty_like(T(t)));
    c10d::AllgatherOptions opts;
    opts.timeout = pg->timeout;
    collective(pg, "all-gather", [&] { return on_backend(pg, [&](auto &b) { return b.allgather(output, input, opts); }); });
    wrap_list(output[0], outs, n);
  })
}

int ct_pg_barrier(ct_process_group pg) noexcept {
  CT_TRY({
    c10d::BarrierOptions opts;
    opts.timeout = pg->timeout;
    collective(pg, "barrier", [&] { return on_backend(pg, [&](auto &b) { return b.barrier(opts); }); });
  })
}

int ct_pg_store_set(ct_process_group pg, const char *key, const uint8_t *bytes, int64_t count) noexcept {
  CT_TRY({ pg->store->set(std::string(key), std::vector<uint8_t>(bytes, bytes + count)); })
}

int ct_pg_store_get(ct_process_group pg, const char *key, uint8_t **bytes, int64_t *count) noexcept {
  CT_TRY({
    std::vector<uint8_t> value;
    try {
      value = pg->store->get(std::string(key));
    } catch (const std::exception &e) {
      throw std::runtime_error("rank " + std::to_string(pg->rank) + ": reading \"" + key + "\" from the store failed: " + e.what());
    }
    auto *p = static_cast<uint8_t *>(std::malloc(value.empty() ? 1 : value.size()));
    if (!p) throw std::bad_alloc();
    if (!value.empty()) std::memcpy(p, value.data(), value.size());
    *bytes = p;
    *count = static_cast<int64_t>(value.size());
  })
}

int ct_pg_store_check(ct_process_group pg, const char *key, bool *present) noexcept {
  CT_TRY({ *present = pg->store->check({std::string(key)}); })
}

void ct_free_bytes(uint8_t *bytes) noexcept { std::free(bytes); }

int ct_grad_reducer_new(ct_process_group pg, ct_tensor *params, int n, const int64_t *bucket_of, ct_grad_reducer *out) noexcept {
  CT_TRY({
    auto r = std::make_unique<ct_grad_reducer_s>();
    auto state = std::make_shared<ReducerState>();
    state->pg = pg;
    size_t buckets = 0;
    for (int i = 0; i < n; i++) {
      if (bucket_of[i] < 0) throw std::invalid_argument("tensor " + std::to_string(i) + " has no bucket");
      buckets = std::max(buckets, static_cast<size_t>(bucket_of[i]) + 1);
    }
    std::vector<int64_t> lengths(buckets, 0);
    std::vector<at::Tensor> first(buckets);
    state->sizes.assign(buckets, 0);
    for (int i = 0; i < n; i++) {
      const at::Tensor &p = T(params[i]);
      const size_t b = static_cast<size_t>(bucket_of[i]);
      if (!p.requires_grad() || !p.is_leaf())
        throw std::invalid_argument("tensor " + std::to_string(i) + " is not a leaf that requires grad");
      if (first[b].defined() && (first[b].scalar_type() != p.scalar_type() || first[b].device() != p.device()))
        throw std::invalid_argument("bucket " + std::to_string(b) + " mixes dtypes or devices");
      if (!first[b].defined()) first[b] = p;
      state->params.push_back(p);
      state->bucket_of.push_back(b);
      state->offset_of.push_back(lengths[b]);
      lengths[b] += p.numel();
      state->sizes[b]++;
    }
    for (size_t b = 0; b < buckets; b++) {
      if (!first[b].defined()) throw std::invalid_argument("bucket " + std::to_string(b) + " is empty");
      state->flats.push_back(at::empty({lengths[b]}, first[b].options().requires_grad(false)));
    }
    state->ready.assign(state->params.size(), 0);
    state->reset();
    for (size_t i = 0; i < state->params.size(); i++) {
      auto acc = torch::autograd::impl::grad_accumulator(state->params[i]);
      if (!acc) throw std::invalid_argument("tensor " + std::to_string(i) + " has no gradient accumulator");
      r->keys.push_back(acc->add_post_hook(std::make_unique<GradReadyHook>(state, i)));
      r->accumulators.push_back(std::move(acc));
    }
    r->state = std::move(state);
    *out = r.release();
  })
}

void ct_grad_reducer_free(ct_grad_reducer r) noexcept {
  try {
    delete r;
  } catch (...) {
  }
}

int ct_grad_reducer_arm(ct_grad_reducer r) noexcept {
  CT_TRY({
    std::lock_guard<std::mutex> guard(r->state->lock);
    r->state->reset();
    r->state->armed = true;
  })
}

int ct_grad_reducer_finish(ct_grad_reducer r, int *started_in_backward) noexcept {
  CT_TRY({
    ReducerState &s = *r->state;
    std::lock_guard<std::mutex> guard(s.lock);
    struct Reset {
      ReducerState &s;
      ~Reset() { s.reset(); }
    } reset{s};
    at::NoGradGuard no_grad;
    ct_process_group pg = s.pg;
    if (s.twice >= 0)
      throw std::runtime_error("the gradient of trainable tensor " + std::to_string(s.twice) +
                               " was accumulated twice in one backward pass (a reentrant backward); its sum would be wrong");
    *started_in_backward = s.started_in_backward;
    s.armed = false;
    for (size_t i = 0; i < s.params.size(); i++) {
      if (s.ready[i]) continue;
      s.copy_in(i);
      s.ready[i] = 1;
      s.waiting[s.bucket_of[i]]--;
    }
    try {
      s.start_ready_buckets();
    } catch (const c10::Error &e) {
      failed(pg, "gradient all-reduce", e.what_without_backtrace());
    } catch (const std::exception &e) {
      failed(pg, "gradient all-reduce", e.what());
    }
    for (size_t b = 0; b < s.works.size(); b++)
      collective(pg, "gradient all-reduce", [&] { return s.works[b]; });
    // Which tensors some rank has a gradient for: one that no rank has stays without, as in one process.
    std::vector<float> mine(s.params.size());
    for (size_t i = 0; i < s.params.size(); i++) mine[i] = s.params[i].grad().defined() ? 1.f : 0.f;
    std::vector<at::Tensor> present{at::tensor(mine).to(s.params.empty() ? at::Device(at::kCPU) : s.params[0].device())};
    auto opts = sum_options(pg);
    collective(pg, "all-reduce", [&] { return on_backend(pg, [&](auto &b) { return b.allreduce(present, opts); }); });
    const at::Tensor seen = present[0].cpu();
    const float *any = seen.data_ptr<float>();
    for (size_t i = 0; i < s.params.size(); i++) {
      if (any[i] == 0) continue;
      at::Tensor &p = s.params[i];
      auto sum = s.flats[s.bucket_of[i]].narrow(0, s.offset_of[i], p.numel()).view(p.sizes());
      if (p.grad().defined()) p.mutable_grad().copy_(sum); else p.mutable_grad() = sum.clone();
    }
  })
}

}  // extern "C"
