// Process groups over libtorch's own c10d: a TCPStore rendezvous and the Gloo backend (NCCL where the libtorch
// has it), and the collectives data-parallel training needs. Nothing here is a transport of ours.
#include "internal.h"

#include <condition_variable>

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

template <typename Start>
void collective(ct_process_group pg, const char *what, Start &&start) {
  const std::string who = "rank " + std::to_string(pg->rank) + " of " + std::to_string(pg->world) + ": " + what + " failed: ";
  std::string cause;
  try {
    c10::intrusive_ptr<c10d::Work> work = start();
    if (!work->wait(pg->timeout)) throw std::runtime_error("timed out");
    return;
  } catch (const c10::Error &e) {
    cause = e.what_without_backtrace();
  } catch (const std::exception &e) {
    cause = e.what();
  }
  throw std::runtime_error(who + cause + stopped_ranks(pg));
}

c10d::ReduceOp reduce_op(int op) {
  switch (op) {
    case CT_REDUCE_SUM: return c10d::ReduceOp::SUM;
    case CT_REDUCE_MAX: return c10d::ReduceOp::MAX;
    case CT_REDUCE_MIN: return c10d::ReduceOp::MIN;
  }
  throw std::invalid_argument("unknown reduction " + std::to_string(op));
}

}  // namespace

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
      throw std::runtime_error("this build has no Gloo: install libgloo-dev and rebuild (its headers were missing)");
#endif
    } else if (name == "nccl") {
#if CT_NCCL
      auto opts = c10d::ProcessGroupNCCL::Options::create();
      opts->timeout = pg->timeout;
      pg->nccl = c10::make_intrusive<c10d::ProcessGroupNCCL>(pg->store, rank, world, opts);
#else
      throw std::runtime_error("this build has no NCCL: build against a CUDA libtorch (LIBTORCH=...) with NCCL's headers, or use --dist-backend gloo");
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

}  // extern "C"
