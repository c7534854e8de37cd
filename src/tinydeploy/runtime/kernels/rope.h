/* QRoPE (ops/rope.py): rotate consecutive pairs of each head of int16 rows by Q14 cos/sin tables
 * at the rows' positions pos, pos + 1, ...; in place; first n rows. */
#ifndef TD_ROPE_H
#define TD_ROPE_H
#include "td_dynq.h"

static inline void td_rope(int16_t *v, int32_t pos, int n, int D, int hs, const int16_t *cosq,
                           const int16_t *sinq)
{
    int half = hs / 2;
    for (int t = 0; t < n; t++) {
        const int16_t *cr = cosq + (pos + t) * half, *sr = sinq + (pos + t) * half;
        int16_t *vr = v + t * D;
        for (int k = 0; k < D / 2; k++) {
            int32_t x0 = vr[2 * k], x1 = vr[2 * k + 1], c = cr[k % half], s = sr[k % half];
            vr[2 * k] = (int16_t)td_sat(td_rsr(x0 * c - x1 * s, 14), 16);
            vr[2 * k + 1] = (int16_t)td_sat(td_rsr(x0 * s + x1 * c, 14), 16);
        }
    }
}
#endif
