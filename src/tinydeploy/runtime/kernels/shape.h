/* Data movement, dtype-generic (element size `es` in bytes): strided copies (td_nd.h) serve
 * Transpose, Slice, Concat, Split, Expand, Tile, Depth/SpaceToDepth; here Gather, Pad, Where and Cast. */
#ifndef TD_SHAPE_H
#define TD_SHAPE_H
#include "td_nd.h"

/* y[o, j, i] = x[o, idx[j], i]; negative indices count from the end; an index out of range
 * (invalid input) yields zeros instead of reading outside x. */
#define TD_DEFINE_GATHER(SUFFIX, TI)                                                           \
static inline void td_gather_##SUFFIX(const uint8_t *x, uint8_t *y, int es, int32_t outer,     \
                                       int32_t len, int32_t inner, const TI *idx, int32_t nidx) \
{                                                                                              \
    const size_t row = (size_t)inner * (size_t)es;                                             \
    for (int32_t o = 0; o < outer; o++)                                                        \
        for (int32_t j = 0; j < nidx; j++) {                                                   \
            int64_t k = (int64_t)idx[j];                                                       \
            if (k < 0) k += len;                                                               \
            uint8_t *dst = y + ((size_t)o * (size_t)nidx + (size_t)j) * row;                   \
            if (k < 0 || k >= len) {                                                           \
                for (size_t b = 0; b < row; b++) dst[b] = 0;                                   \
                continue;                                                                      \
            }                                                                                  \
            TD_MEMCPY(dst, x + ((size_t)o * (size_t)len + (size_t)k) * row, row);              \
        }                                                                                      \
}
TD_DEFINE_GATHER(i32, int32_t)
TD_DEFINE_GATHER(i64, int64_t)

/* Source index of output position o along one dim (lo = leading pad, may be negative = crop),
 * or -1 for the constant. Modes: 0 constant, 1 reflect, 2 edge, 3 wrap. */
static inline int32_t td_pad_src(int32_t o, int32_t lo, int32_t n, int mode)
{
    int32_t i = o - lo;
    if (i >= 0 && i < n) return i;
    switch (mode) {
    case 1: {
        if (n == 1) return 0;
        const int32_t p = 2 * (n - 1);
        i %= p;
        if (i < 0) i += p;
        return i < n ? i : p - i;
    }
    case 2: return i < 0 ? 0 : n - 1;
    case 3: i %= n; return i < 0 ? i + n : i;
    default: return -1;
    }
}

/* dims[0..rank) input dims, dims[rank..2rank) output dims, dims[2rank..3rank) leading pads */
static inline void td_pad(const uint8_t *x, uint8_t *y, int es, int rank, const int32_t *dims, int mode,
                          const uint8_t *value)
{
    int32_t idx[TD_MAX_RANK] = {0};
    const int32_t *in = dims, *out = dims + rank, *lo = dims + 2 * rank;
    const int r = rank - 1;
    const int32_t rows = td_nd_rows(rank, out);
    int32_t xs[TD_MAX_RANK];
    xs[r] = 1;
    for (int d = r - 1; d >= 0; d--) xs[d] = xs[d + 1] * in[d + 1];
    for (int32_t row = 0; row < rows; row++) {
        ptrdiff_t base = 0;
        int fill = 0;
        for (int d = 0; d < r; d++) {
            int32_t s = td_pad_src(idx[d], lo[d], in[d], mode);
            if (s < 0) fill = 1;
            base += (ptrdiff_t)s * xs[d];
        }
        for (int32_t j = 0; j < out[r]; j++, y += es) {
            int32_t s = fill ? -1 : td_pad_src(j, lo[r], in[r], mode);
            TD_MEMCPY(y, s < 0 ? value : x + (base + s) * es, (size_t)es);
        }
        TD_ND_NEXT(rank, out, idx, (void)0, (void)0)
    }
}

/* out[k] = c ? x : y with broadcasting; strides in elements */
static inline void td_where(const uint8_t *c, const uint8_t *x, const uint8_t *y, uint8_t *out, int es,
                            int rank, const int32_t *dims, const int32_t *cs, const int32_t *xs,
                            const int32_t *ys)
{
    int32_t idx[TD_MAX_RANK] = {0};
    const int r = rank - 1;
    const int32_t n = dims[r], rows = td_nd_rows(rank, dims);
    ptrdiff_t ic = 0, ix = 0, iy = 0;
    for (int32_t row = 0; row < rows; row++) {
        for (int32_t j = 0; j < n; j++, out += es) {
            const uint8_t *src = c[ic + (ptrdiff_t)j * cs[r]] ? x + (ix + (ptrdiff_t)j * xs[r]) * es
                                                              : y + (iy + (ptrdiff_t)j * ys[r]) * es;
            TD_MEMCPY(out, src, (size_t)es);
        }
        TD_ND_NEXT(rank, dims, idx, (ic += cs[d_], ix += xs[d_], iy += ys[d_]),
                   (ic -= (ptrdiff_t)cs[d_] * dims[d_], ix -= (ptrdiff_t)xs[d_] * dims[d_],
                    iy -= (ptrdiff_t)ys[d_] * dims[d_]))
    }
}

/* Cast: C conversions, except float → integer, which truncates toward zero and saturates
 * (NaN → 0) instead of being undefined behaviour; → bool is (x != 0). */
#define TD_CAST(TX, TY, X, Y, N)                                                               \
    do { const TX *x_ = (X); TY *y_ = (Y);                                                     \
         for (int32_t i_ = 0; i_ < (N); i_++) y_[i_] = (TY)x_[i_]; } while (0)
#define TD_CAST_BOOL(TX, X, Y, N)                                                              \
    do { const TX *x_ = (X); uint8_t *y_ = (Y);                                                \
         for (int32_t i_ = 0; i_ < (N); i_++) y_[i_] = (uint8_t)(x_[i_] != 0); } while (0)
#define TD_CAST_SAT(TX, TY, LO, HI, X, Y, N)                                                   \
    do { const TX *x_ = (X); TY *y_ = (Y);                                                     \
         for (int32_t i_ = 0; i_ < (N); i_++) {                                                \
             TX v_ = x_[i_];                                                                   \
             y_[i_] = v_ != v_ ? (TY)0 : v_ <= (TX)(LO) ? (TY)(LO) : v_ >= (TX)(HI) ? (TY)(HI) : (TY)v_; \
         } } while (0)
#endif
