/* Elementwise integer kernels: lookup tables and the uint8 <-> int8 edge conversion. */
#ifndef TD_ELTWISE_INT_H
#define TD_ELTWISE_INT_H
#include "td_common.h"

static inline void td_lut_s8(const int8_t *x, int8_t *y, const int8_t *table, int n)
{
    for (int i = 0; i < n; i++) y[i] = table[(uint8_t)x[i] ^ 0x80u];
}

/* uint8 q with zero point z == int8 (q - 128) with zero point z - 128: flip the top bit. */
static inline void td_flip_sign8(const uint8_t *x, uint8_t *y, int n)
{
    for (int i = 0; i < n; i++) y[i] = (uint8_t)(x[i] ^ 0x80u);
}
#endif
