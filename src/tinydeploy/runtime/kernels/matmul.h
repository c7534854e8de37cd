/* MatMul / Gemm / MatMulInteger, reference form.
 *
 * One strided loop nest serves every layout: element (m, k) of A is a[m*sam + k*sak], element
 * (k, n) of B is b[k*sbk + n*sbn], batch i adds i*sab / i*sbb (0 = broadcast), and the output is
 * contiguous [B][M][N]. Every call site passes literals, the kernels are static inline, so the C
 * compiler specialises each layer (constant weights are stored [N][K] by the compiler: sbk = 1,
 * both operands of the inner product walk memory contiguously). */
#ifndef TD_MATMUL_H
#define TD_MATMUL_H
#include "td_common.h"
#include "td_fast_matmul.h"

#define TD_MATMUL_LOOPS(ACC_T, LOAD_A, LOAD_B, INIT, STORE)                                   \
    TD_PAR_FOR2(bm_, B * M, n, N) {  /* (row, column) pairs across the cores */                \
        const int bi = bm_ / M, m = bm_ % M;                                                   \
        const ptrdiff_t ao = (ptrdiff_t)bi * sab, bo = (ptrdiff_t)bi * sbb;                    \
        ACC_T acc = INIT;                                                                      \
        for (int k = 0; k < K; k++)                                                            \
            acc += LOAD_A(ao + (ptrdiff_t)m * sam + (ptrdiff_t)k * sak) *                      \
                   LOAD_B(bo + (ptrdiff_t)k * sbk + (ptrdiff_t)n * sbn);                       \
        y[(ptrdiff_t)bm_ * N + n] = STORE;                                                     \
    }                                                                                          \
    td_par_sync();

/* y = clamp(alpha * A·B + beta * c[m*scm + n*scn], lo, hi); c may be NULL (Gemm's C, MatMul: none) */
static inline void td_matmul_f32(const float *a, const float *b, const float *c, float *y,
                                 int B, int M, int N, int K, int sab, int sam, int sak,
                                 int sbb, int sbk, int sbn, int scm, int scn,
                                 float alpha, float beta, float lo, float hi)
{
#define TD_LA(i) a[i]
#define TD_LB(i) b[i]
    TD_MATMUL_LOOPS(float, TD_LA, TD_LB, 0.0f,
                    td_clampf(alpha * acc + (c ? beta * c[m * scm + n * scn] : 0.0f), lo, hi))
#undef TD_LA
#undef TD_LB
}

/* acc = bias[n] + sum_k (a - a_zp)(b - b_zp);  y = clamp(requant(acc, m[n*pc], s[n*pc]) + y_zp, lo, hi)
 * pc = 1 for per-column (per-output-channel) multipliers, 0 for one multiplier. For constant B the
 * compiler folds a_zp into bias (a_zp = 0 here), so the inner loop is a plain int8 dot product. */
static inline void td_matmul_s8(const int8_t *a, const int8_t *b, const int32_t *bias, int8_t *y,
                                int B, int M, int N, int K, int sab, int sam, int sak,
                                int sbb, int sbk, int sbn, int32_t a_zp, int32_t b_zp,
                                const int32_t *mult, const int8_t *shift, int pc,
                                int32_t y_zp, int32_t lo, int32_t hi)
{
#define TD_LA(i) ((int32_t)a[i] - a_zp)
#define TD_LB(i) ((int32_t)b[i] - b_zp)
    TD_MATMUL_LOOPS(int32_t, TD_LA, TD_LB, (bias ? bias[n] : 0),
                    (int8_t)td_clamp(td_requant(acc, mult[n * pc], shift[n * pc]) + y_zp, lo, hi))
#undef TD_LA
#undef TD_LB
}

/* A global average pool feeding a linear layer (torch's QAT classifier head), in integers:
   sums[c] = sum_i (x[c*HW + i] - x_zp), y[n] = clamp(requant(bias[n] + sum_c w[n*C + c] sums[c],
   m[n], s[n]) + y_zp, lo, hi); the pool's 1/HW is in the multiplier: one rounding. sums: C int32. */
static inline void td_pool_matmul_s8(const int8_t *x, const int8_t *w, const int32_t *bias, int8_t *y,
                                     int32_t *sums, int C, int HW, int N, int32_t x_zp,
                                     const int32_t *mult, const int8_t *shift, int pc,
                                     int32_t y_zp, int32_t lo, int32_t hi)
{
    for (int c = 0; c < C; c++) {
        int32_t acc = -x_zp * HW;
        for (int i = 0; i < HW; i++) acc += x[c * HW + i];
        sums[c] = acc;
    }
    for (int n = 0; n < N; n++) {
        int32_t acc = bias ? bias[n] : 0;
        for (int c = 0; c < C; c++) acc += (int32_t)w[n * C + c] * sums[c];
        y[n] = (int8_t)td_clamp(td_requant(acc, mult[n * pc], shift[n * pc]) + y_zp, lo, hi);
    }
}

/* MatMulInteger: int32 y = sum_k (a - a_zp)(b - b_zp) for int8 / uint8 operands. */
#define TD_DEFINE_MATMUL_INT(SUFFIX, TA, TB)                                                   \
static inline void td_matmul_int_##SUFFIX(const TA *a, const TB *b, int32_t *y,               \
                                          int B, int M, int N, int K, int sab, int sam,       \
                                          int sak, int sbb, int sbk, int sbn,                 \
                                          int32_t a_zp, int32_t b_zp)                         \
{                                                                                             \
    TD_MATMUL_LOOPS(int32_t, TD_LA_INT, TD_LB_INT, 0, acc)                                   \
}
#define TD_LA_INT(i) ((int32_t)a[i] - a_zp)
#define TD_LB_INT(i) ((int32_t)b[i] - b_zp)
TD_DEFINE_MATMUL_INT(s8s8, int8_t, int8_t)
TD_DEFINE_MATMUL_INT(u8s8, uint8_t, int8_t)
TD_DEFINE_MATMUL_INT(s8u8, int8_t, uint8_t)
TD_DEFINE_MATMUL_INT(u8u8, uint8_t, uint8_t)
#undef TD_LA_INT
#undef TD_LB_INT

/* MatMul of int32 / int64 / uint32 / uint64 tensors (ONNX MatMul's integer types): products and
 * sums wrap modulo 2^bits, as numpy's and onnxruntime's do; they are formed in the unsigned type
 * of the same width, where wrapping is defined C. */
#define TD_DEFINE_MATMUL_WRAP(SUFFIX, T, U, LOAD)                                              \
static inline void td_matmul_##SUFFIX(const T *a, const T *b, T *y, int B, int M, int N, int K,  \
                                      int sab, int sam, int sak, int sbb, int sbk, int sbn)    \
{                                                                                             \
    TD_MATMUL_LOOPS(U, LOAD##_A, LOAD##_B, 0, (T)acc)                                          \
}
#define TD_LU32_A(i) ((uint32_t)a[i])
#define TD_LU32_B(i) ((uint32_t)b[i])
#define TD_LU64_A(i) ((uint64_t)a[i])
#define TD_LU64_B(i) ((uint64_t)b[i])
TD_DEFINE_MATMUL_WRAP(s32, int32_t, uint32_t, TD_LU32)
TD_DEFINE_MATMUL_WRAP(u32, uint32_t, uint32_t, TD_LU32)
TD_DEFINE_MATMUL_WRAP(s64, int64_t, uint64_t, TD_LU64)
TD_DEFINE_MATMUL_WRAP(u64, uint64_t, uint64_t, TD_LU64)
#undef TD_LU32_A
#undef TD_LU32_B
#undef TD_LU64_A
#undef TD_LU64_B
#endif
