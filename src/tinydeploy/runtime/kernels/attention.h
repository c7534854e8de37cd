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

#ifdef TD_X86
#include "td_x86.h"
/* scores[s] = u . k_s for s < end (k_s = k + s KV, hs % 8 == 0), 4 positions per transpose-add;
 * returns their maximum */
static inline int32_t td_att_scores_x86(const int16_t *u, int hs, const int8_t *k, int KV, int end,
                                        int32_t *scores)
{
    int32_t amax = INT32_MIN;
    int s = 0;
    for (; s + 4 <= end; s += 4) {
        const int8_t *kr = k + s * KV;
        __m128i a0 = _mm_setzero_si128(), a1 = a0, a2 = a0, a3 = a0;
        for (int c = 0; c < hs; c += 8) {
            a0 = td_x86_madd8(a0, u + c, kr + c);
            a1 = td_x86_madd8(a1, u + c, kr + KV + c);
            a2 = td_x86_madd8(a2, u + c, kr + 2 * KV + c);
            a3 = td_x86_madd8(a3, u + c, kr + 3 * KV + c);
        }
        _mm_storeu_si128((__m128i *)(scores + s), td_x86_sum4(a0, a1, a2, a3));
    }
    for (; s < end; s++) {
        int32_t acc = 0;
        for (int c = 0; c < hs; c++) acc += (int32_t)u[c] * k[s * KV + c];
        scores[s] = acc;
    }
    for (s = 0; s < end; s++) amax = scores[s] > amax ? scores[s] : amax;
    return amax;
}
/* o[c] = sum_s p_s v_s[c] for hs == 8, p_s = mulhr(w_s, pm2): two positions per pmaddwd, the pair
 * (p_s, p_s+1) against (v_s[c], v_s+1[c]). p_s < 2^15 fits int16: pm2 != 0 at sm_shift >= 31 means
 * recip = 2^46 / sum < 2^31, so sum > 2^15 >= w_s and p_s <= round(2^30 / (2^15 + 1)) = 32767. */
static inline void td_att_values8_x86(const int32_t *w, uint32_t pm2, const int8_t *v, int KV, int end,
                                      int32_t *o)
{
    __m128i lo = _mm_setzero_si128(), hi = lo;
    int s = 0;
    for (; s + 2 <= end; s += 2) {
        uint32_t p0 = td_mulhr((uint32_t)w[s], pm2), p1 = td_mulhr((uint32_t)w[s + 1], pm2);
        __m128i pp = _mm_set1_epi32((int32_t)(p0 | p1 << 16));
        __m128i b = _mm_unpacklo_epi8(_mm_loadl_epi64((const __m128i *)(v + s * KV)),
                                      _mm_loadl_epi64((const __m128i *)(v + (s + 1) * KV)));
        lo = _mm_add_epi32(lo, _mm_madd_epi16(pp, _mm_srai_epi16(_mm_unpacklo_epi8(b, b), 8)));
        hi = _mm_add_epi32(hi, _mm_madd_epi16(pp, _mm_srai_epi16(_mm_unpackhi_epi8(b, b), 8)));
    }
    _mm_storeu_si128((__m128i *)o, lo);
    _mm_storeu_si128((__m128i *)(o + 4), hi);
    if (s < end) {
        int32_t p = (int32_t)td_mulhr((uint32_t)w[s], pm2);
        for (int c = 0; c < 8; c++) o[c] += p * v[s * KV + c];
    }
}
#endif

/* One head of one row over positions [0, end) of the cache rows kc, vc (their head's channels, row
 * stride KV): a[c] = (sum_s p_s v_sc) * mv[c]. sc: end int32 of scratch (scores, then weights). */
static inline void td_attention_head(const int16_t *qh, const int8_t *kc, const int8_t *vc, int KV, int hs,
                                     int end, const int16_t *mk, const int16_t *mv, const int32_t *exp2t,
                                     td_scale c_score, int sm_shift, int32_t *sc, int64_t *a)
{
    int32_t ub[hs];
    int16_t u16[hs];
    for (int c = 0; c < hs; c++) ub[c] = (int32_t)qh[c] * mk[c];
    int64_t Mu = td_quantize_vec32(ub, hs, 32767, u16, 1);
    td_scale G = td_scale_mul(td_scale_norm(Mu, 0), c_score);
    int32_t amax = INT32_MIN;
#ifdef TD_X86
    if (hs % 8 == 0) amax = td_att_scores_x86(u16, hs, kc, KV, end, sc); else
#endif
    if (hs == 8) {
        int32_t u0 = u16[0], u1 = u16[1], u2 = u16[2], u3 = u16[3], u4 = u16[4], u5 = u16[5], u6 = u16[6],
                u7 = u16[7];
        for (int s = 0; s < end; s++) {
            const int8_t *kr = kc + s * KV;
            int32_t acc = u0 * kr[0] + u1 * kr[1] + u2 * kr[2] + u3 * kr[3] + u4 * kr[4] + u5 * kr[5] +
                          u6 * kr[6] + u7 * kr[7];
            sc[s] = acc;
            if (acc > amax) amax = acc;
        }
    } else {
        for (int s = 0; s < end; s++) {
            const int8_t *kr = kc + s * KV;
            int32_t acc = 0;
            for (int c = 0; c < hs; c++) acc += (int32_t)u16[c] * kr[c];
            sc[s] = acc;
            if (acc > amax) amax = acc;
        }
    }
    uint32_t sum = td_softmax_exp2_w(sc, end, amax, G, exp2t);
    /* p = rsr(w recip, sm_shift) in Q15: sum >= 2^15 (the maximum's weight), so recip <= 2^31 */
    uint32_t recip = (uint32_t)td_udiv64((uint64_t)1 << 46, sum), pm2 = td_mulhr_m(recip, sm_shift);
    int32_t o[hs];
    for (int c = 0; c < hs; c++) o[c] = 0;
#ifdef TD_X86
    if (hs == 8 && pm2 && sm_shift >= 31) td_att_values8_x86(sc, pm2, vc, KV, end, o); else
#endif
    if (hs == 8 && pm2) {
        int32_t o0 = 0, o1 = 0, o2 = 0, o3 = 0, o4 = 0, o5 = 0, o6 = 0, o7 = 0;
        for (int s = 0; s < end; s++) {
            int32_t p = (int32_t)td_mulhr((uint32_t)sc[s], pm2);
            const int8_t *vr = vc + s * KV;
            o0 += p * vr[0]; o1 += p * vr[1]; o2 += p * vr[2]; o3 += p * vr[3];
            o4 += p * vr[4]; o5 += p * vr[5]; o6 += p * vr[6]; o7 += p * vr[7];
        }
        o[0] = o0; o[1] = o1; o[2] = o2; o[3] = o3; o[4] = o4; o[5] = o5; o[6] = o6; o[7] = o7;
    } else {
        for (int s = 0; s < end; s++) {
            int32_t p = (int32_t)td_rsr((int64_t)sc[s] * recip, sm_shift);
            const int8_t *vr = vc + s * KV;
            for (int c = 0; c < hs; c++) o[c] += p * vr[c];
        }
    }
    for (int c = 0; c < hs; c++) a[c] = (int64_t)o[c] * mv[c];
}

/* Rows t < n at positions pos + t over cache rows that hold them already (kc, vc: [max_seq][KV]).
 * Cores: rows across the cores, or for fewer rows than cores (a decode step) each row's heads, the
 * output row's absmax combined by td_par_reduce2. scratch: one score row of pos + n int32 per core. */
static inline void td_attention_rows(const int16_t *q, int32_t pos, int n, int D, int KV, int hs,
                                     const int8_t *kc, const int8_t *vc, const int16_t *mk, const int16_t *mv,
                                     const int32_t *exp2t, td_scale c_score, int sm_shift, td_scale c_dyn,
                                     int32_t qmax, int32_t *scratch, int8_t *a8, int32_t *F)
{
    int km = D / KV, H = D / hs;
    int32_t *sc = scratch + td_par_me() * (pos + n);
    int rows = n >= td_par_cores();
    for (int t = rows ? td_par_lo(n) : 0, te = rows ? td_par_hi(n) : n; t < te; t++) {
        int h0 = rows ? 0 : td_par_lo(H), h1 = rows ? H : td_par_hi(H);
        int64_t buf[(h1 - h0) * hs + 1];
        for (int h = h0; h < h1; h++) {
            int off = (h / km) * hs;
            td_attention_head(q + t * D + h * hs, kc + off, vc + off, KV, hs, pos + t + 1, mk + off, mv + off,
                              exp2t, c_score, sm_shift, sc, buf + (h - h0) * hs);
        }
        uint64_t M = td_absmax64(buf, (h1 - h0) * hs), none = 0;
        if (!rows) td_par_reduce2(&none, &M);
        td_quantize_vec64m(buf, (h1 - h0) * hs, M, qmax, a8 + t * D + h0 * hs, 0);
        if (rows || td_par_me() == 0) {
            td_scale f = td_scale_mul(td_scale_norm((int64_t)M, 0), c_dyn);
            F[2 * t] = f.m; F[2 * t + 1] = f.e;
        }
    }
}

/* the n new cache rows at pos.. (per-channel scales kq, vq); every row attends to them all */
static inline void td_attention_store(const int16_t *k, const int16_t *v, int32_t pos, int n, int KV,
                                      const int32_t *kq, const int32_t *vq, int8_t *kc, int8_t *vc)
{
    TD_PAR_FOR2(t, n, i, KV) {
        kc[(pos + t) * KV + i] = td_cache8(k[t * KV + i], kq + 2 * i);
        vc[(pos + t) * KV + i] = td_cache8(v[t * KV + i], vq + 2 * i);
    }
}

/* Causal GQA attention over the int8 cache of one layer (kc, vc: [max_seq][KV]): stores the n new
 * rows at pos.., then row t attends over pos + t + 1 positions. */
static inline void td_attention_kv(const int16_t *q, const int16_t *k, const int16_t *v, int32_t pos,
                                   int n, int D, int KV, int hs, int8_t *kc, int8_t *vc,
                                   const int32_t *kq, const int32_t *vq, const int16_t *mk,
                                   const int16_t *mv, const int32_t *exp2t, td_scale c_score,
                                   int sm_shift, td_scale c_dyn, int32_t qmax, int32_t *scratch,
                                   int8_t *a8, int32_t *F)
{
    td_attention_store(k, v, pos, n, KV, kq, vq, kc, vc);
    td_par_sync();
    td_attention_rows(q, pos, n, D, KV, hs, kc, vc, mk, mv, exp2t, c_score, sm_shift, c_dyn, qmax, scratch, a8, F);
    td_par_sync();
}

#ifdef TD_CLUSTER
/* The caches homed in L2 (the cluster): one layer's rows [0, pos) of K and V come by DMA into an L1
 * window (K rows, then V rows S * KV bytes on), started by core 0 ahead of the layer
 * (td_attention_kv_fetch, returns the transfer to wait for); the kernel stores the new rows in the
 * window and sends them to L2 while it computes, and waits for that before it returns (the next
 * layer's rows come into the same window). */
static inline uint32_t td_attention_kv_fetch(int8_t *win, const int8_t *kc, const int8_t *vc, int32_t pos, int KV,
                                             int S)
{
    if (pos <= 0) return 0;
    td_dma_start_1d(win, kc, (uint32_t)(pos * KV));
    return td_dma_start_1d(win + S * KV, vc, (uint32_t)(pos * KV));
}
static inline void td_attention_kv_l2(const int16_t *q, const int16_t *k, const int16_t *v, int32_t pos,
                                      int n, int D, int KV, int hs, int8_t *kc, int8_t *vc,
                                      const int32_t *kq, const int32_t *vq, const int16_t *mk,
                                      const int16_t *mv, const int32_t *exp2t, td_scale c_score,
                                      int sm_shift, td_scale c_dyn, int32_t qmax, int32_t *scratch,
                                      int8_t *win, int S, uint32_t fetched, int8_t *a8, int32_t *F)
{
    int8_t *kw = win, *vw = win + S * KV;
    uint32_t sent = 0;
    if (td_par_me() == 0 && pos > 0) td_dma_wait(fetched);   /* it fills rows < pos: the stores go after them */
    td_attention_store(k, v, pos, n, KV, kq, vq, kw, vw);
    td_par_sync();
    if (td_par_me() == 0 && n > 0) {   /* the computation only reads the window: it may go meanwhile */
        td_dma_start_1d(kc + pos * KV, kw + pos * KV, (uint32_t)(n * KV));
        sent = td_dma_start_1d(vc + pos * KV, vw + pos * KV, (uint32_t)(n * KV));
    }
    td_attention_rows(q, pos, n, D, KV, hs, kw, vw, mk, mv, exp2t, c_score, sm_shift, c_dyn, qmax, scratch, a8, F);
    if (td_par_me() == 0 && n > 0) td_dma_wait(sent);
    td_par_sync();
}
#endif
#endif
