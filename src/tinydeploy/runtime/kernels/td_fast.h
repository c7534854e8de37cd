/* Shared parts of the register-blocked int8 kernels for plain RV32IMC (no SIMD, no MAC instruction).
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
/* acc = bias + x * b: the first step of a block starts from the bias without a move. */
#if defined(__riscv) && !defined(TD_NO_ASM)
#define TD_MAC0(acc, bias, x, b) do { int32_t t_;                                              \
        __asm__ volatile("mul %1, %2, %3\n\tadd %0, %4, %1" : "=r"(acc), "=&r"(t_) : "r"(x), "r"(b), "r"(bias)); } while (0)
#else
#define TD_MAC0(acc, bias, x, b) ((acc) = (bias) + (x) * (b))
#endif
#endif
