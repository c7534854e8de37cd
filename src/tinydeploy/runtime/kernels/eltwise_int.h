/* Elementwise integer kernels: lookup tables and the uint8 <-> int8 edge conversion. */
#ifndef TD_ELTWISE_INT_H
#define TD_ELTWISE_INT_H
#include "td_common.h"

static inline void td_lut_s8(const int8_t *x, int8_t *y, const int8_t *table, int n)
{
    TD_PAR_FOR(i, n) y[i] = table[(uint8_t)x[i] ^ 0x80u];
    td_par_sync();
}

/* uint8 q with zero point z == int8 (q - 128) with zero point z - 128: flip the top bit. */
static inline void td_flip_sign8(const uint8_t *x, uint8_t *y, int n)
{
    for (int i = 0; i < n; i++) y[i] = (uint8_t)(x[i] ^ 0x80u);
}

/* QAddSat (ops/eltwise.py): x += y saturated to `bits` (int16 rows, in place); first n rows */
static inline void td_add_sat_s16(int16_t *x, const int16_t *y, int n, int D, int bits)
{
    int32_t hi = (1 << (bits - 1)) - 1;
    TD_PAR_FOR(i, n * D) x[i] = (int16_t)td_clamp((int32_t)x[i] + y[i], -hi - 1, hi);
    td_par_sync();
}
#endif
