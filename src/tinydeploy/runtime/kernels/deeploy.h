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

/* RequantShift: y = clamp((x*mul + add + 2^(s-1)) >> s, lo, hi) in int32; mul/add index (i / inner) % C.
 * In place: a wider output runs from the end, so no input element is overwritten before it is read. */
#define TD_RQS_DEF(NAME, TI, TO, LD)                                                                   \
    static inline void NAME(const TI *x, TO *y, int32_t n, int32_t C, int32_t inner, const int32_t *mul,  \
                            const int32_t *add, int32_t s, int32_t lo, int32_t hi)                     \
    {                                                                                                  \
        int back = sizeof(TO) > sizeof(TI);                                                            \
        for (int32_t k = 0; k < n; k++) {                                                              \
            int32_t i = back ? n - 1 - k : k, c = (i / inner) % C;                                     \
            uint32_t v = (uint32_t)LD(x[i]) * (uint32_t)mul[c] + (uint32_t)add[c] + ((1u << s) >> 1); \
            y[i] = (TO)td_clamp(TD_DPY_WRAP(v) >> s, lo, hi);                                          \
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
#endif
