/*
 * cfaiss.h — ReAlign's C surface over FAISS, with the libtorch shim's rules: every fallible call returns 0 on
 * success (non-zero on failure, message in cf_last_error(), thread-local), results go through out-parameters,
 * no C++ exception crosses the boundary, and the caller owns every index it receives (cf_index_free).
 * Every index measures inner product (cosine on L2-normalised vectors) and maps its own 64-bit ids.
 */
#ifndef CFAISS_H
#define CFAISS_H

#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
#define CF_NOEXCEPT noexcept
extern "C" {
#else
#define CF_NOEXCEPT
#endif

typedef struct cf_index_s *cf_index;

enum { CF_FLAT = 0, CF_HNSW = 1, CF_IVF = 2, CF_IVFPQ = 3 };

const char *cf_last_error(void) CF_NOEXCEPT;
/* FAISS version, e.g. "1.7.3". */
const char *cf_version(void) CF_NOEXCEPT;

/* hnsw_m: neighbours per node (HNSW); nlist: inverted lists (IVF, IVF-PQ); pq_m: sub-quantizers (IVF-PQ). */
int cf_index_new(int dim, int kind, int hnsw_m, int nlist, int pq_m, cf_index *out) CF_NOEXCEPT;
void cf_index_free(cf_index index) CF_NOEXCEPT;
int cf_index_dim(cf_index index) CF_NOEXCEPT;
int64_t cf_index_count(cf_index index) CF_NOEXCEPT;
bool cf_index_is_trained(cf_index index) CF_NOEXCEPT;
/* IVF kinds need training on representative vectors (n x dim floats) before vectors are added. */
int cf_index_train(cf_index index, const float *vectors, int64_t n) CF_NOEXCEPT;
int cf_index_add(cf_index index, const float *vectors, const int64_t *ids, int64_t n) CF_NOEXCEPT;
/* k best per query, best first: scores (inner products) and ids (-1 where fewer than k exist). */
int cf_index_search(cf_index index, const float *queries, int64_t nq, int64_t k, float *scores, int64_t *ids) CF_NOEXCEPT;
int cf_index_remove(cf_index index, const int64_t *ids, int64_t n, int64_t *removed) CF_NOEXCEPT;
/* Search-time breadth: HNSW efSearch, IVF nprobe (ignored by kinds without it). */
int cf_index_set_search_breadth(cf_index index, int breadth) CF_NOEXCEPT;
/* Build-time breadth: HNSW efConstruction (set before adding; ignored by other kinds). */
int cf_index_set_build_breadth(cf_index index, int breadth) CF_NOEXCEPT;
int cf_index_write(cf_index index, const char *path) CF_NOEXCEPT;
int cf_index_read(const char *path, cf_index *out) CF_NOEXCEPT;

#ifdef __cplusplus
}
#endif

#endif
