/* Register-blocked int8 direct convolution for plain RV32IMC (see td_fast.h). */
#ifndef TD_FAST_CONV_H
#define TD_FAST_CONV_H
#include "td_fast.h"

/* Copy x [C][H][W] into xp [C][H+PT+PB][W+PL+PR] with the border set to x_zp: padded taps then
 * contribute (x_zp - x_zp) w = 0 once x_zp * sum(w) is folded into the bias. */
static inline void td_pad_s8(const int8_t *x0, int8_t *xp0, int C, int H, int W, int PT, int PB,
                             int PL, int PR, int8_t x_zp)
{
    /* only the border is filled; interior rows are copied 4 bytes per pass (about 2.2 instr/byte) */
    const int WP = W + PL + PR, HP = H + PT + PB;
    TD_PAR_FOR(c, C) {   /* channels across the cores */
        const int8_t *x = x0 + c * H * W;
        int8_t *xp = xp0 + c * HP * WP;
        for (int i = 0; i < PT * WP; i++) *xp++ = x_zp;
        for (int h = 0; h < H; h++) {
            for (int i = 0; i < PL; i++) *xp++ = x_zp;
            int w = 0;
            for (; w + 4 <= W; w += 4) {
                const int8_t v0 = x[0], v1 = x[1], v2 = x[2], v3 = x[3];
                xp[0] = v0; xp[1] = v1; xp[2] = v2; xp[3] = v3;
                x += 4; xp += 4;
            }
            for (; w < W; w++) *xp++ = *x++;
            for (int i = 0; i < PR; i++) *xp++ = x_zp;
        }
        for (int i = 0; i < PB * WP; i++) *xp++ = x_zp;
    }
    td_par_sync();
}

/* Stride-1 undilated conv on a padded input xp [C][HP][WP] with weights packed at compile time
 * as wq [K/4][C][KH][KW][4]: blocks of 4 output channels x 4 neighbouring output pixels. Along a
 * kernel row the 4 pixels share KW + 3 inputs (each loaded once), and the 4 weights of a tap are
 * loaded once for 4 pixels: (KW + 3 + 4 KW) loads per 16 KW MACs. K % 4 == 0; a row's last
 * OW % 4 pixels take a plain loop. */
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
    const int OB = (OW + 3) / 4;   /* 4-pixel blocks per row, the last one possibly short */
    TD_PAR_FOR2(kb, K / 4, r, OH * OB) {   /* (4 channels, 4 pixels) blocks across the cores */
        const int k = kb * 4, oh = r / OB, ow = r % OB * 4;
        const td_rq_t *qn = q + k;
        if (ow + 4 > OW) {   /* the last 1-3 pixels of a row, one at a time */
            for (int o = ow; o < OW; o++) {
                int32_t a0 = qn[0].bias, a1 = qn[1].bias, a2 = qn[2].bias, a3 = qn[3].bias;
                const int8_t *pw = wq + k * C * KH * KW;
                for (int c = 0; c < C; c++)
                    for (int kh = 0; kh < KH; kh++)
                        for (int kw = 0; kw < KW; kw++, pw += 4) {
                            const int32_t x = xp[(c * HP + oh + kh) * WP + o + kw];
                            a0 += x * pw[0]; a1 += x * pw[1]; a2 += x * pw[2]; a3 += x * pw[3];
                        }
                int8_t *py = y + (k * OH + oh) * OW + o;
                py[0] = td_rq(a0, qn, lo, hi); py[OH * OW] = td_rq(a1, qn + 1, lo, hi);
                py[2 * OH * OW] = td_rq(a2, qn + 2, lo, hi); py[3 * OH * OW] = td_rq(a3, qn + 3, lo, hi);
            }
            continue;
        }
        {
            {
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
    td_par_sync();
}

/* Depthwise 3x3, stride 1, on a padded input xp [C][HP][WP] (x_zp border, x_zp * sum(w) folded into
 * the bias), w [C][9]. Per channel the 9 weights and the requantization stay in registers. Along an
 * output row each input column (3 loads) is used once: it completes output ci - 2 (weight column 2),
 * continues ci - 1 (column 1) and starts ci (column 0, from the bias), so only 3 accumulators and 3
 * inputs are live; the loop is unrolled by 3 so their roles rotate without moves. The last two
 * columns start no output. */
#define TD_DW_COL(A, B, D, CI) do {                                                            \
        const int32_t x0 = pr[CI], x1 = pr[WP + (CI)], x2 = pr[2 * WP + (CI)];                  \
        TD_MAC(A, x0, w2); TD_MAC(A, x1, w5); TD_MAC(A, x2, w8);                               \
        py[(CI) - 2] = td_rq2(A, m, rnd, sh, lo, hi);                                          \
        if ((CI) <= OW) { TD_MAC(B, x0, w1); TD_MAC(B, x1, w4); TD_MAC(B, x2, w7); }           \
        if ((CI) < OW) { TD_MAC0(D, bias, x0, w0); TD_MAC(D, x1, w3); TD_MAC(D, x2, w6); }     \
    } while (0)
static inline void td_dw3_fast(const int8_t *xp, const int8_t *w9, const td_rq_t *q, int8_t *y,
                               int C, int HP, int WP, int OH, int OW, int32_t lo, int32_t hi)
{
    TD_PAR_FOR2(c, C, oh, OH) {   /* (channel, output row) pairs across the cores */
        const int8_t *w = w9 + c * 9;
        const int32_t w0 = w[0], w1 = w[1], w2 = w[2], w3 = w[3], w4 = w[4], w5 = w[5];
        const int32_t w6 = w[6], w7 = w[7], w8 = w[8];
        const int32_t bias = q[c].bias, m = q[c].m, rnd = q[c].rnd, sh = q[c].sh;
        {
            const int8_t *pr = xp + (c * HP + oh) * WP;
            int8_t *py = y + (c * OH + oh) * OW;
            int32_t a, b, d;
            {
                const int32_t x0 = pr[0], x1 = pr[WP], x2 = pr[2 * WP];
                TD_MAC0(a, bias, x0, w0); TD_MAC(a, x1, w3); TD_MAC(a, x2, w6);
            }
            {
                const int32_t x0 = pr[1], x1 = pr[WP + 1], x2 = pr[2 * WP + 1];
                TD_MAC(a, x0, w1); TD_MAC(a, x1, w4); TD_MAC(a, x2, w7);
                TD_MAC0(b, bias, x0, w0); TD_MAC(b, x1, w3); TD_MAC(b, x2, w6);
            }
            int ci = 2;
            for (; ci + 3 <= OW; ci += 3) {      /* every column here starts an output */
                TD_DW_COL(a, b, d, ci);
                TD_DW_COL(b, d, a, ci + 1);
                TD_DW_COL(d, a, b, ci + 2);
            }
            if (ci < OW + 2) TD_DW_COL(a, b, d, ci);         /* 2 to 4 columns left */
            if (ci + 1 < OW + 2) TD_DW_COL(b, d, a, ci + 1);
            if (ci + 2 < OW + 2) TD_DW_COL(d, a, b, ci + 2);
            if (ci + 3 < OW + 2) TD_DW_COL(a, b, d, ci + 3);
        }
    }
    td_par_sync();
}
#endif
