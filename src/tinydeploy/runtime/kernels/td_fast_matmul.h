/* Register-blocked int8 matmul for plain RV32IMC (see td_fast.h for the requantization). */
#ifndef TD_FAST_MATMUL_H
#define TD_FAST_MATMUL_H
#include "td_fast.h"

/* y[m][n] = rq(q[n].bias + sum_k a[m][k] w[n][k]): a [M][K], w [N][K] (both contiguous), N % 4 == 0.
 *
 * Register blocks of 20 accumulators: 4 rows x 5 columns (4 inputs held, 5 weights streamed) for
 * rows [0, M4) x columns [0, N5), then 5 rows x 4 columns (4 weights held, 5 inputs streamed) for the
 * last columns (N - N5 is a multiple of 4), 4 x 4 or 1 x 4 for what is left. Either way 9 loads per
 * 20 MACs: 2.45 instructions per MAC in the inner loop. The first k step starts each accumulator
 * from its bias (no moves). On RISC-V a whole 4 x 5 or 5 x 4 block (k loop, requantization, stores)
 * is one asm statement (td_fast_mm_asm.h, generated): 20 accumulators + 4 held values + 1 streamed +
 * 1 product + 2 pointers are exactly the 28 registers clang can allocate (the build passes
 * -fomit-frame-pointer; define TD_NO_ASM for a build that keeps the frame pointer), and at this
 * pressure clang left to itself spills or shuffles registers. The C steps below are the portable
 * form (host, -O0, or offsets beyond the +-2 KiB of an immediate). 64x64x64: 2.594 instr/MAC. */
#define TD_MAC_(acc, x, b, bias) TD_MAC(acc, x, b)
#define TD_MAC0_(acc, x, b, bias) TD_MAC0(acc, bias, x, b)
/* stream weight column J past the 4 held inputs x0..x3 */
#define TD_MMCOL(J, O, MAC) do {                                                               \
        int32_t b = pw[(O) + (J) * K];                                                         \
        MAC(c0##J, x0, b, qn[J].bias); MAC(c1##J, x1, b, qn[J].bias);                          \
        MAC(c2##J, x2, b, qn[J].bias); MAC(c3##J, x3, b, qn[J].bias);                          \
    } while (0)
/* stream input row I past the 4 held weights b0..b3 */
#define TD_MMROW(I, O, MAC) do {                                                               \
        int32_t x = pa[(O) + (I) * K];                                                         \
        MAC(c##I##0, x, b0, qn[0].bias); MAC(c##I##1, x, b1, qn[1].bias);                      \
        MAC(c##I##2, x, b2, qn[2].bias);                                                       \
        MAC(c##I##3, x, b3, qn[3].bias);                                                       \
    } while (0)
#define TD_MMX(O) int32_t x0 = pa[(O)], x1 = pa[(O) + K], x2 = pa[(O) + 2 * K], x3 = pa[(O) + 3 * K]
#define TD_MMB(O) int32_t b0 = pw[(O)], b1 = pw[(O) + K], b2 = pw[(O) + 2 * K], b3 = pw[(O) + 3 * K]
#define TD_MM44(O) do { TD_MMX(O);                                                             \
        TD_MMCOL(0, O, TD_MAC_); TD_MMCOL(1, O, TD_MAC_); TD_MMCOL(2, O, TD_MAC_);             \
        TD_MMCOL(3, O, TD_MAC_); TD_BARRIER(); } while (0)
#define TD_MM45(O) do { TD_MMX(O);                                                             \
        TD_MMCOL(0, O, TD_MAC_); TD_MMCOL(1, O, TD_MAC_); TD_MMCOL(2, O, TD_MAC_);             \
        TD_MMCOL(3, O, TD_MAC_); TD_MMCOL(4, O, TD_MAC_); TD_BARRIER(); } while (0)
#define TD_MM54(O) do { TD_MMB(O);                                                             \
        TD_MMROW(0, O, TD_MAC_); TD_MMROW(1, O, TD_MAC_);                      \
        TD_MMROW(2, O, TD_MAC_); TD_MMROW(3, O, TD_MAC_);                      \
        TD_MMROW(4, O, TD_MAC_); TD_BARRIER(); } while (0)
#define TD_MM44_0() do { TD_MMX(0);                                                            \
        TD_MMCOL(0, 0, TD_MAC0_); TD_MMCOL(1, 0, TD_MAC0_);         \
        TD_MMCOL(2, 0, TD_MAC0_); TD_MMCOL(3, 0, TD_MAC0_);         \
        TD_BARRIER(); } while (0)
#define TD_MM45_0() do { TD_MMX(0);                                                            \
        TD_MMCOL(0, 0, TD_MAC0_); TD_MMCOL(1, 0, TD_MAC0_);         \
        TD_MMCOL(2, 0, TD_MAC0_); TD_MMCOL(3, 0, TD_MAC0_);         \
        TD_MMCOL(4, 0, TD_MAC0_); TD_BARRIER(); } while (0)
#define TD_MM54_0() do { TD_MMB(0);                                                            \
        TD_MMROW(0, 0, TD_MAC0_); TD_MMROW(1, 0, TD_MAC0_); \
        TD_MMROW(2, 0, TD_MAC0_); TD_MMROW(3, 0, TD_MAC0_); \
        TD_MMROW(4, 0, TD_MAC0_); TD_BARRIER(); } while (0)
/* asm blocks: K (and N) must be literals at the call site ("i" operands): td_mm_fast is always inlined */
#if defined(__riscv) && defined(__OPTIMIZE__) && !defined(TD_NO_ASM)
#define TD_MM_ASM 1
#include "td_fast_mm_asm.h"
#endif
#ifndef TD_MMU
#define TD_MMU 16
#endif
/* the k loop of one block after its first step: TD_MMU steps per pass, then the rest */
#define TD_MM_K(STEP) do {                                                                     \
        const int8_t *volatile end_ = pa + (K - 1) / TD_MMU * TD_MMU;                           \
        if ((K - 1) / TD_MMU)                                                                  \
            do {                                                                               \
                _Pragma("GCC unroll 64")                                                       \
                for (int u_ = 0; u_ < TD_MMU; u_++) STEP(u_);                                   \
                pa += TD_MMU; pw += TD_MMU;                                                    \
            } while (pa != end_);                                                              \
        _Pragma("GCC unroll 64")                                                               \
        for (int k_ = 0; k_ < (K - 1) % TD_MMU; k_++) { STEP(0); pa++; pw++; }                 \
    } while (0)
/* One block: in asm where the offsets fit immediates, else in C */
#ifdef TD_MM_ASM
#define TD_MM_BLOCK_ASM(B)                                                                     \
    if (4 * K + TD_MMU + (K - 1) % TD_MMU < 2048 && 4 * N + 4 < 2048) {                        \
        B##_ASM((K - 1) % TD_MMU, (K - 1) / TD_MMU, TD_MMU); continue;  /* the m/n loop */     \
    }
#else
#define TD_MM_BLOCK_ASM(B)
#endif
#define TD_RQ_COL5(J, A0, A1, A2, A3, A4) do {                                                 \
        TD_RQ_COL(J, A0, A1, A2, A3); py[4 * N + (J)] = td_rq2(A4, qn[J].m, qn[J].rnd, qn[J].sh, lo, hi); \
    } while (0)

static inline void td_mm_row4(const int8_t *pa, const int8_t *pw, const td_rq_t *qn, int8_t *py,
                              int K, int32_t lo, int32_t hi)
{
    int32_t c0 = qn[0].bias, c1 = qn[1].bias, c2 = qn[2].bias, c3 = qn[3].bias;
#pragma GCC unroll 8
    for (int k = 0; k < K; k++) {
        int32_t x = *pa++;
        c0 += x * pw[0]; c1 += x * pw[K]; c2 += x * pw[2 * K]; c3 += x * pw[3 * K];
        pw++;
    }
    py[0] = td_rq(c0, qn, lo, hi); py[1] = td_rq(c1, qn + 1, lo, hi);
    py[2] = td_rq(c2, qn + 2, lo, hi); py[3] = td_rq(c3, qn + 3, lo, hi);
}

__attribute__((always_inline))  /* the asm needs K as a literal */
static inline void td_mm_fast(const int8_t *a, const int8_t *w, const td_rq_t *q, int8_t *y,
                              int M, int N, int K, int32_t lo, int32_t hi)
{
    const int M4 = M & ~3, R5 = M4 / 5 * 5;
    int N5 = N / 5 * 5;
    while ((N - N5) % 4) N5 -= 5;
    TD_PAR_FOR2(mb, M4 / 4, nb, N5 / 5) {   /* each nest's blocks across the cores */
            const int m = mb * 4, n = nb * 5;
            const td_rq_t *qn = q + n;
            const int8_t *pa = a + m * K, *pw = w + n * K;
            int8_t *py = y + m * N + n;
            TD_MM_BLOCK_ASM(TD_MM45);
            int32_t c00, c01, c02, c03, c04, c10, c11, c12, c13, c14;
            int32_t c20, c21, c22, c23, c24, c30, c31, c32, c33, c34;
            TD_MM45_0(); pa++; pw++;
            TD_MM_K(TD_MM45);
            TD_RQ_COL(0, c00, c10, c20, c30); TD_RQ_COL(1, c01, c11, c21, c31);
            TD_RQ_COL(2, c02, c12, c22, c32); TD_RQ_COL(3, c03, c13, c23, c33);
            TD_RQ_COL(4, c04, c14, c24, c34);
        }
    TD_PAR_FOR(nb, (N - N5) / 4) {
        const int n = N5 + nb * 4;
        const td_rq_t *qn = q + n;
        int m = 0;
        for (; m < R5; m += 5) {
            const int8_t *pa = a + m * K, *pw = w + n * K;
            int8_t *py = y + m * N + n;
            TD_MM_BLOCK_ASM(TD_MM54);
            int32_t c00, c01, c02, c03, c10, c11, c12, c13, c20, c21, c22, c23;
            int32_t c30, c31, c32, c33, c40, c41, c42, c43;
            TD_MM54_0(); pa++; pw++;
            TD_MM_K(TD_MM54);
            TD_RQ_COL5(0, c00, c10, c20, c30, c40); TD_RQ_COL5(1, c01, c11, c21, c31, c41);
            TD_RQ_COL5(2, c02, c12, c22, c32, c42); TD_RQ_COL5(3, c03, c13, c23, c33, c43);
        }
        if (M4 - R5 == 4) {
            int32_t c00, c01, c02, c03, c10, c11, c12, c13, c20, c21, c22, c23, c30, c31, c32, c33;
            const int8_t *pa = a + m * K, *pw = w + n * K;
            TD_MM44_0(); pa++; pw++;
            TD_MM_K(TD_MM44);
            int8_t *py = y + m * N + n;
            TD_RQ_COL(0, c00, c10, c20, c30); TD_RQ_COL(1, c01, c11, c21, c31);
            TD_RQ_COL(2, c02, c12, c22, c32); TD_RQ_COL(3, c03, c13, c23, c33);
            m += 4;
        }
        for (; m < M4; m++) td_mm_row4(a + m * K, w + n * K, qn, y + m * N + n, K, lo, hi);
    }
    TD_PAR_FOR2(mr, M - M4, nb, N / 4) {  /* remaining rows (e.g. a matrix-vector Gemm): 1 x 4 */
        const int m = M4 + mr, n = nb * 4;
        td_mm_row4(a + m * K, w + n * K, q + n, y + m * N + n, K, lo, hi);
    }
    td_par_sync();
}
#endif
