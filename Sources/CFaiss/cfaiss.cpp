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
      case CF_FLAT: base = new faiss::IndexFlatIP(dim); break;
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

int cf_index_write(cf_index index, const char *path) noexcept { CF_TRY(faiss::write_index(index->index.get(), path)) }

int cf_index_read(const char *path, cf_index *out) noexcept {
  CF_TRY({
    faiss::Index *read = faiss::read_index(path);
    auto *map = dynamic_cast<faiss::IndexIDMap2 *>(read);
    if (!map) {
      delete read;
      throw std::invalid_argument(std::string(path) + " is not an index written by ReAlign (no id map)");
    }
    *out = new cf_index_s{std::unique_ptr<faiss::IndexIDMap2>(map)};
  })
}

}  // extern "C"
