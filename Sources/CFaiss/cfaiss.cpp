// ReAlign's FAISS shim (see include/cfaiss.h). FAISS 1.7.3 (Debian) and newer.
#include "cfaiss.h"

#include <faiss/IndexFlat.h>
#include <faiss/IndexHNSW.h>
#include <faiss/IndexIDMap.h>
#include <faiss/IndexIVFFlat.h>
#include <faiss/IndexIVFPQ.h>
#include <faiss/impl/FaissException.h>
#include <faiss/impl/IDSelector.h>
#include <faiss/index_io.h>
#include <faiss/utils/distances.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <utility>
#include <vector>
#include <memory>
#include <stdexcept>
#include <string>

struct cf_index_s {
  // The id map owns the inner index.
  std::unique_ptr<faiss::IndexIDMap2> index;
};

namespace {
thread_local std::string t_error;

faiss::Index *inner(cf_index i) { return i->index->index; }

// Debian builds FAISS for baseline x86-64, where its distance kernels fall back to a scalar loop; HNSW spends
// nearly all its time there (about 30x slower than vectorised). HNSW reaches its stored vectors only through
// the storage index's distance computer, a public extension point: our flat storage hands out one whose inner
// product uses AVX2/FMA when the CPU has them. The stored bytes and the file format are FAISS's own.
float dot_portable(const float *x, const float *y, size_t d) {
  float s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  size_t i = 0;
  for (; i + 8 <= d; i += 8)
    for (int j = 0; j < 8; j++) s[j] += x[i + j] * y[i + j];
  float total = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
  for (; i < d; i++) total += x[i] * y[i];
  return total;
}

#if defined(__x86_64__)
// Clang vector extensions rather than <immintrin.h>: GCC's own include folder (on the path for omp.h) carries
// an immintrin.h that clang cannot compile.
typedef float v8f __attribute__((vector_size(32)));

__attribute__((target("avx2,fma"))) float dot_avx2(const float *x, const float *y, size_t d) {
  v8f a = {0, 0, 0, 0, 0, 0, 0, 0}, b = a, u, v, p, q;
  size_t i = 0;
  for (; i + 16 <= d; i += 16) {
    std::memcpy(&u, x + i, 32);
    std::memcpy(&v, y + i, 32);
    std::memcpy(&p, x + i + 8, 32);
    std::memcpy(&q, y + i + 8, 32);
    a += u * v;
    b += p * q;
  }
  for (; i + 8 <= d; i += 8) {
    std::memcpy(&u, x + i, 32);
    std::memcpy(&v, y + i, 32);
    a += u * v;
  }
  a += b;
  float total = ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
  for (; i < d; i++) total += x[i] * y[i];
  return total;
}
#endif

using DotFunction = float (*)(const float *, const float *, size_t);

DotFunction pick_dot() {
#if defined(__x86_64__)
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return dot_avx2;
#endif
  return dot_portable;
}

const DotFunction fast_dot = pick_dot();

struct FastIPComputer : faiss::FlatCodesDistanceComputer {
  const float *query = nullptr;
  size_t d;
  explicit FastIPComputer(const faiss::IndexFlat &index)
      : faiss::FlatCodesDistanceComputer(index.codes.data(), index.code_size), d(index.d) {}
  void set_query(const float *x) override { query = x; }
  float distance_to_code(const uint8_t *code) override { return fast_dot(query, reinterpret_cast<const float *>(code), d); }
  float symmetric_dis(idx_t i, idx_t j) override {
    const float *base = reinterpret_cast<const float *>(codes);
    return fast_dot(base + i * d, base + j * d, d);
  }
};

// Inner-product flat index with the fast kernel: HNSW's storage (through the distance computer) and the exact
// kind, whose searches of fewer than FAISS's BLAS threshold of queries (one query at a time, as the pipeline
// asks) FAISS would otherwise run through its scalar loop. Saved and read back as a plain IndexFlatIP.
struct FastFlatIP : faiss::IndexFlatIP {
  explicit FastFlatIP(idx_t d) : faiss::IndexFlatIP(d) {}
  faiss::FlatCodesDistanceComputer *get_FlatCodesDistanceComputer() const override { return new FastIPComputer(*this); }

  void search(idx_t n, const float *x, idx_t k, float *distances, idx_t *labels,
              const faiss::SearchParameters *params = nullptr) const override {
    if (n >= faiss::distance_compute_blas_threshold || params != nullptr) {
      faiss::IndexFlatIP::search(n, x, k, distances, labels, params);
      return;
    }
    const float *base = get_xb();
    // Best k kept in a min-heap on (score, then lower id wins ties).
    auto worse = [](const std::pair<float, idx_t> &a, const std::pair<float, idx_t> &b) {
      return a.first != b.first ? a.first > b.first : a.second < b.second;
    };
    for (idx_t q = 0; q < n; q++) {
      std::vector<std::pair<float, idx_t>> heap;
      heap.reserve(k + 1);
      for (idx_t i = 0; i < ntotal; i++) {
        float score = fast_dot(x + q * d, base + i * d, d);
        if ((idx_t)heap.size() < k) {
          heap.emplace_back(score, i);
          std::push_heap(heap.begin(), heap.end(), worse);
        } else if (score > heap.front().first) {
          std::pop_heap(heap.begin(), heap.end(), worse);
          heap.back() = {score, i};
          std::push_heap(heap.begin(), heap.end(), worse);
        }
      }
      std::sort_heap(heap.begin(), heap.end(), worse);
      for (idx_t j = 0; j < k; j++) {
        distances[q * k + j] = j < (idx_t)heap.size() ? heap[j].first : -std::numeric_limits<float>::infinity();
        labels[q * k + j] = j < (idx_t)heap.size() ? heap[j].second : -1;
      }
    }
  }
};

// The fast twin of a flat inner-product index (its vectors moved over), or null for any other index.
FastFlatIP *fast_twin(faiss::Index *index) {
  auto *flat = dynamic_cast<faiss::IndexFlat *>(index);
  if (!flat || flat->metric_type != faiss::METRIC_INNER_PRODUCT || dynamic_cast<FastFlatIP *>(flat)) return nullptr;
  auto *fast = new FastFlatIP(flat->d);
  fast->codes.swap(flat->codes);
  fast->ntotal = flat->ntotal;
  return fast;
}

// Moves an index's inner-product flat vectors (none for a new index, all after reading one) into fast storage:
// HNSW's storage, or the exact index under the id map.
void use_fast_storage(faiss::IndexIDMap2 *map) {
  if (auto *h = dynamic_cast<faiss::IndexHNSW *>(map->index)) {
    if (auto *fast = fast_twin(h->storage)) {
      if (h->own_fields) delete h->storage;
      h->storage = fast;
      h->own_fields = true;
    }
  } else if (auto *fast = fast_twin(map->index)) {
    if (map->own_fields) delete map->index;
    map->index = fast;
    map->own_fields = true;
  }
}

}  // namespace

#define CF_TRY(...)                            \
  try {                                        \
    __VA_ARGS__;                               \
    return 0;                                  \
  } catch (const faiss::FaissException &e) {   \
    t_error = e.msg;                           \
    return 1;                                  \
  } catch (const std::exception &e) {          \
    t_error = e.what();                        \
    return 1;                                  \
  } catch (...) {                              \
    t_error = "unknown C++ exception";         \
    return 1;                                  \
  }

extern "C" {

const char *cf_last_error(void) noexcept { return t_error.c_str(); }

const char *cf_version(void) noexcept {
  static const std::string v = std::to_string(FAISS_VERSION_MAJOR) + "." + std::to_string(FAISS_VERSION_MINOR) + "." +
                               std::to_string(FAISS_VERSION_PATCH);
  return v.c_str();
}

int cf_index_new(int dim, int kind, int hnsw_m, int nlist, int pq_m, cf_index *out) noexcept {
  CF_TRY({
    if (dim <= 0) throw std::invalid_argument("dimension must be positive");
    faiss::Index *base = nullptr;
    switch (kind) {
      case CF_FLAT: base = new FastFlatIP(dim); break;
      case CF_HNSW: base = new faiss::IndexHNSWFlat(dim, hnsw_m > 0 ? hnsw_m : 32, faiss::METRIC_INNER_PRODUCT); break;
      case CF_IVF: {
        auto *q = new faiss::IndexFlatIP(dim);
        auto *ivf = new faiss::IndexIVFFlat(q, dim, nlist > 0 ? nlist : 100, faiss::METRIC_INNER_PRODUCT);
        ivf->own_fields = true;
        base = ivf;
        break;
      }
      case CF_IVFPQ: {
        int m = pq_m > 0 ? pq_m : 8;
        if (dim % m != 0) throw std::invalid_argument("IVF-PQ needs the dimension divisible by the sub-quantizer count");
        auto *q = new faiss::IndexFlatIP(dim);
        auto *ivf = new faiss::IndexIVFPQ(q, dim, nlist > 0 ? nlist : 100, m, 8, faiss::METRIC_INNER_PRODUCT);
        ivf->own_fields = true;
        base = ivf;
        break;
      }
      default: throw std::invalid_argument("unknown index kind " + std::to_string(kind));
    }
    auto *map = new faiss::IndexIDMap2(base);
    map->own_fields = true;
    use_fast_storage(map);
    *out = new cf_index_s{std::unique_ptr<faiss::IndexIDMap2>(map)};
  })
}

void cf_index_free(cf_index index) noexcept { delete index; }
int cf_index_dim(cf_index index) noexcept { return index->index->d; }
int64_t cf_index_count(cf_index index) noexcept { return index->index->ntotal; }
bool cf_index_is_trained(cf_index index) noexcept { return index->index->is_trained; }

int cf_index_train(cf_index index, const float *vectors, int64_t n) noexcept {
  CF_TRY(index->index->train(n, vectors))
}

int cf_index_add(cf_index index, const float *vectors, const int64_t *ids, int64_t n) noexcept {
  CF_TRY({
    if (!index->index->is_trained) throw std::invalid_argument("the index must be trained before vectors are added");
    index->index->add_with_ids(n, vectors, reinterpret_cast<const faiss::Index::idx_t *>(ids));
  })
}

int cf_index_search(cf_index index, const float *queries, int64_t nq, int64_t k, float *scores, int64_t *ids) noexcept {
  CF_TRY({
    if (k <= 0) throw std::invalid_argument("k must be positive");
    index->index->search(nq, queries, k, scores, reinterpret_cast<faiss::Index::idx_t *>(ids));
  })
}

int cf_index_remove(cf_index index, const int64_t *ids, int64_t n, int64_t *removed) noexcept {
  CF_TRY({
    faiss::IDSelectorBatch selector(n, reinterpret_cast<const faiss::Index::idx_t *>(ids));
    *removed = static_cast<int64_t>(index->index->remove_ids(selector));
  })
}

int cf_index_set_search_breadth(cf_index index, int breadth) noexcept {
  CF_TRY({
    if (auto *h = dynamic_cast<faiss::IndexHNSW *>(inner(index))) h->hnsw.efSearch = breadth;
    if (auto *v = dynamic_cast<faiss::IndexIVF *>(inner(index))) v->nprobe = breadth;
  })
}

int cf_index_set_build_breadth(cf_index index, int breadth) noexcept {
  CF_TRY({
    if (breadth <= 0) throw std::invalid_argument("the build breadth must be positive");
    if (auto *h = dynamic_cast<faiss::IndexHNSW *>(inner(index))) h->hnsw.efConstruction = breadth;
  })
}

int cf_index_write(cf_index index, const char *path) noexcept { CF_TRY(faiss::write_index(index->index.get(), path)) }

int cf_index_read(const char *path, cf_index *out) noexcept {
  CF_TRY({
    faiss::Index *read = faiss::read_index(path);
    auto *map = dynamic_cast<faiss::IndexIDMap2 *>(read);
    if (!map) {
      delete read;
      throw std::invalid_argument(std::string(path) + " is not an index written by ReAlign (no id map)");
    }
    use_fast_storage(map);
    *out = new cf_index_s{std::unique_ptr<faiss::IndexIDMap2>(map)};
  })
}

}  // extern "C"
