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
    for (int o = 0; o < outer; o++)                                                           \
        for (int c = 0; c < ch; c++)                                                          \
            for (int i = 0; i < inner; i++) {                                                 \
                int idx = (o * ch + c) * inner + i;                                           \
                float q = x[idx] / s[c];                                                      \
                /* NaN → the lowest value, as onnxruntime (and no UB in the int conversion) */ \
                int64_t v = q == q ? (int64_t)td_round_even(q) + zp[c] : lo;                 \
                y[idx] = (T)(v < lo ? lo : (v > hi ? hi : v));                                \
            }                                                                                 \
}

#define TD_DEFINE_DEQUANTIZE(SUFFIX, T)                                                        \
static inline void td_dequantize_##SUFFIX##_f32(const T *x, float *y, const float *s,         \
                                                const int32_t *zp, int outer, int ch, int inner) \
{                                                                                             \
    for (int o = 0; o < outer; o++)                                                           \
        for (int c = 0; c < ch; c++)                                                          \
            for (int i = 0; i < inner; i++) {                                                 \
                int idx = (o * ch + c) * inner + i;                                           \
                y[idx] = (float)((int64_t)x[idx] - zp[c]) * s[c];                             \
            }                                                                                 \
}

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
