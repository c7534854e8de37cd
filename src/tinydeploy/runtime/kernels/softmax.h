/* Softmax / LogSoftmax over the middle axis of an [outer][L][inner] view, float and int8. */
#ifndef TD_SOFTMAX_H
#define TD_SOFTMAX_H
#include "td_common.h"
#include "td_dynq.h"
#if defined(__STDC_HOSTED__) && __STDC_HOSTED__
#include <math.h>
#else
float expf(float);
float logf(float);
#endif

static inline void td_softmax_f32(const float *x, float *y, int outer, int L, int inner, int log_)
{
    for (int o = 0; o < outer; o++)
        for (int i = 0; i < inner; i++) {
            const float *xr = x + (ptrdiff_t)o * L * inner + i;
            float *yr = y + (ptrdiff_t)o * L * inner + i;
            float mx = xr[0], sum = 0.0f;
            for (int l = 1; l < L; l++) mx = xr[l * inner] > mx ? xr[l * inner] : mx;
            for (int l = 0; l < L; l++) {
                const float e = expf(xr[l * inner] - mx);
                sum += e;
                if (!log_) yr[l * inner] = e;
            }
            if (log_) {
                const float ls = logf(sum);
                for (int l = 0; l < L; l++) yr[l * inner] = xr[l * inner] - mx - ls;
            } else {
                const float inv = 1.0f / sum;
                for (int l = 0; l < L; l++) yr[l * inner] *= inv;
            }
        }
}

/* int8 softmax, no floating point:
 *   e_l  = table[max - x_l]                 table[d] = round(2^15 exp(-sx d)), so e of the max = 2^15
 *   sum  = sum_l e_l                        in [2^15, L 2^15), uint32
 *   r    = smallest shift with sum >> r < 2^16;  D = sum >> r in [2^15, 2^16)
 *   inv  = C / D                            C = round(2^Sc / sy) in [2^31, 2^32): one udiv per row
 *   y_l  = clamp(((e_l inv + 2^(Sc+r-1)) >> (Sc + r)) + zy, lo, hi)   = round(e_l / (sum sy)) + zy
 * The relative error of inv is ~2^-15, i.e. < 0.01 LSB on any output: the result is onnxruntime's
 * float softmax rounded, except within 0.01 LSB of a rounding tie. */
static inline void td_softmax_s8(const int8_t *x, int8_t *y, int outer, int L, int inner,
                                 const uint16_t *table, uint32_t C, int Sc, int32_t zy,
                                 int32_t lo, int32_t hi)
{
    TD_PAR_FOR2(o, outer, i, inner) {   /* rows across the cores */
            const int8_t *xr = x + (ptrdiff_t)o * L * inner + i;
            int8_t *yr = y + (ptrdiff_t)o * L * inner + i;
            int32_t mx = xr[0];
            for (int l = 1; l < L; l++) mx = xr[l * inner] > mx ? xr[l * inner] : mx;
            uint32_t sum = 0;
            for (int l = 0; l < L; l++) sum += table[mx - xr[l * inner]];
            int r = 0;
            while ((sum >> r) >= 65536u) r++;
            const uint32_t inv = C / (sum >> r);
            const int sh = Sc + r;
            const uint64_t half = (uint64_t)1 << (sh - 1);
            for (int l = 0; l < L; l++) {
                const uint64_t p = (uint64_t)table[mx - xr[l * inner]] * inv;
                yr[l * inner] = (int8_t)td_clamp((int32_t)((p + half) >> sh) + zy, lo, hi);
            }
        }
    td_par_sync();
}

/* softmax.softmax_exp2, the weights: scores s[0..n) with maximum amax become w = 2^(-e8/256) in Q15
 * (in place), e8 = rsr((amax - s) G.m, G.e) the distance to the maximum in 1/256 octaves, w = 0 from
 * e8 = 16 * 256 on; returns sum w (< n 2^15: 32 bits for n <= 2^16). For d = amax - s < 2^31 e8
 * comes from 32-bit words (td_mulhr), or for 33 <= G.e <= 63 from the high word alone (the low word
 * cannot carry into the result). The probabilities are rsr(w (2^46 / sum), 47 - bits). */
static inline uint32_t td_softmax_exp2_w(int32_t *s, int n, int32_t amax, td_scale G, const int32_t *exp2t)
{
    uint32_t sum = 0, gm2 = td_mulhr_m((uint32_t)G.m, G.e);
#define TD_SOFTMAX_W(E8) do { for (int i = 0; i < n; i++) {                                     \
            uint32_t e8 = (E8);                                                                  \
            int32_t w = e8 >= (16 << 8) ? 0 : exp2t[e8 & 255] >> (e8 >> 8);                     \
            s[i] = w;                                                                            \
            sum += (uint32_t)w; } } while (0)
    if (gm2) TD_SOFTMAX_W(td_mulhr((uint32_t)(amax - s[i]), gm2));
    else if (G.e >= 33 && G.e <= 63)
        TD_SOFTMAX_W((uint32_t)((td_mulu((uint32_t)(amax - s[i]), (uint32_t)G.m).hi + ((uint32_t)1 << (G.e - 33)))
                                >> (G.e - 32)));
    else TD_SOFTMAX_W((uint32_t)td_min64(td_scale_apply((int64_t)amax - s[i], G), 16 << 8));
#undef TD_SOFTMAX_W
    return sum;
}
#endif
