/* Shared integer arithmetic of every kernel; mirrors ops/quant.py bit for bit. */
#ifndef TD_COMMON_H
#define TD_COMMON_H
#include <stdint.h>
#include <stddef.h>

/* requant(acc, M, S) = (acc * M + 2^(S-1)) >> S: one rounding, half up. S in [1, 62]. */
static inline int32_t td_requant(int32_t acc, int32_t m, int32_t s)
{
    int64_t p = (int64_t)acc * (int64_t)m;
    return (int32_t)((p + ((int64_t)1 << (s - 1))) >> s);
}

/* the same formula on a 64-bit value (|acc * m| < 2^63), as run-time scales use it (td_dynq.h);
 * S <= 0 shifts left */
static inline int64_t td_requant64(int64_t acc, int32_t m, int32_t s)
{
    int64_t p = acc * m;
    return s > 0 ? (p + ((int64_t)1 << (s - 1))) >> s : (int64_t)((uint64_t)p << (-s));
}

static inline int32_t td_clamp(int32_t v, int32_t lo, int32_t hi)
{
    return v < lo ? lo : (v > hi ? hi : v);
}

static inline float td_clampf(float v, float lo, float hi)
{
    return v < lo ? lo : (v > hi ? hi : v);
}

/* x86-64 hosts: SSE2 kernels (SSE2 is part of the ABI) and 64-bit arithmetic where 32-bit cores
 * split words; the same values to the bit. TD_NO_SIMD builds the portable C that rv32 runs. */
#if defined(__x86_64__) && defined(__SSE2__) && !defined(TD_NO_SIMD)
#define TD_X86 1
#endif

/* Work shared by the cores of a cluster (built with TD_CLUSTER, targets/cluster): a parallel kernel
 * does items [td_par_lo(n), td_par_hi(n)) of its n and ends with td_par_sync(), so the next call
 * sees all of its output. Elsewhere one core does every item and nothing waits. A kernel that splits
 * one row (a decode step) combines per-core partial sums and maxima with td_par_reduce2; td_par_me()
 * is this core's index among td_par_cores(). */
#ifdef TD_CLUSTER
#include "td_par.h"
#else
#define td_par_lo(n) 0
#define td_par_hi(n) (n)
#define td_par_sync() ((void)0)
#define td_par_me() 0
#define td_par_cores() 1
#define td_par_reduce2(sum, max) ((void)(sum), (void)(max))
#endif

/* for (i, j) in [0, NI) x [0, NJ), row-major: this core's share of the NI * NJ pairs (one core:
 * two plain nested loops; `continue` goes to the next pair either way) */
#ifdef TD_CLUSTER
#define TD_PAR_FOR2(i, NI, j, NJ)                                                              \
    for (int i##_q_ = td_par_lo((NI) * (NJ)), i##_e_ = td_par_hi((NI) * (NJ)),                 \
             i = i##_q_ / (NJ), j = i##_q_ % (NJ);                                              \
         i##_q_ < i##_e_; i##_q_++, j = (j + 1 == (NJ)) ? (i++, 0) : j + 1)
#else
#define TD_PAR_FOR2(i, NI, j, NJ) for (int i = 0; i < (NI); i++) for (int j = 0; j < (NJ); j++)
#endif
/* for (i) in [0, N): this core's share */
#define TD_PAR_FOR(i, N) for (int i = td_par_lo(N), i##_e_ = td_par_hi(N); i < i##_e_; i++)
#endif
