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
#endif
