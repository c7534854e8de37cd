/* MatMulW (ops/matmul_w.py): y[m][n] = bias[n] + sum_k a[m][k] w[n][k]; int8 a [M][K], constant int8
 * w [N][K] (stored transposed by the compiler), int32 y and bias (NULL: none).
 *
 * One input row streamed past 8 weight rows (then 4, then 1): one load of a per 8 MACs, the eight
 * weight rows K apart (immediate offsets while 7K < 2048), 3.1 instructions per MAC in the k loop.
 * (row, column block) pairs are shared across the cores. */
#ifndef TD_MATMUL_W_H
#define TD_MATMUL_W_H
#include "td_fast.h"   /* TD_MAC, TD_BARRIER: keep clang from hoisting and spilling */

static const int32_t td_mmw_zeros[8] = {0};
#define TD_MMW_STEP(J) TD_MAC(c##J, x, (int32_t)pw[(J) * K + k])
static inline void td_mmw_s8(const int8_t *a, const int8_t *w, const int32_t *bias, int32_t *y,
                             int M, int N, int K)
{
    const int N8 = N / 8;
    TD_PAR_FOR2(m, M, nb, N8) {
        const int n = nb * 8;
        const int8_t *pa = a + (ptrdiff_t)m * K, *pw = w + (ptrdiff_t)n * K;
        const int32_t *pb = bias ? bias + n : td_mmw_zeros;
        int32_t c0 = pb[0], c1 = pb[1], c2 = pb[2], c3 = pb[3], c4 = pb[4], c5 = pb[5], c6 = pb[6], c7 = pb[7];
#pragma GCC unroll 4
        for (int k = 0; k < K; k++) {
            const int32_t x = pa[k];
            TD_MMW_STEP(0); TD_MMW_STEP(1); TD_MMW_STEP(2); TD_MMW_STEP(3);
            TD_MMW_STEP(4); TD_MMW_STEP(5); TD_MMW_STEP(6); TD_MMW_STEP(7);
            TD_BARRIER();
        }
        int32_t *py = y + (ptrdiff_t)m * N + n;
        py[0] = c0; py[1] = c1; py[2] = c2; py[3] = c3; py[4] = c4; py[5] = c5; py[6] = c6; py[7] = c7;
    }
    TD_PAR_FOR2(m, M, n_, N - N8 * 8) {   /* the last N % 8 columns, one at a time */
        const int n = N8 * 8 + n_;
        const int8_t *pa = a + (ptrdiff_t)m * K, *pw = w + (ptrdiff_t)n * K;
        int32_t c0 = 0;
        for (int k = 0; k < K; k++) c0 += (int32_t)pa[k] * pw[k];
        y[(ptrdiff_t)m * N + n] = c0 + (bias ? bias[n] : 0);
    }
    td_par_sync();
}
#undef TD_MMW_STEP
#endif
