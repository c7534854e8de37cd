/* n-d index walks shared by data-movement and broadcasting kernels. Python (ops/nd.py) hands every
 * kernel its smallest loop nest: `dims` innermost last, one signed element stride per operand.
 * Element copies go through __builtin_memcpy with the (literal, inlined) element size, which the C
 * compiler turns into a plain load/store; on bare metal it falls back to libc.c's memcpy. */
#ifndef TD_ND_H
#define TD_ND_H
#include "td_common.h"

#define TD_MAX_RANK 8
#define TD_MEMCPY __builtin_memcpy

/* Advance the outer counters (all but the innermost dim) by one step; OFFS is a list of
 * "offset, stride-array" pairs updated together. Written as a macro so each kernel keeps its
 * offsets in registers. */
#define TD_ND_NEXT(rank, dims, idx, BODY_STEP, BODY_WRAP)                                      \
    for (int d_ = (rank) - 2; d_ >= 0; d_--) {                                                 \
        idx[d_]++;                                                                             \
        BODY_STEP;                                                                             \
        if (idx[d_] < (dims)[d_]) break;                                                       \
        BODY_WRAP;                                                                             \
        idx[d_] = 0;                                                                           \
    }

static inline int32_t td_nd_rows(int rank, const int32_t *dims)
{
    int32_t rows = 1;
    for (int d = 0; d < rank - 1; d++) rows *= dims[d];
    return rows;
}

/* y[yo + Σ i_d·ys_d] = x[xo + Σ i_d·xs_d] for every index i in dims (strides in elements). */
static inline void td_copy_nd(const uint8_t *x, uint8_t *y, int es, int rank, const int32_t *dims,
                              const int32_t *xs, const int32_t *ys)
{
    int32_t idx[TD_MAX_RANK] = {0};
    const int r = rank - 1;
    const int32_t n = dims[r], rows = td_nd_rows(rank, dims);
    ptrdiff_t xo = 0, yo = 0;
    for (int32_t row = 0; row < rows; row++) {
        if (xs[r] == 1 && ys[r] == 1) {
            TD_MEMCPY(y + yo * es, x + xo * es, (size_t)n * (size_t)es);
        } else {
            for (int32_t j = 0; j < n; j++)
                TD_MEMCPY(y + (yo + (ptrdiff_t)j * ys[r]) * es, x + (xo + (ptrdiff_t)j * xs[r]) * es, (size_t)es);
        }
        TD_ND_NEXT(rank, dims, idx, (xo += xs[d_], yo += ys[d_]),
                   (xo -= (ptrdiff_t)xs[d_] * dims[d_], yo -= (ptrdiff_t)ys[d_] * dims[d_]))
    }
}

/* Elementwise kernels over a broadcast index space, output contiguous:
 * y[k] = EXPR(a[ia], b[ib]) with va, vb the operand values. */
#define TD_DEFINE_BINARY(NAME, TA, TB, TY, EXPR)                                               \
static inline void NAME(const TA *a, const TB *b, TY *y, int rank, const int32_t *dims,       \
                        const int32_t *as, const int32_t *bs)                                  \
{                                                                                              \
    int32_t idx[TD_MAX_RANK] = {0};                                                            \
    const int r = rank - 1;                                                                    \
    const int32_t n = dims[r], rows = td_nd_rows(rank, dims);                                  \
    ptrdiff_t ia = 0, ib = 0, k = 0;                                                           \
    for (int32_t row = 0; row < rows; row++) {                                                 \
        for (int32_t j = 0; j < n; j++, k++) {                                                 \
            const TA va = a[ia + (ptrdiff_t)j * as[r]];                                        \
            const TB vb = b[ib + (ptrdiff_t)j * bs[r]];                                        \
            y[k] = (TY)(EXPR);                                                                 \
        }                                                                                      \
        TD_ND_NEXT(rank, dims, idx, (ia += as[d_], ib += bs[d_]),                              \
                   (ia -= (ptrdiff_t)as[d_] * dims[d_], ib -= (ptrdiff_t)bs[d_] * dims[d_]))   \
    }                                                                                          \
}
#endif
