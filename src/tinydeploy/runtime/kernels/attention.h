/* QAttentionKV (ops/attention.py): causal attention over an int8 KV cache at a run-time position;
 * bit-exact C of ops/attention.py. scratch: pos + n int32 (the scores, then the softmax weights of
 * one head). The cache holds at most 2^16 positions (checked by the op). */
#ifndef TD_ATTENTION_H
#define TD_ATTENTION_H
#include "td_dynq.h"
#include "softmax.h" /* td_softmax_exp2_w */

/* sat8(rsr(x m, e)) of an int16 x by a compile-time scale (m < 2^15): in 32 bits for 1 <= e <= 30
 * (|x m| < 2^30, so adding 2^(e-1) cannot overflow) */
static inline int8_t td_cache8(int16_t x, const int32_t *s)
{
    int32_t m = s[0], e = s[1], v;
    if (e >= 1 && e <= 30) v = ((int32_t)x * m + (1 << (e - 1))) >> e;
    else v = (int32_t)td_sat(td_rsr((int64_t)x * m, e), 32);
    return (int8_t)(v > 127 ? 127 : (v < -128 ? -128 : v));
}

/* Causal GQA attention over the int8 cache of one layer (kc, vc: [max_seq][KV]); first stores the
 * n new rows at pos.. (per-channel scales kq, vq), then attends over pos + t + 1 positions. */
static inline void td_attention_kv(const int16_t *q, const int16_t *k, const int16_t *v, int32_t pos,
                                   int n, int D, int KV, int hs, int8_t *kc, int8_t *vc,
                                   const int32_t *kq, const int32_t *vq, const int16_t *mk,
                                   const int16_t *mv, const int32_t *exp2t, td_scale c_score,
                                   int sm_shift, td_scale c_dyn, int32_t qmax, int32_t *scratch,
                                   int8_t *a8, int32_t *F)
{
    int km = D / KV;
    int64_t buf[D];
    int32_t ub[hs];
    int16_t u16[hs];
    for (int t = 0; t < n; t++)
        for (int i = 0; i < KV; i++) {
            kc[(pos + t) * KV + i] = td_cache8(k[t * KV + i], kq + 2 * i);
            vc[(pos + t) * KV + i] = td_cache8(v[t * KV + i], vq + 2 * i);
        }
    for (int t = 0; t < n; t++) {
        int end = pos + t + 1;
        for (int h = 0; h < D / hs; h++) {
            int off = (h / km) * hs;
            for (int c = 0; c < hs; c++) ub[c] = (int32_t)q[t * D + h * hs + c] * mk[off + c];
            int64_t Mu = td_quantize_vec32(ub, hs, 32767, u16, 1);
            td_scale G = td_scale_mul(td_scale_norm(Mu, 0), c_score);
            int32_t amax = INT32_MIN;
            if (hs == 8) {
                int32_t u0 = u16[0], u1 = u16[1], u2 = u16[2], u3 = u16[3], u4 = u16[4], u5 = u16[5],
                        u6 = u16[6], u7 = u16[7];
                for (int s = 0; s < end; s++) {
                    const int8_t *kr = kc + s * KV + off;
                    int32_t acc = u0 * kr[0] + u1 * kr[1] + u2 * kr[2] + u3 * kr[3] + u4 * kr[4] +
                                  u5 * kr[5] + u6 * kr[6] + u7 * kr[7];
                    scratch[s] = acc;
                    if (acc > amax) amax = acc;
                }
            } else {
                for (int s = 0; s < end; s++) {
                    const int8_t *kr = kc + s * KV + off;
                    int32_t acc = 0;
                    for (int c = 0; c < hs; c++) acc += (int32_t)u16[c] * kr[c];
                    scratch[s] = acc;
                    if (acc > amax) amax = acc;
                }
            }
            uint32_t sum = td_softmax_exp2_w(scratch, end, amax, G, exp2t);
            /* p = rsr(w recip, sm_shift) in Q15: sum >= 2^15 (the maximum's weight), so recip <= 2^31 */
            uint32_t recip = (uint32_t)td_udiv64((uint64_t)1 << 46, sum), pm2 = td_mulhr_m(recip, sm_shift);
            int32_t o[hs];
            for (int c = 0; c < hs; c++) o[c] = 0;
            if (hs == 8 && pm2) {
                int32_t o0 = 0, o1 = 0, o2 = 0, o3 = 0, o4 = 0, o5 = 0, o6 = 0, o7 = 0;
                for (int s = 0; s < end; s++) {
                    int32_t p = (int32_t)td_mulhr((uint32_t)scratch[s], pm2);
                    const int8_t *vr = vc + s * KV + off;
                    o0 += p * vr[0]; o1 += p * vr[1]; o2 += p * vr[2]; o3 += p * vr[3];
                    o4 += p * vr[4]; o5 += p * vr[5]; o6 += p * vr[6]; o7 += p * vr[7];
                }
                o[0] = o0; o[1] = o1; o[2] = o2; o[3] = o3; o[4] = o4; o[5] = o5; o[6] = o6; o[7] = o7;
            } else {
                for (int s = 0; s < end; s++) {
                    int32_t p = (int32_t)td_rsr((int64_t)scratch[s] * recip, sm_shift);
                    const int8_t *vr = vc + s * KV + off;
                    for (int c = 0; c < hs; c++) o[c] += p * vr[c];
                }
            }
            for (int c = 0; c < hs; c++) buf[h * hs + c] = (int64_t)o[c] * mv[off + c];
        }
        td_quantize_row(buf, D, c_dyn, qmax, a8 + t * D, F + 2 * t);
    }
}
#endif
