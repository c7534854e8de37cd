/* Float32 elementwise activations: y[i] = f(x[i]; a, b). In place is allowed (y == x).
 * Formulas follow the ONNX operator definitions; transcendental parts go through td_math.h. */
#ifndef TD_ACTIVATION_H
#define TD_ACTIVATION_H
#include "td_nd.h"
#include "td_math.h"

#define TD_UNARY_F32(NAME, EXPR)                                                               \
static inline void td_##NAME##_f32(const float *x, float *y, int32_t n, float a, float b)      \
{                                                                                              \
    (void)a; (void)b;                                                                          \
    for (int32_t i = 0; i < n; i++) {                                                          \
        const float v = x[i];                                                                  \
        y[i] = (EXPR);                                                                         \
    }                                                                                          \
}

/* log(1 + e^v) without overflow: above 15, e^-v is below float resolution of the sum */
static inline float td_softplusf(float v)
{
    return v > 15.0f ? v + TD_EXPF(-v) : TD_LOGF(1.0f + TD_EXPF(v));
}

static inline float td_sigmoidf(float v) { return 1.0f / (1.0f + TD_EXPF(-v)); }

TD_UNARY_F32(relu, v < 0.0f ? 0.0f : v)
TD_UNARY_F32(leaky_relu, v < 0.0f ? a * v : v)
TD_UNARY_F32(thresholded_relu, v > a ? v : 0.0f)
TD_UNARY_F32(sigmoid, td_sigmoidf(v))
TD_UNARY_F32(hard_sigmoid, td_clampf(a * v + b, 0.0f, 1.0f))
TD_UNARY_F32(hard_swish, v * td_clampf(v * (1.0f / 6.0f) + 0.5f, 0.0f, 1.0f))
TD_UNARY_F32(swish, v * td_sigmoidf(a * v))
TD_UNARY_F32(tanh, TD_TANHF(v))
TD_UNARY_F32(erf, TD_ERFF(v))
TD_UNARY_F32(gelu, 0.5f * v * (1.0f + TD_ERFF(v * 0.70710678118654752f)))
TD_UNARY_F32(gelu_tanh, 0.5f * v * (1.0f + TD_TANHF(0.79788456080286536f * (v + 0.044715f * v * v * v))))
TD_UNARY_F32(exp, TD_EXPF(v))
TD_UNARY_F32(log, TD_LOGF(v))
TD_UNARY_F32(abs, td_fabsf(v))
TD_UNARY_F32(neg, -v)
TD_UNARY_F32(floor, td_floorf(v))
TD_UNARY_F32(ceil, td_ceilf(v))
TD_UNARY_F32(round, td_rintf(v))
TD_UNARY_F32(reciprocal, 1.0f / v)
TD_UNARY_F32(softplus, td_softplusf(v))
TD_UNARY_F32(softsign, v / (1.0f + td_fabsf(v)))
TD_UNARY_F32(elu, v < 0.0f ? a * (TD_EXPF(v) - 1.0f) : v)
TD_UNARY_F32(selu, v <= 0.0f ? b * (a * TD_EXPF(v) - a) : b * v)
TD_UNARY_F32(celu, (v > 0.0f ? v : 0.0f) + (v < 0.0f ? a * (TD_EXPF(v / a) - 1.0f) : 0.0f))
TD_UNARY_F32(mish, v * TD_TANHF(td_softplusf(v)))
TD_UNARY_F32(sin, TD_SINF(v))
TD_UNARY_F32(cos, TD_COSF(v))
TD_UNARY_F32(tan, TD_SINF(v) / TD_COSF(v))
TD_UNARY_F32(sinh, 0.5f * (TD_EXPF(v) - TD_EXPF(-v)))
TD_UNARY_F32(cosh, 0.5f * (TD_EXPF(v) + TD_EXPF(-v)))
TD_UNARY_F32(asin, TD_ASINF(v))
TD_UNARY_F32(acos, TD_ACOSF(v))
TD_UNARY_F32(atan, TD_ATANF(v))
TD_UNARY_F32(asinh, TD_ASINHF(v))
TD_UNARY_F32(acosh, TD_ACOSHF(v))
TD_UNARY_F32(atanh, TD_ATANHF(v))
TD_UNARY_F32(sign, v > 0.0f ? 1.0f : (v < 0.0f ? -1.0f : v))
TD_UNARY_F32(shrink, v < -a ? v + b : (v > a ? v - b : 0.0f))

/* IsNaN / IsInf: bool output (uint8 0/1); a, b select +inf / -inf detection */
static inline void td_isnan_f32(const float *x, uint8_t *y, int32_t n)
{
    for (int32_t i = 0; i < n; i++) y[i] = (uint8_t)td_isnanf(x[i]);
}

static inline void td_isinf_f32(const float *x, uint8_t *y, int32_t n, int pos, int neg)
{
    for (int32_t i = 0; i < n; i++) y[i] = (uint8_t)((pos && x[i] == INFINITY) || (neg && x[i] == -INFINITY));
}

/* PRelu: slope broadcast against x */
TD_DEFINE_BINARY(td_prelu_f32, float, float, float, va < 0.0f ? vb * va : va)

/* Clip for every numeric type; lo > hi gives hi, as numpy.clip */
#define TD_DEFINE_CLIP(SUFFIX, T)                                                              \
static inline void td_clip_##SUFFIX(const T *x, T *y, int32_t n, T lo, T hi)                   \
{                                                                                              \
    for (int32_t i = 0; i < n; i++) {                                                          \
        T v = x[i] < lo ? lo : x[i];                                                           \
        y[i] = v > hi ? hi : v;                                                                \
    }                                                                                          \
}
TD_DEFINE_CLIP(f32, float)
TD_DEFINE_CLIP(f64, double)
TD_DEFINE_CLIP(s8, int8_t)
TD_DEFINE_CLIP(u8, uint8_t)
TD_DEFINE_CLIP(s16, int16_t)
TD_DEFINE_CLIP(u16, uint16_t)
TD_DEFINE_CLIP(s32, int32_t)
TD_DEFINE_CLIP(u32, uint32_t)
TD_DEFINE_CLIP(s64, int64_t)
TD_DEFINE_CLIP(u64, uint64_t)
#endif
