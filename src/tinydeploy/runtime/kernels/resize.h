/* Resize / Upsample from per-axis tap tables computed at compile time (ops/resize.py).
 * For output index i_d along axis d, taps t < T[d] read input element offset off_d[i_d·T[d] + t]
 * (already multiplied by the axis stride, indices clamped at the edges) with weight w_d[...];
 * the output is the tensor product Σ Π w · x[Σ off]. A position flagged in ext_d (tf_crop_and_resize
 * outside the roi) takes the extrapolation value instead. Nearest needs no weights: one tap, a copy. */
#ifndef TD_RESIZE_H
#define TD_RESIZE_H
#include "td_nd.h"

/* tables for axis d start at the sum of out[e]·T[e] over e < d */
static inline void td_resize_tables(int rank, const int32_t *out, const int32_t *T, int32_t *start)
{
    int32_t s = 0;
    for (int d = 0; d < rank; d++) { start[d] = s; s += out[d] * T[d]; }
}

static inline void td_resize_nearest(const uint8_t *x, uint8_t *y, int es, int rank, const int32_t *out,
                                     const int32_t *off)
{
    int32_t idx[TD_MAX_RANK] = {0}, T[TD_MAX_RANK], start[TD_MAX_RANK];
    for (int d = 0; d < rank; d++) T[d] = 1;
    td_resize_tables(rank, out, T, start);
    const int r = rank - 1;
    const int32_t rows = td_nd_rows(rank, out);
    for (int32_t row = 0; row < rows; row++) {
        ptrdiff_t base = 0;
        for (int d = 0; d < r; d++) base += off[start[d] + idx[d]];
        for (int32_t j = 0; j < out[r]; j++, y += es)
            TD_MEMCPY(y, x + (base + off[start[r] + j]) * es, (size_t)es);
        TD_ND_NEXT(rank, out, idx, (void)0, (void)0)
    }
}

static inline void td_resize_f32(const float *x, float *y, int rank, const int32_t *out, const int32_t *T,
                                 const int32_t *off, const float *w, const uint8_t *ext, float extrapolation)
{
    int32_t idx[TD_MAX_RANK] = {0}, start[TD_MAX_RANK], t[TD_MAX_RANK];
    td_resize_tables(rank, out, T, start);
    int32_t estart[TD_MAX_RANK], es_ = 0;
    for (int d = 0; d < rank; d++) { estart[d] = es_; es_ += out[d]; }
    int32_t total = 1, combos = 1;
    for (int d = 0; d < rank; d++) { total *= out[d]; combos *= T[d]; }
    for (int32_t k = 0; k < total; k++) {
        int outside = 0;
        if (ext)
            for (int d = 0; d < rank; d++) outside |= ext[estart[d] + idx[d]];
        float acc = 0.0f;
        if (!outside) {
            for (int d = 0; d < rank; d++) t[d] = 0;
            for (int32_t c = 0; c < combos; c++) {
                ptrdiff_t o = 0;
                float wt = 1.0f;
                for (int d = 0; d < rank; d++) {
                    const int32_t q = start[d] + idx[d] * T[d] + t[d];
                    o += off[q];
                    wt *= w[q];
                }
                acc += wt * x[o];
                for (int d = rank - 1; d >= 0; d--) {   /* next tap combination */
                    if (++t[d] < T[d]) break;
                    t[d] = 0;
                }
            }
        }
        y[k] = outside ? extrapolation : acc;
        for (int d = rank - 1; d >= 0; d--) {           /* next output index */
            if (++idx[d] < out[d]) break;
            idx[d] = 0;
        }
    }
}
#endif
