/* QuantizeLinear / DequantizeLinear (ONNX semantics: round half to even, saturate). */
#ifndef TD_QUANT_H
#define TD_QUANT_H
#include "td_common.h"

/* round half to even without libm; v is clamped to a range where the int32 conversion is exact */
static inline int32_t td_round_even(float v)
{
    if (v > 2.0e9f) v = 2.0e9f;
    if (v < -2.0e9f) v = -2.0e9f;
    int32_t i = (int32_t)v;            /* truncates toward zero */
    float frac = v - (float)i;
    if (frac > 0.5f || (frac == 0.5f && (i & 1))) i++;
    else if (frac < -0.5f || (frac == -0.5f && (i & 1))) i--;
    return i;
}

#define TD_DEFINE_QUANTIZE(SUFFIX, T)                                                          \
static inline void td_quantize_f32_##SUFFIX(const float *x, T *y, const float *s,             \
                                            const int32_t *zp, int outer, int ch, int inner,  \
                                            int32_t lo, int32_t hi)                            \
{                                                                                             \
    TD_PAR_FOR2(oc, outer * ch, i, inner) {  /* across the cores */                           \
                const int c = oc % ch, idx = oc * inner + i;                                  \
                float q = x[idx] / s[c];                                                      \
                /* NaN → the lowest value, as onnxruntime (and no UB in the int conversion) */ \
                /* |q| >= 2^23 is a whole float already; past int32 it only needs to saturate */ \
                int64_t v = q != q ? lo : q >= 8388608.0f || q <= -8388608.0f                  \
                    ? (int64_t)(q > 4.0e9f ? 4.0e9f : q < -4.0e9f ? -4.0e9f : q) + zp[c]        \
                    : (int64_t)td_round_even(q) + zp[c];                                      \
                y[idx] = (T)(v < lo ? lo : (v > hi ? hi : v));                                \
            }                                                                                 \
    td_par_sync();                                                                            \
}

#define TD_DEFINE_DEQUANTIZE(SUFFIX, T)                                                        \
static inline void td_dequantize_##SUFFIX##_f32(const T *x, float *y, const float *s,         \
                                                const int32_t *zp, int outer, int ch, int inner) \
{                                                                                             \
    TD_PAR_FOR2(oc, outer * ch, i, inner) {  /* across the cores */                           \
                const int c = oc % ch, idx = oc * inner + i;                                  \
                y[idx] = (float)((int64_t)x[idx] - zp[c]) * s[c];                             \
            }                                                                                 \
    td_par_sync();                                                                            \
}

/* Order key of a float's bits: a < b as floats  <=>  key(a) < key(b) as int32 (-0 just below +0,
   NaNs beyond -inf / +inf). Integer instructions only. */
static inline int32_t td_f32_key(float v)
{
    union { float f; uint32_t u; } c;
    c.f = v;
    return (int32_t)(c.u ^ ((uint32_t)((int32_t)c.u >> 31) >> 1));
}

/* QuantizeLinear to 8 bits, per tensor, without float arithmetic (no FPU, no soft-float calls):
   t[j] (j = 1..255) is the key of the smallest float that quantizes to lo + j or more, found at
   compile time with the golden's own float32 arithmetic, so y is the golden's bit for bit;
   y = lo + #{j : t[j] <= key(x)} by binary search (t[0] is unused). A positive NaN's key lies
   above +inf's and gives lo, as td_quantize_f32 (a negative NaN's lies below -inf's: lo too). */
#define TD_DEFINE_QUANTIZE_TAB(SUFFIX, T)                                                      \
static inline void td_quantize_tab_##SUFFIX(const float *x, T *y, const int32_t *t, int n,     \
                                            int32_t lo)                                        \
{                                                                                             \
    TD_PAR_FOR(i, n) {   /* elements across the cores */                                      \
        int32_t k = td_f32_key(x[i]);                                                         \
        const int32_t *p = t;                                                                 \
        if (k >= p[128]) p += 128;                                                            \
        if (k >= p[64]) p += 64;                                                              \
        if (k >= p[32]) p += 32;                                                              \
        if (k >= p[16]) p += 16;                                                              \
        if (k >= p[8]) p += 8;                                                                \
        if (k >= p[4]) p += 4;                                                                \
        if (k >= p[2]) p += 2;                                                                \
        if (k >= p[1]) p += 1;                                                                \
        y[i] = (T)(k > 0x7f800000 ? lo : lo + (int32_t)(p - t));                              \
    }                                                                                         \
    td_par_sync();                                                                            \
}

/* DequantizeLinear from 8 bits, per tensor: a 256-entry table of the golden's float32 results. */
#define TD_DEFINE_DEQUANTIZE_TAB(SUFFIX, T)                                                    \
static inline void td_dequantize_tab_##SUFFIX(const T *x, float *y, const float *t, int n,     \
                                              int32_t lo)                                      \
{                                                                                             \
    TD_PAR_FOR(i, n) y[i] = t[(int32_t)x[i] - lo];                                            \
    td_par_sync();                                                                            \
}

TD_DEFINE_QUANTIZE_TAB(s8, int8_t)
TD_DEFINE_QUANTIZE_TAB(u8, uint8_t)
TD_DEFINE_DEQUANTIZE_TAB(s8, int8_t)
TD_DEFINE_DEQUANTIZE_TAB(u8, uint8_t)
TD_DEFINE_QUANTIZE(s8, int8_t)
TD_DEFINE_QUANTIZE(u8, uint8_t)
TD_DEFINE_QUANTIZE(s16, int16_t)
TD_DEFINE_QUANTIZE(u16, uint16_t)
TD_DEFINE_QUANTIZE(s32, int32_t)
TD_DEFINE_DEQUANTIZE(s8, int8_t)
TD_DEFINE_DEQUANTIZE(u8, uint8_t)
TD_DEFINE_DEQUANTIZE(s16, int16_t)
TD_DEFINE_DEQUANTIZE(u16, uint16_t)
TD_DEFINE_DEQUANTIZE(s32, int32_t)
#endif
