/* Index-driven data movement: GatherElements, GatherND, ScatterElements, ScatterND, OneHot, TopK.
 * Indices are run-time int32/int64 tensors; negative ones count from the end; an index out of range
 * (invalid input) is skipped (scatter) or reads zeros (gather) instead of touching other memory. */
#ifndef TD_SELECT_H
#define TD_SELECT_H
#include "td_nd.h"

/* y[k] = x[base(k) + idx[k]·as]: base walks dims (the index shape) with x strides xs, xs[axis] = 0 */
#define TD_DEFINE_GATHER_ELEMENTS(IS, TI)                                                      \
static inline void td_gather_elements_##IS(const uint8_t *x, const TI *idx, uint8_t *y, int es, int rank, \
                                           const int32_t *dims, const int32_t *xs, int32_t as, int32_t alen) \
{                                                                                              \
    int32_t ix[TD_MAX_RANK] = {0};                                                             \
    const int r = rank - 1;                                                                    \
    const int32_t rows = td_nd_rows(rank, dims);                                               \
    ptrdiff_t base = 0, k = 0;                                                                 \
    for (int32_t row = 0; row < rows; row++) {                                                 \
        for (int32_t j = 0; j < dims[r]; j++, k++) {                                           \
            int64_t v = (int64_t)idx[k];                                                       \
            if (v < 0) v += alen;                                                              \
            if (v < 0 || v >= alen) { for (int b = 0; b < es; b++) y[k * es + b] = 0; continue; } \
            TD_MEMCPY(y + k * es, x + (base + (ptrdiff_t)j * xs[r] + (ptrdiff_t)v * as) * es, (size_t)es); \
        }                                                                                      \
        TD_ND_NEXT(rank, dims, ix, (base += xs[d_]), (base -= (ptrdiff_t)xs[d_] * dims[d_]))    \
    }                                                                                          \
}
TD_DEFINE_GATHER_ELEMENTS(i32, int32_t)
TD_DEFINE_GATHER_ELEMENTS(i64, int64_t)

/* GatherND: per batch b (nb of them, xb elements apart in x), nm index tuples of K entries address
 * x with dims/strides; each copies a slice of `slice` elements to y in order. */
#define TD_DEFINE_GATHER_ND(IS, TI)                                                            \
static inline void td_gather_nd_##IS(const uint8_t *x, const TI *idx, uint8_t *y, int es, int32_t nb,   \
                                     int32_t xb, int32_t nm, int K, const int32_t *dims,      \
                                     const int32_t *strides, int32_t slice)                    \
{                                                                                              \
    const size_t bytes = (size_t)slice * (size_t)es;                                           \
    for (int32_t b = 0; b < nb; b++)                                                           \
        for (int32_t m = 0; m < nm; m++, idx += K, y += bytes) {                               \
            ptrdiff_t off = (ptrdiff_t)b * xb;                                                 \
            int ok = 1;                                                                        \
            for (int j = 0; j < K; j++) {                                                      \
                int64_t v = (int64_t)idx[j];                                                   \
                if (v < 0) v += dims[j];                                                       \
                if (v < 0 || v >= dims[j]) ok = 0;                                             \
                off += (ptrdiff_t)v * strides[j];                                              \
            }                                                                                  \
            if (ok) TD_MEMCPY(y, x + off * es, bytes);                                         \
            else for (size_t q = 0; q < bytes; q++) y[q] = 0;                                  \
        }                                                                                      \
}
TD_DEFINE_GATHER_ND(i32, int32_t)
TD_DEFINE_GATHER_ND(i64, int64_t)

/* Scatter reductions: 0 none, 1 add, 2 mul, 3 max, 4 min */
#define TD_SCATTER_APPLY(T, dst, u, red)                                                       \
    do { T c_ = *(dst);                                                                        \
         *(dst) = (red) == 1 ? (T)(c_ + (u)) : (red) == 2 ? (T)(c_ * (u)) :                    \
                  (red) == 3 ? ((u) > c_ ? (u) : c_) : (red) == 4 ? ((u) < c_ ? (u) : c_) : (u); } while (0)

/* ScatterElements on y (already a copy of x): updates walk the index shape `dims`; position =
 * base (y strides ys, ys[axis] = 0) + idx·as. ScatterND: nm tuples of K entries, slices of `slice`. */
#define TD_DEFINE_SCATTER(S, T, IS, TI)                                                        \
static inline void td_scatter_elements_##S##_##IS(T *y, const TI *idx, const T *upd, int rank,         \
        const int32_t *dims, const int32_t *ys, int32_t as, int32_t alen, int red)             \
{                                                                                              \
    int32_t ix[TD_MAX_RANK] = {0};                                                             \
    const int r = rank - 1;                                                                    \
    const int32_t rows = td_nd_rows(rank, dims);                                               \
    ptrdiff_t base = 0, k = 0;                                                                 \
    for (int32_t row = 0; row < rows; row++) {                                                 \
        for (int32_t j = 0; j < dims[r]; j++, k++) {                                           \
            int64_t v = (int64_t)idx[k];                                                       \
            if (v < 0) v += alen;                                                              \
            if (v < 0 || v >= alen) continue;                                                  \
            TD_SCATTER_APPLY(T, y + base + (ptrdiff_t)j * ys[r] + (ptrdiff_t)v * as, upd[k], red); \
        }                                                                                      \
        TD_ND_NEXT(rank, dims, ix, (base += ys[d_]), (base -= (ptrdiff_t)ys[d_] * dims[d_]))    \
    }                                                                                          \
}                                                                                              \
static inline void td_scatter_nd_##S##_##IS(T *y, const TI *idx, const T *upd, int32_t nm, int K, \
        const int32_t *dims, const int32_t *strides, int32_t slice, int red)                   \
{                                                                                              \
    for (int32_t m = 0; m < nm; m++, idx += K, upd += slice) {                                 \
        ptrdiff_t off = 0;                                                                     \
        int ok = 1;                                                                            \
        for (int j = 0; j < K; j++) {                                                          \
            int64_t v = (int64_t)idx[j];                                                       \
            if (v < 0) v += dims[j];                                                           \
            if (v < 0 || v >= dims[j]) ok = 0;                                                 \
            off += (ptrdiff_t)v * strides[j];                                                  \
        }                                                                                      \
        if (!ok) continue;                                                                     \
        for (int32_t q = 0; q < slice; q++) TD_SCATTER_APPLY(T, y + off + q, upd[q], red);     \
    }                                                                                          \
}
#define TD_DEFINE_SCATTER_T(S, T) TD_DEFINE_SCATTER(S, T, i32, int32_t) TD_DEFINE_SCATTER(S, T, i64, int64_t)
TD_DEFINE_SCATTER_T(f32, float)
TD_DEFINE_SCATTER_T(f64, double)
TD_DEFINE_SCATTER_T(s8, int8_t)
TD_DEFINE_SCATTER_T(u8, uint8_t)
TD_DEFINE_SCATTER_T(s16, int16_t)
TD_DEFINE_SCATTER_T(u16, uint16_t)
TD_DEFINE_SCATTER_T(s32, int32_t)
TD_DEFINE_SCATTER_T(u32, uint32_t)
TD_DEFINE_SCATTER_T(s64, int64_t)
TD_DEFINE_SCATTER_T(u64, uint64_t)

/* ReverseSequence: time axis and batch axis are dims 0 and 1 (strides ts, bs), rows of `inner`
 * contiguous elements; the first lens[b] steps of batch b are reversed, the rest copied */
#define TD_DEFINE_REVSEQ(IS, TI)                                                               \
static inline void td_reverse_sequence_##IS(const uint8_t *x, uint8_t *y, int es, int32_t T, int32_t B, \
                                            int32_t ts, int32_t bs, int32_t inner, const TI *lens) \
{                                                                                              \
    const size_t row = (size_t)inner * (size_t)es;                                             \
    for (int32_t b = 0; b < B; b++) {                                                          \
        int64_t L = (int64_t)lens[b];                                                          \
        L = L < 0 ? 0 : (L > T ? T : L);                                                       \
        for (int32_t t = 0; t < T; t++) {                                                      \
            const int64_t src = t < L ? L - 1 - t : t;                                         \
            TD_MEMCPY(y + ((ptrdiff_t)t * ts + (ptrdiff_t)b * bs) * es,                        \
                      x + ((ptrdiff_t)src * ts + (ptrdiff_t)b * bs) * es, row);                \
        }                                                                                      \
    }                                                                                          \
}
TD_DEFINE_REVSEQ(i32, int32_t)
TD_DEFINE_REVSEQ(i64, int64_t)

/* OneHot: y[o, d, i] = (idx[o, i] (+depth if negative) == d) ? on : off */
#define TD_DEFINE_ONEHOT(IS, TI)                                                               \
static inline void td_onehot_##IS(const TI *idx, uint8_t *y, int es, int32_t outer, int32_t depth, \
                                  int32_t inner, const uint8_t *off, const uint8_t *on)        \
{                                                                                              \
    for (int32_t o = 0; o < outer; o++)                                                        \
        for (int32_t d = 0; d < depth; d++)                                                    \
            for (int32_t i = 0; i < inner; i++, y += es) {                                     \
                TI v = idx[o * inner + i];                                                     \
                if (v < 0) v = (TI)(v + depth);                                                \
                TD_MEMCPY(y, v == (TI)d ? on : off, (size_t)es);                               \
            }                                                                                  \
}
TD_DEFINE_ONEHOT(i32, int32_t)
TD_DEFINE_ONEHOT(i64, int64_t)
TD_DEFINE_ONEHOT(f32, float)

/* TopK along an axis of n (outer × n × inner): the k largest (or smallest), sorted, ties to the
 * lower index; O(n·k) selection, no scratch memory. Indices are int64. */
#define TD_DEFINE_TOPK(S, T)                                                                   \
static inline void td_topk_##S(const T *x, T *yv, int64_t *yi, int32_t outer, int32_t n, int32_t inner, \
                               int32_t k, int largest)                                         \
{                                                                                              \
    for (int32_t o = 0; o < outer; o++)                                                        \
        for (int32_t i = 0; i < inner; i++) {                                                  \
            const T *col = x + (ptrdiff_t)o * n * inner + i;                                   \
            T pv = 0;                                                                          \
            int32_t pi = -1;                                                                   \
            for (int32_t t = 0; t < k; t++) {                                                  \
                int32_t best = -1;                                                             \
                for (int32_t j = 0; j < n; j++) {                                              \
                    T v = col[(ptrdiff_t)j * inner];                                           \
                    if (pi >= 0) { /* only elements ranked after the previous pick */          \
                        int after = largest ? (v < pv || (v == pv && j > pi))                  \
                                            : (v > pv || (v == pv && j > pi));                 \
                        if (!after) continue;                                                  \
                    }                                                                          \
                    if (best < 0) { best = j; continue; }                                      \
                    T b = col[(ptrdiff_t)best * inner];                                        \
                    if (largest ? v > b : v < b) best = j;                                     \
                }                                                                              \
                pv = col[(ptrdiff_t)best * inner];                                             \
                pi = best;                                                                     \
                ptrdiff_t out = ((ptrdiff_t)o * k + t) * inner + i;                            \
                yv[out] = pv;                                                                  \
                yi[out] = best;                                                                \
            }                                                                                  \
        }                                                                                      \
}
TD_DEFINE_TOPK(f32, float)
TD_DEFINE_TOPK(f64, double)
TD_DEFINE_TOPK(s8, int8_t)
TD_DEFINE_TOPK(u8, uint8_t)
TD_DEFINE_TOPK(s16, int16_t)
TD_DEFINE_TOPK(u16, uint16_t)
TD_DEFINE_TOPK(s32, int32_t)
TD_DEFINE_TOPK(u32, uint32_t)
TD_DEFINE_TOPK(s64, int64_t)
TD_DEFINE_TOPK(u64, uint64_t)
#endif
