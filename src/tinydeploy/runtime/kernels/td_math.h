/* The small libm subset float kernels use, behind macros so every target links:
 * hosted builds take <math.h>; freestanding builds (-ffreestanding, bare metal) declare the same
 * functions, which runtime/baremetal/libm.c provides: expf logf tanhf erff sinf cosf.
 * Rounding, floor, ceil and fabs are done here without libm: they are exact bit operations. */
#ifndef TD_KMATH_H
#define TD_KMATH_H
#include <stdint.h>
#if defined(__STDC_HOSTED__) && __STDC_HOSTED__
#include <math.h>
#else
float expf(float);
float logf(float);
float tanhf(float);
float erff(float);
float sinf(float);
float cosf(float);
#ifndef INFINITY
#define INFINITY (__builtin_inff())
#endif
#ifndef NAN
#define NAN (__builtin_nanf(""))
#endif
#endif

#define TD_EXPF(x) expf(x)
#define TD_LOGF(x) logf(x)
#define TD_TANHF(x) tanhf(x)
#define TD_ERFF(x) erff(x)
#define TD_SINF(x) sinf(x)
#define TD_COSF(x) cosf(x)

static inline float td_fabsf(float v) { return v < 0.0f ? -v : v; }

/* Round half to even (ONNX Round, QuantizeLinear): adding and removing 2^23 leaves the
 * nearest integer under the default IEEE rounding mode. |v| >= 2^23, inf and NaN are returned
 * unchanged (already integral or not a number). Needs FLT_EVAL_METHOD 0, i.e. no x87. */
static inline float td_rintf(float v)
{
    const float big = 8388608.0f;
    if (!(td_fabsf(v) < big)) return v;
    volatile float t = v < 0.0f ? v - big : v + big;  /* volatile: keep the rounding step */
    return v < 0.0f ? t + big : t - big;
}

static inline float td_floorf(float v)
{
    float r = td_rintf(v);
    return r > v ? r - 1.0f : r;
}

static inline float td_ceilf(float v)
{
    float r = td_rintf(v);
    return r < v ? r + 1.0f : r;
}

static inline int td_isnanf(float v) { return v != v; }
static inline int td_isinff(float v) { return v == INFINITY || v == -INFINITY; }
#endif
