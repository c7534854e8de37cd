/* Register-blocked int8 direct convolution for plain RV32IMC (see td_fast.h). */
#ifndef TD_FAST_CONV_H
#define TD_FAST_CONV_H
#include "td_fast.h"

/* Copy x [C][H][W] into xp [C][H+PT+PB][W+PL+PR] with the border set to x_zp: padded taps then
 * contribute (x_zp - x_zp) w = 0 once x_zp * sum(w) is folded into the bias. */
static inline void td_pad_s8(const int8_t *x, int8_t *xp, int C, int H, int W, int PT, int PB,
                             int PL, int PR, int8_t x_zp)
{
    const int WP = W + PL + PR, HP = H + PT + PB;
    for (int i = 0; i < C * HP * WP; i++) xp[i] = x_zp;
    for (int c = 0; c < C; c++)
        for (int h = 0; h < H; h++) {
            const int8_t *src = x + (c * H + h) * W;
            int8_t *dst = xp + (c * HP + h + PT) * WP + PL;
            for (int w = 0; w < W; w++) dst[w] = src[w];
        }
}

/* Stride-1 undilated conv on a padded input xp [C][HP][WP] with weights packed at compile time
 * as wq [K/4][C][KH][KW][4]: blocks of 4 output channels x 4 neighbouring output pixels. Along a
 * kernel row the 4 pixels share KW + 3 inputs (each loaded once), and the 4 weights of a tap are
 * loaded once for 4 pixels: (KW + 3 + 4 KW) loads per 16 KW MACs. K % 4 == 0, OW % 4 == 0. */
#define TD_CV_TAP(kw) do {                                                                     \
        int32_t b;                                                                             \
        b = pq[(kw) * 4 + 0]; TD_MAC(c00, x0, b); TD_MAC(c01, x1, b); TD_MAC(c02, x2, b); TD_MAC(c03, x3, b); \
        b = pq[(kw) * 4 + 1]; TD_MAC(c10, x0, b); TD_MAC(c11, x1, b); TD_MAC(c12, x2, b); TD_MAC(c13, x3, b); \
        b = pq[(kw) * 4 + 2]; TD_MAC(c20, x0, b); TD_MAC(c21, x1, b); TD_MAC(c22, x2, b); TD_MAC(c23, x3, b); \
        b = pq[(kw) * 4 + 3]; TD_MAC(c30, x0, b); TD_MAC(c31, x1, b); TD_MAC(c32, x2, b); TD_MAC(c33, x3, b); \
        TD_BARRIER();                                                                          \
    } while (0)
#define TD_CV_C(po, wo) do {                                                                   \
        _Pragma("GCC unroll 8")                                                                \
        for (int kh = 0; kh < KH; kh++) {                                                      \
            const int8_t *pr = px + (po) + kh * WP;                                            \
            const int8_t *pq = pw + (wo) + kh * KW * 4;                                        \
            int32_t x0 = pr[0], x1 = pr[1], x2 = pr[2], x3 = pr[3];                            \
            TD_CV_TAP(0);                                                                      \
            _Pragma("GCC unroll 8")                                                            \
            for (int kw = 1; kw < KW; kw++) {                                                  \
                x0 = x1; x1 = x2; x2 = x3; x3 = pr[kw + 3];                                    \
                TD_CV_TAP(kw);                                                                 \
            }                                                                                  \
        }                                                                                      \
    } while (0)
static inline void td_conv_fast(const int8_t *xp, const int8_t *wq, const td_rq_t *q, int8_t *y,
                                int C, int HP, int WP, int K, int OH, int OW, int KH, int KW,
                                int32_t lo, int32_t hi)
{
    for (int k = 0; k < K; k += 4) {
        const td_rq_t *qn = q + k;
        for (int oh = 0; oh < OH; oh++) {
            for (int ow = 0; ow < OW; ow += 4) {
                int32_t c00 = qn[0].bias, c10 = qn[1].bias, c20 = qn[2].bias, c30 = qn[3].bias;
                int32_t c01 = c00, c02 = c00, c03 = c00, c11 = c10, c12 = c10, c13 = c10;
                int32_t c21 = c20, c22 = c20, c23 = c20, c31 = c30, c32 = c30, c33 = c30;
                const int8_t *px = xp + oh * WP + ow, *pw = wq + k * C * KH * KW;
                int c = 0;
                for (; c + 2 <= C; c += 2) {
                    TD_CV_C(0, 0);
                    TD_CV_C(HP * WP, KH * KW * 4);
                    px += 2 * HP * WP; pw += 2 * KH * KW * 4;
                }
                if (c < C) TD_CV_C(0, 0);
                int8_t *py = y + (k * OH + oh) * OW + ow;
                TD_RQ4(py, 1, 0, c00, c01, c02, c03);
                TD_RQ4(py + OH * OW, 1, 1, c10, c11, c12, c13);
                TD_RQ4(py + 2 * OH * OW, 1, 2, c20, c21, c22, c23);
                TD_RQ4(py + 3 * OH * OW, 1, 3, c30, c31, c32, c33);
            }
        }
    }
}
#endif
