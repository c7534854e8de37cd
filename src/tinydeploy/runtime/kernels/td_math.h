/* The small libm subset float kernels use, behind macros so every target links:
 * hosted builds take <math.h>; freestanding builds (-ffreestanding, bare metal) declare the same
 * functions, which runtime/baremetal/libm.c provides: expf logf tanhf erff sinf cosf sqrtf.
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

/* inverse trigonometric / hyperbolic functions: <math.h> when hosted, else built here from
 * atan (below), sqrtf, logf; TD_PORTABLE_MATH forces the built-in versions (tests use it) */
#if defined(__STDC_HOSTED__) && __STDC_HOSTED__ && !defined(TD_PORTABLE_MATH)
#define TD_ATANF(x) atanf(x)
#define TD_ASINF(x) asinf(x)
#define TD_ACOSF(x) acosf(x)
#define TD_ASINHF(x) asinhf(x)
#define TD_ACOSHF(x) acoshf(x)
#define TD_ATANHF(x) atanhf(x)
#else
float sqrtf(float);
/* atan: |x| > 1 via pi/2 - atan(1/x); |x| > tan(pi/12) via pi/6 + atan((x·sqrt3 - 1)/(sqrt3 + x));
 * then the odd Taylor series to x^9 (truncation < 5e-8 for |x| <= 0.268) */
static inline float td_atanf(float x)
{
    if (x != x) return x;
    const float ax = x < 0.0f ? -x : x;
    float t = ax > 1.0f ? 1.0f / ax : ax, off = 0.0f;
    if (t > 0.26794919f) {
        t = (t * 1.7320508f - 1.0f) / (1.7320508f + t);
        off = 0.52359878f;
    }
    const float t2 = t * t;
    float r = off + t * (1.0f - t2 * (1.0f / 3 - t2 * (1.0f / 5 - t2 * (1.0f / 7 - t2 * (1.0f / 9)))));
    if (ax > 1.0f) r = 1.57079633f - r;
    return x < 0.0f ? -r : r;
}
static inline float td_asinf(float x)
{
    if (x == 1.0f || x == -1.0f) return x * 1.57079633f;
    return (x > 1.0f || x < -1.0f) ? NAN : td_atanf(x / sqrtf(1.0f - x * x));
}
static inline float td_acosf(float x)   /* 2·atan(sqrt((1-x)/(1+x))): no cancellation near 1 */
{
    if (x == -1.0f) return 3.14159265f;
    return (x > 1.0f || x < -1.0f) ? NAN : 2.0f * td_atanf(sqrtf((1.0f - x) / (1.0f + x)));
}
static inline float td_asinhf(float x)
{
    const float ax = x < 0.0f ? -x : x, r = logf(ax + sqrtf(ax * ax + 1.0f));
    return x < 0.0f ? -r : r;
}
static inline float td_acoshf(float x) { return logf(x + sqrtf(x * x - 1.0f)); }
static inline float td_atanhf(float x) { return 0.5f * logf((1.0f + x) / (1.0f - x)); }
#define TD_ATANF(x) td_atanf(x)
#define TD_ASINF(x) td_asinf(x)
#define TD_ACOSF(x) td_acosf(x)
#define TD_ASINHF(x) td_asinhf(x)
#define TD_ACOSHF(x) td_acoshf(x)
#define TD_ATANHF(x) td_atanhf(x)
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
