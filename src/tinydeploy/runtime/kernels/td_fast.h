/* Register-blocked int8 kernels for plain RV32IMC (no SIMD, no MAC instruction).
 *
 * Every call site passes literal shapes and the kernels are static inline, so the C compiler
 * folds trip counts and strides into immediates. Zero points are folded into the bias at compile
 * time (ops/fastpath.py), so inner loops are plain int8 dot products: lb (sign-extending), mul, add.
 *
 * Requantization, exact: for S >= 33, (acc*M + 2^(S-1)) >> S == (mulh(acc, M) + 2^(S-33)) >> (S-32),
 * because 2^(S-1) is a multiple of 2^32 and the low word cannot carry past the shift. y_zp is folded
 * into the rounding term: rnd = 2^(sh-1) + (y_zp << sh) (the compiler checks it cannot overflow).
 */
#ifndef TD_FAST_H
#define TD_FAST_H
#include "td_common.h"

typedef struct { int32_t bias, m, rnd, sh; } td_rq_t;

static inline int8_t td_rq(int32_t acc, const td_rq_t *q, int32_t lo, int32_t hi)
{
    int32_t p = (int32_t)(((int64_t)acc * q->m) >> 32);
    int32_t v = (p + q->rnd) >> q->sh;
    return (int8_t)(v < lo ? lo : (v > hi ? hi : v));
}

/* Requantize column j of a 4-row block: its parameters are loaded once for the four outputs. */
#define TD_RQ4(P, STRIDE, J, A0, A1, A2, A3) do {                                              \
        const int32_t m_ = qn[J].m, r_ = qn[J].rnd, s_ = qn[J].sh;                              \
        (P)[0] = td_rq2(A0, m_, r_, s_, lo, hi); (P)[(STRIDE)] = td_rq2(A1, m_, r_, s_, lo, hi);   \
        (P)[2 * (STRIDE)] = td_rq2(A2, m_, r_, s_, lo, hi);                                     \
        (P)[3 * (STRIDE)] = td_rq2(A3, m_, r_, s_, lo, hi);                                     \
        TD_BARRIER();                                                                          \
    } while (0)
#define TD_RQ_COL(J, A0, A1, A2, A3) TD_RQ4(py + (J), N, J, A0, A1, A2, A3)

static inline int8_t td_rq2(int32_t acc, int32_t m, int32_t rnd, int32_t sh, int32_t lo, int32_t hi)
{
    int32_t v = ((int32_t)(((int64_t)acc * m) >> 32) + rnd) >> sh;
    return (int8_t)(v < lo ? lo : (v > hi ? hi : v));
}

/* y[m][n] = rq(q[n].bias + sum_k a[m][k] w[n][k]): a [M][K], w [N][K] (both contiguous), N % 4 == 0.
 * Blocks of 4 rows x 4 columns: 16 accumulators, 8 loads per 16 MACs. */
/* acc += x * b. On RISC-V one asm statement keeps mul and add together: left to itself clang's
 * scheduler issues all 16 products of a step before their adds and spills them. */
#if defined(__riscv) && !defined(TD_NO_ASM)
#define TD_MAC(acc, x, b) do { int32_t t_;                                                     \
        __asm__ volatile("mul %1, %2, %3\n\tadd %0, %0, %1" : "+r"(acc), "=&r"(t_) : "r"(x), "r"(b)); } while (0)
#else
#define TD_MAC(acc, x, b) ((acc) += (x) * (b))
#endif
/* A compiler barrier between k steps keeps clang from hoisting every load of an unrolled loop
 * (which spills the 16 accumulators); it emits no instruction. */
#define TD_BARRIER() __asm__ volatile("" ::: "memory")
#define TD_MM44(o) do {                                                                        \
        int32_t x0 = pa[(o)], x1 = pa[(o) + K], x2 = pa[(o) + 2 * K], x3 = pa[(o) + 3 * K], b;   \
        b = pw[(o)];         TD_MAC(c00, x0, b); TD_MAC(c10, x1, b); TD_MAC(c20, x2, b); TD_MAC(c30, x3, b);        \
        b = pw[(o) + K];     TD_MAC(c01, x0, b); TD_MAC(c11, x1, b); TD_MAC(c21, x2, b); TD_MAC(c31, x3, b);        \
        b = pw[(o) + 2 * K]; TD_MAC(c02, x0, b); TD_MAC(c12, x1, b); TD_MAC(c22, x2, b); TD_MAC(c32, x3, b);        \
        b = pw[(o) + 3 * K]; TD_MAC(c03, x0, b); TD_MAC(c13, x1, b); TD_MAC(c23, x2, b); TD_MAC(c33, x3, b);        \
        TD_BARRIER();                                                                          \
    } while (0)
static inline void td_mm_fast(const int8_t *a, const int8_t *w, const td_rq_t *q, int8_t *y,
                              int M, int N, int K, int32_t lo, int32_t hi)
{
    const int M4 = M & ~3;
    for (int m = 0; m < M4; m += 4) {
        for (int n = 0; n < N; n += 4) {
            const td_rq_t *qn = q + n;
            int32_t c00 = qn[0].bias, c01 = qn[1].bias, c02 = qn[2].bias, c03 = qn[3].bias;
            int32_t c10 = c00, c11 = c01, c12 = c02, c13 = c03;
            int32_t c20 = c00, c21 = c01, c22 = c02, c23 = c03;
            int32_t c30 = c00, c31 = c01, c32 = c02, c33 = c03;
            const int8_t *pa = a + m * K, *pw = w + n * K;
            int k = 0;
            for (; k + 8 <= K; k += 8) {
                TD_MM44(0); TD_MM44(1); TD_MM44(2); TD_MM44(3);
                TD_MM44(4); TD_MM44(5); TD_MM44(6); TD_MM44(7);
                pa += 8; pw += 8;
            }
            for (; k < K; k++) {
                TD_MM44(0);
                pa++; pw++;
            }
            int8_t *py = y + m * N + n;
            TD_RQ_COL(0, c00, c10, c20, c30); TD_RQ_COL(1, c01, c11, c21, c31);
            TD_RQ_COL(2, c02, c12, c22, c32); TD_RQ_COL(3, c03, c13, c23, c33);
        }
    }
    for (int m = M4; m < M; m++) {       /* remaining rows (e.g. a matrix-vector Gemm): 1 x 4 */
        for (int n = 0; n < N; n += 4) {
            const td_rq_t *qn = q + n;
            int32_t c0 = qn[0].bias, c1 = qn[1].bias, c2 = qn[2].bias, c3 = qn[3].bias;
            const int8_t *pa = a + m * K, *pw = w + n * K;
#pragma GCC unroll 8
            for (int k = 0; k < K; k++) {
                int32_t x = *pa++;
                c0 += x * pw[0]; c1 += x * pw[K]; c2 += x * pw[2 * K]; c3 += x * pw[3 * K];
                pw++;
            }
            int8_t *py = y + m * N + n;
            py[0] = td_rq(c0, qn, lo, hi); py[1] = td_rq(c1, qn + 1, lo, hi);
            py[2] = td_rq(c2, qn + 2, lo, hi); py[3] = td_rq(c3, qn + 3, lo, hi);
        }
    }
}
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
