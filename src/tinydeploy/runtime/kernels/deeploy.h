/* Deeploy's integer dialect (ops/deeploy*.py, docs/deeploy_dialect.md), with the arithmetic of
 * Deeploy's C kernels. Float32 tensors hold integers (Deeploy's files): read as int32 the way C's
 * cast does, saturated (NaN -> 0) where the cast would be undefined. Signed int32 overflow, which
 * Deeploy's kernels leave to the compiler, wraps here (unsigned arithmetic). */
#ifndef TD_DEEPLOY_H
#define TD_DEEPLOY_H
#include "td_common.h"

static inline int32_t td_dpy_f2i(float v)
{
    if (!(v == v)) return 0;
    if (v >= 2147483648.0f) return INT32_MAX;
    if (v <= -2147483648.0f) return INT32_MIN;
    return (int32_t)v;
}
#define TD_DPY_LD_float(v) td_dpy_f2i(v)
#define TD_DPY_LD_int(v) ((int32_t)(v))
#define TD_DPY_WRAP(v) ((int32_t)(uint32_t)(v))

/* Every kernel reads element (or row) k before writing it: in place when the output is no wider. */

/* RequantShift: y = clamp((x*mul + add + 2^(s-1)) >> s, lo, hi) in int32; mul/add index (i / inner) % C */
#define TD_RQS_DEF(NAME, TI, TO, LD)                                                                   \
    static inline void NAME(const TI *x, TO *y, int32_t n, int32_t C, int32_t inner, const int32_t *mul,  \
                            const int32_t *add, int32_t s, int32_t lo, int32_t hi)                     \
    {                                                                                                  \
        for (int32_t i = 0; i < n; i++) {                                                              \
            int32_t c = (i / inner) % C;                                                               \
            uint32_t v = (uint32_t)LD(x[i]) * (uint32_t)mul[c] + (uint32_t)add[c] + ((1u << s) >> 1); \
            y[i] = (TO)td_clamp(TD_DPY_WRAP(v) >> s, lo, hi);                                          \
        }                                                                                              \
    }

/* iHardswish: y = x * (clamp(x + three, 0, six) * one_over_six), int32 */
#define TD_IHSWISH_DEF(NAME, TI, TO, LD)                                                               \
    static inline void NAME(const TI *x, TO *y, int32_t n, int32_t one_over_six, int32_t three, int32_t six) \
    {                                                                                                  \
        for (int32_t i = 0; i < n; i++) {                                                              \
            int32_t v = LD(x[i]);                                                                      \
            uint32_t t = (uint32_t)td_clamp(TD_DPY_WRAP((uint32_t)v + (uint32_t)three), 0, six) * (uint32_t)one_over_six; \
            y[i] = (TO)TD_DPY_WRAP((uint32_t)v * t);                                                   \
        }                                                                                              \
    }

/* TrueIntegerDiv: y = x * c (int32), c = floor(Delta*eta / (y*eta + eps)) */
#define TD_MULC_DEF(NAME, TI, TO, LD)                                                                  \
    static inline void NAME(const TI *x, TO *y, int32_t n, int32_t c)                                  \
    {                                                                                                  \
        for (int32_t i = 0; i < n; i++) y[i] = (TO)TD_DPY_WRAP((uint32_t)LD(x[i]) * (uint32_t)c);     \
    }

/* iSoftmax (Softmax_s8_s8): per row t = x - max, z = clamp((int8)(-t / log2), 0, 31), p = t + z*log2,
 * e = (uint32)((a*(p+b)^2 + c) >> z), y = (uint32)(e*(n-1)) / sum e. e: L words of scratch. */
#define TD_ISOFTMAX_DEF(NAME, TI, TO, LD)                                                              \
    static inline void NAME(const TI *x, TO *y, uint32_t *e, int32_t rows, int32_t L, int32_t a, int32_t b, \
                            int64_t c, int32_t log2, int32_t n)                                        \
    {                                                                                                  \
        for (int32_t r = 0; r < rows; r++) {                                                           \
            const TI *xr = x + (size_t)r * L;                                                          \
            TO *yr = y + (size_t)r * L;                                                                \
            int32_t mx = LD(xr[0]);                                                                    \
            uint32_t s = 0;                                                                            \
            for (int32_t j = 1; j < L; j++) if (LD(xr[j]) > mx) mx = LD(xr[j]);                        \
            for (int32_t j = 0; j < L; j++) {                                                          \
                int64_t t = (int64_t)LD(xr[j]) - mx, q = -t / log2;                                    \
                int32_t z = (int32_t)(((q + 128) & 255) - 128);                                        \
                z = td_clamp(z, 0, 31);                                                                \
                int64_t p = t + (int64_t)z * log2 + b;                                                 \
                e[j] = (uint32_t)((uint64_t)(a * p * p + c) >> z);                                     \
                s += e[j];                                                                             \
            }                                                                                          \
            for (int32_t j = 0; j < L; j++) yr[j] = (TO)(s ? (e[j] * (uint32_t)(n - 1)) / s : 0u);     \
        }                                                                                              \
    }

/* iRMSNorm: per row std = isqrt(sum x^2 / L + 1), y = clamp(((x*w) / std) >> s, lo, hi), int32 */
static inline int32_t td_dpy_isqrt(int32_t v)
{
    uint32_t r = 0;
    for (uint32_t bit = 1u << 15; bit; bit >>= 1)
        if ((r | bit) * (r | bit) <= (uint32_t)v) r |= bit;
    return (int32_t)r;
}
#define TD_IRMSNORM_DEF(NAME, TI, TO, LD)                                                              \
    static inline void NAME(const TI *x, TO *y, const int32_t *w, int32_t rows, int32_t L, int32_t s,  \
                            int32_t lo, int32_t hi)                                                    \
    {                                                                                                  \
        for (int32_t r = 0; r < rows; r++) {                                                           \
            const TI *xr = x + (size_t)r * L;                                                          \
            TO *yr = y + (size_t)r * L;                                                                \
            uint32_t ss = 0;                                                                           \
            for (int32_t j = 0; j < L; j++) ss += (uint32_t)LD(xr[j]) * (uint32_t)LD(xr[j]);           \
            int32_t m = TD_DPY_WRAP(ss) / L + 1, sd = m > 0 ? td_dpy_isqrt(m) : 0;                     \
            if (sd < 1) sd = 1;                                                                        \
            for (int32_t j = 0; j < L; j++)                                                            \
                yr[j] = (TO)td_clamp((TD_DPY_WRAP((uint32_t)LD(xr[j]) * (uint32_t)w[j]) / sd) >> s, lo, hi); \
        }                                                                                              \
    }
/* one definition per (input, output) type pair: Deeploy's files use float32 and int32 containers */
#define TD_DPY_TYPES(DEF, NAME, SI, TI, LD)                                                            \
    DEF(NAME##_##SI##_f32, TI, float, LD)                                                              \
    DEF(NAME##_##SI##_s8, TI, int8_t, LD)                                                              \
    DEF(NAME##_##SI##_u8, TI, uint8_t, LD)                                                             \
    DEF(NAME##_##SI##_s16, TI, int16_t, LD)                                                            \
    DEF(NAME##_##SI##_u16, TI, uint16_t, LD)                                                           \
    DEF(NAME##_##SI##_s32, TI, int32_t, LD)
#define TD_DPY_ALL(DEF, NAME)                                                                          \
    TD_DPY_TYPES(DEF, NAME, f32, float, TD_DPY_LD_float)                                               \
    TD_DPY_TYPES(DEF, NAME, s8, int8_t, TD_DPY_LD_int)                                                 \
    TD_DPY_TYPES(DEF, NAME, u8, uint8_t, TD_DPY_LD_int)                                                \
    TD_DPY_TYPES(DEF, NAME, s16, int16_t, TD_DPY_LD_int)                                               \
    TD_DPY_TYPES(DEF, NAME, u16, uint16_t, TD_DPY_LD_int)                                              \
    TD_DPY_TYPES(DEF, NAME, s32, int32_t, TD_DPY_LD_int)
TD_DPY_ALL(TD_RQS_DEF, td_rqs)
TD_DPY_ALL(TD_IHSWISH_DEF, td_ihswish)
TD_DPY_ALL(TD_MULC_DEF, td_mulc)
TD_DPY_ALL(TD_ISOFTMAX_DEF, td_isoftmax)
TD_DPY_ALL(TD_IRMSNORM_DEF, td_irmsnorm)
#endif
