// Reuse of large CPU blocks and glibc's allocator settings.
#include "internal.h"

// ---- reuse of large CPU blocks ----
// A forward allocates the same large buffers on every call (the bench LLaVA's logits alone are 184 MB). glibc
// maps blocks above 32 MB fresh and unmaps them on free, so each call page-faults every page of them again
// (≈0.1 s per forward there). libtorch's CPU allocator is wrapped: freed blocks of 32 MB and more are kept, up
// to 1 GiB in all (the oldest go first), and handed out again for a request that fits them within 1/8.
// Smaller blocks stay libtorch's (glibc's heap reuses those already, see ct_tune_allocator). Training turns the
// keeping off (ct_set_cpu_reuse_limit): its blocks come in many sizes, a kept one seldom fits the next request, and
// the kept bytes only raised its peak (bench train's DPO step: 2.36 GiB with it, 1.69 GiB without).
namespace reuse {

constexpr size_t kLarge = size_t(32) << 20;
std::atomic<size_t> keep_limit{size_t(1) << 30};

struct Block {
  void *data;
  size_t bytes;
};

// libtorch 2.3 made allocate non-const and added copy_data.
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 3)
#define CT_ALLOCATE_CONST
#else
#define CT_ALLOCATE_CONST const
#endif

struct Allocator final : c10::Allocator {
  explicit Allocator(c10::Allocator *base) : base(base) {}

#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 3)
  void copy_data(void *dest, const void *src, std::size_t count) const override {
    default_copy_data(dest, src, count);
  }
#endif

  c10::DataPtr allocate(size_t n) CT_ALLOCATE_CONST override {
    if (n < kLarge) return base->allocate(n);
    Block b = take(n);
    if (b.data == nullptr) {
      try {
        b = {c10::alloc_cpu(n), n};
      } catch (const c10::Error &) {  // out of memory: give the kept blocks back first, then try once more
        drop_kept();
        b = {c10::alloc_cpu(n), n};
      }
    }
    {
      std::lock_guard<std::mutex> lock(mutex);
      live[b.data] = b.bytes;
    }
    return {b.data, b.data, &release, c10::Device(c10::DeviceType::CPU)};
  }
  c10::DeleterFnPtr raw_deleter() const override { return &release; }

  static Allocator *shared;

  // Also reached through raw_deleter for small blocks, which go back to libtorch's allocator.
  static void release(void *data) {
    Allocator &a = *shared;
    std::unique_lock<std::mutex> lock(a.mutex);
    auto it = a.live.find(data);
    if (it == a.live.end()) {
      lock.unlock();
      if (auto deleter = a.base->raw_deleter()) deleter(data); else c10::free_cpu(data);
      return;
    }
    a.kept.push_back({data, it->second});
    a.kept_bytes += it->second;
    a.live.erase(it);
    lock.unlock();
    a.trim();
  }

  // Frees the oldest kept blocks until the rest fit the limit.
  void trim() const {
    std::unique_lock<std::mutex> lock(mutex);
    std::vector<void *> dropped;
    while (kept_bytes > keep_limit.load(std::memory_order_relaxed)) {
      dropped.push_back(kept.front().data);
      kept_bytes -= kept.front().bytes;
      kept.pop_front();
    }
    lock.unlock();
    for (void *p : dropped) c10::free_cpu(p);
  }

  void drop_kept() const {
    std::deque<Block> dropped;
    {
      std::lock_guard<std::mutex> lock(mutex);
      dropped.swap(kept);
      kept_bytes = 0;
    }
    for (const Block &b : dropped) c10::free_cpu(b.data);
  }

  // The smallest kept block of at least n bytes and at most n + n/8.
  Block take(size_t n) const {
    std::lock_guard<std::mutex> lock(mutex);
    auto best = kept.end();
    for (auto it = kept.begin(); it != kept.end(); ++it)
      if (it->bytes >= n && it->bytes <= n + n / 8 && (best == kept.end() || it->bytes < best->bytes)) best = it;
    if (best == kept.end()) return {nullptr, 0};
    Block b = *best;
    kept.erase(best);
    kept_bytes -= b.bytes;
    reused += 1;
    return b;
  }

  c10::Allocator *base;
  mutable std::mutex mutex;
  mutable std::unordered_map<void *, size_t> live;  // large blocks in use
  mutable std::deque<Block> kept;                    // large blocks freed, oldest first
  mutable size_t kept_bytes = 0;
  mutable uint64_t reused = 0;
};

Allocator *Allocator::shared = nullptr;

}  // namespace reuse

extern "C" {

void ct_tune_allocator(void) noexcept {
#if defined(__GLIBC__)
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 512 << 20);
  mallopt(M_TOP_PAD, 64 << 20);
#endif
  static std::once_flag once;
  std::call_once(once, [] {
    reuse::Allocator::shared = new reuse::Allocator(c10::GetCPUAllocator());
    c10::SetCPUAllocator(reuse::Allocator::shared, /*priority=*/1);
  });
}

size_t ct_set_cpu_reuse_limit(size_t bytes) noexcept {
  const size_t previous = reuse::keep_limit.exchange(bytes);
  if (auto *a = reuse::Allocator::shared) a->trim();
  return previous;
}

void ct_cpu_reuse_stats(size_t *kept_bytes, uint64_t *reused) noexcept {
  *kept_bytes = 0;
  *reused = 0;
  if (auto *a = reuse::Allocator::shared) {
    std::lock_guard<std::mutex> lock(a->mutex);
    *kept_bytes = a->kept_bytes;
    *reused = a->reused;
  }
}
}  // extern "C"
