/* QRoPE (ops/rope.py): rotate consecutive pairs of each head of int16 rows by Q14 cos/sin tables
 * at the rows' positions pos, pos + 1, ...; in place; first n rows. */
#ifndef TD_ROPE_H
#define TD_ROPE_H
#include "td_dynq.h"

/* |a c - b s| <= 2 * 2^15 * 2^14 = 2^30: the rotation and its rounding fit 32 bits */
static inline int16_t td_rope_q14(int32_t v)
{
    v = (v + (1 << 13)) >> 14;
    return (int16_t)(v > 32767 ? 32767 : (v < -32768 ? -32768 : v));
}
static inline void td_rope(int16_t *v, int32_t pos, int n, int D, int hs, const int16_t *cosq,
                           const int16_t *sinq)
{
    int half = hs / 2;
    TD_PAR_FOR2(t, n, h, D / hs) {   /* (row, head) pairs across the cores */
        const int16_t *cr = cosq + (pos + t) * half, *sr = sinq + (pos + t) * half;
        int16_t *vh = v + t * D + h * hs;
        for (int k = 0; k < half; k++) {
            int32_t x0 = vh[2 * k], x1 = vh[2 * k + 1], c = cr[k], s = sr[k];
            vh[2 * k] = td_rope_q14(x0 * c - x1 * s);
            vh[2 * k + 1] = td_rope_q14(x0 * s + x1 * c);
        }
    }
    td_par_sync();
}
#endif
