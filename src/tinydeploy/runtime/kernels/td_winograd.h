/* Integer-exact Winograd F(2x2, 3x3) for stride-1 undilated ungrouped 3x3 int8 convolution.
 *
 * Scaled transforms, all integer: G' = 2 G makes U = G' g G'^T an integer 4 x 4 tile (= 4 U_float,
 * computed at compile time, int16: |U| <= 9 * 128); V = B^T d B of a 4 x 4 input tile (|V| <= 4 * 128,
 * int16); M = sum_c U (.) V in int32; Y' = A^T M A = 4 Y exactly, where Y is the 2 x 2 block of direct
 * sums. The factor 4 is folded into the requantization (bias * 4 and shift + 2 in the table: the same
 * rounding of the same rational number), so no division is done. ops/winograd.py bounds every
 * intermediate for int32 at compile time and keeps the direct kernel otherwise.
 *
 * Layout: xp [C][HP][WP] is the input padded with x_zp to HP = 2 TH + 2, WP = 2 TW + 2 (TH x TW
 * tiles; x_zp * sum(w) is folded into the bias, as in td_conv_fast). Tiles are done TC at a time:
 * v [16][TC][C] (int16) holds their transformed inputs, m [TC][K][16] (int32) their products; wu
 * [16][K][C] (int16) the transformed weights. Position p = 4 i + j of a tile is row i, column j.
 * The 16 products per position p are a [TC x C] . [C x K] matmul, register-blocked 4 x 4. */
#ifndef TD_WINOGRAD_H
#define TD_WINOGRAD_H
#include "td_fast.h"

/* V = B^T d B, B^T = [[1,0,-1,0],[0,1,1,0],[0,-1,1,0],[0,1,0,-1]]; p-th value at v[p * S] */
static inline void td_wino_in(const int8_t *d, int WP, int16_t *v, int S)
{
#define TD_WI_COL(j) const int32_t r0##j = d[j], r1##j = d[WP + j], r2##j = d[2 * WP + j],        \
        r3##j = d[3 * WP + j], a0##j = r0##j - r2##j, a1##j = r1##j + r2##j,                      \
        a2##j = r2##j - r1##j, a3##j = r1##j - r3##j
    TD_WI_COL(0); TD_WI_COL(1); TD_WI_COL(2); TD_WI_COL(3);
#undef TD_WI_COL
#define TD_WI_ROW(i) v[(4 * i) * S] = (int16_t)(a##i##0 - a##i##2);                            \
    v[(4 * i + 1) * S] = (int16_t)(a##i##1 + a##i##2); v[(4 * i + 2) * S] = (int16_t)(a##i##2 - a##i##1); \
    v[(4 * i + 3) * S] = (int16_t)(a##i##1 - a##i##3)
    TD_WI_ROW(0); TD_WI_ROW(1); TD_WI_ROW(2); TD_WI_ROW(3);
#undef TD_WI_ROW
}

/* m[t][k][p] = sum_c v[p][t][c] wu[p][k][c] for the nt tiles of a chunk, K % 4 == 0 */
static inline void td_wino_mm(const int16_t *v, const int16_t *wu, int32_t *m, int nt, int TC, int C, int K)
{
    TD_PAR_FOR2(p, 16, kb, K / 4) {   /* (position, 4 channels) pairs across the cores */
        const int16_t *vp = v + p * TC * C, *up = wu + p * K * C;
        const int k = kb * 4;
        {
            int t = 0;
            for (; t + 4 <= nt; t += 4) {
                int32_t c00 = 0, c01 = 0, c02 = 0, c03 = 0, c10 = 0, c11 = 0, c12 = 0, c13 = 0;
                int32_t c20 = 0, c21 = 0, c22 = 0, c23 = 0, c30 = 0, c31 = 0, c32 = 0, c33 = 0;
                const int16_t *pa = vp + t * C, *pw = up + k * C;
#pragma GCC unroll 8
                for (int c = 0; c < C; c++) {
                    int32_t x0 = pa[0], x1 = pa[C], x2 = pa[2 * C], x3 = pa[3 * C], b;
                    b = pw[0];     TD_MAC(c00, x0, b); TD_MAC(c10, x1, b); TD_MAC(c20, x2, b); TD_MAC(c30, x3, b);
                    b = pw[C];     TD_MAC(c01, x0, b); TD_MAC(c11, x1, b); TD_MAC(c21, x2, b); TD_MAC(c31, x3, b);
                    b = pw[2 * C]; TD_MAC(c02, x0, b); TD_MAC(c12, x1, b); TD_MAC(c22, x2, b); TD_MAC(c32, x3, b);
                    b = pw[3 * C]; TD_MAC(c03, x0, b); TD_MAC(c13, x1, b); TD_MAC(c23, x2, b); TD_MAC(c33, x3, b);
                    TD_BARRIER();
                    pa++; pw++;
                }
                int32_t *pm = m + (t * K + k) * 16 + p;
                pm[0] = c00; pm[16] = c01; pm[32] = c02; pm[48] = c03;
                pm += K * 16; pm[0] = c10; pm[16] = c11; pm[32] = c12; pm[48] = c13;
                pm += K * 16; pm[0] = c20; pm[16] = c21; pm[32] = c22; pm[48] = c23;
                pm += K * 16; pm[0] = c30; pm[16] = c31; pm[32] = c32; pm[48] = c33;
            }
            for (; t < nt; t++) {
                int32_t c0 = 0, c1 = 0, c2 = 0, c3 = 0;
                const int16_t *pa = vp + t * C, *pw = up + k * C;
#pragma GCC unroll 8
                for (int c = 0; c < C; c++) {
                    int32_t x = pa[c];
                    c0 += x * pw[c]; c1 += x * pw[C + c]; c2 += x * pw[2 * C + c]; c3 += x * pw[3 * C + c];
                }
                int32_t *pm = m + (t * K + k) * 16 + p;
                pm[0] = c0; pm[16] = c1; pm[32] = c2; pm[48] = c3;
            }
        }
    }
    td_par_sync();
}

/* Y' = A^T M A (A^T = [[1,1,1,0],[0,1,-1,-1]]), requantized with q[k] (bias and shift scaled by 4) */
static inline void td_wino_out(const int32_t *mm, const td_rq_t *qk, int8_t *py, int OW, int two_rows,
                               int two_cols, int32_t lo, int32_t hi)
{
    const int32_t r00 = mm[0] + mm[4] + mm[8], r01 = mm[1] + mm[5] + mm[9];
    const int32_t r02 = mm[2] + mm[6] + mm[10], r03 = mm[3] + mm[7] + mm[11];
    const int32_t r10 = mm[4] - mm[8] - mm[12], r11 = mm[5] - mm[9] - mm[13];
    const int32_t r12 = mm[6] - mm[10] - mm[14], r13 = mm[7] - mm[11] - mm[15];
    const int32_t b = qk->bias;
    py[0] = td_rq(b + r00 + r01 + r02, qk, lo, hi);
    if (two_cols) py[1] = td_rq(b + r01 - r02 - r03, qk, lo, hi);
    if (two_rows) {
        py[OW] = td_rq(b + r10 + r11 + r12, qk, lo, hi);
        if (two_cols) py[OW + 1] = td_rq(b + r11 - r12 - r13, qk, lo, hi);
    }
}

static inline void td_wino_conv(const int8_t *xp, const int16_t *wu, const td_rq_t *q, int8_t *y,
                                int16_t *v, int32_t *m, int C, int HP, int WP, int K, int OH, int OW,
                                int TC, int32_t lo, int32_t hi)
{
    const int TW = (OW + 1) / 2, T = TW * ((OH + 1) / 2);
    for (int t0 = 0; t0 < T; t0 += TC) {
        const int nt = T - t0 < TC ? T - t0 : TC;
        TD_PAR_FOR2(t, nt, c, C) {   /* each phase across the cores, then a barrier */
            const int ty = (t0 + t) / TW, tx = (t0 + t) % TW;
            td_wino_in(xp + 2 * ty * WP + 2 * tx + c * HP * WP, WP, v + t * C + c, TC * C);
        }
        td_par_sync();
        td_wino_mm(v, wu, m, nt, TC, C, K);
        TD_PAR_FOR2(t, nt, k, K) {
            const int ty = (t0 + t) / TW, tx = (t0 + t) % TW;
            const int two_rows = 2 * ty + 1 < OH, two_cols = 2 * tx + 1 < OW;
            td_wino_out(m + (t * K + k) * 16, q + k, y + 2 * ty * OW + 2 * tx + k * OH * OW, OW, two_rows, two_cols,
                        lo, hi);
        }
        td_par_sync();
    }
}
#endif
