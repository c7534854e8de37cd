/* QRequant: move an int8 tensor from one affine quantization to another,
 * y = clamp(requant(x - x_zp, m, s) + y_zp, lo, hi) with m·2^-s = x_scale / y_scale. In place ok. */
#ifndef TD_REQUANT_H
#define TD_REQUANT_H
#include "td_common.h"

static inline void td_requant_s8(const int8_t *x, int8_t *y, int32_t n, int32_t x_zp, int32_t m, int32_t s,
                                 int32_t y_zp, int32_t lo, int32_t hi)
{
    for (int32_t i = 0; i < n; i++)
        y[i] = (int8_t)td_clamp(td_requant((int32_t)x[i] - x_zp, m, s) + y_zp, lo, hi);
}
#endif
