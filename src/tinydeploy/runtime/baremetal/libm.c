/* Single-precision math for freestanding rv32 builds (there is no libm).
 *
 * Written for the float kernels' needs: softmax (expf), SiLU/sigmoid (expf), GELU (erff or tanhf),
 * norms (sqrtf), perplexity-style logs (logf), ONNX Sin/Cos (sinf, cosf). Works with and without the F extension (without
 * it, the float operations become compiler_rt soft-float calls).
 *
 * Error bounds in units in the last place of the float32 result, against numpy float64, stated
 * with a margin over the worst error measured on 120,000 random points (soft-float and F builds
 * alike; tests/test_target_rv32.py checks them on a fixed 5,400-point grid):
 *   sqrtf   0.5 ulp (correctly rounded): fsqrt.s with F, an exact integer square root without
 *   expf    1.5 ulp for results in the normal range (x in [-87.3, 88.7]); worst seen 1.08
 *   expm1f  2.5 ulp; worst seen 2.11 (just above |x| = 1, where it becomes expf(x) - 1)
 *   logf    1 ulp for x > 0; worst seen 0.89
 *   tanhf   3 ulp; worst seen 2.64
 *   erff    1.5 ulp; worst seen 1.23
 *   sinf, cosf  2 ulp for every finite x (exact reduction, below); worst seen 1.43
 * Special values: NaN in -> NaN out; expf overflows to +inf above 88.72 and flushes to 0 below
 * -103.97; logf(0) = -inf, logf(x < 0) = NaN. No errno (built with -fno-math-errno).
 */
#include <stdint.h>

#include "math.h"

static inline uint32_t bits(float x)
{
    union { float f; uint32_t u; } v = { .f = x };
    return v.u;
}

static inline float from_bits(uint32_t u)
{
    union { uint32_t u; float f; } v = { .u = u };
    return v.f;
}

#define TD_INF INFINITY
#define TD_NAN NAN

/* ln 2 split so that k * LN2_HI is exact for |k| < 256 (LN2_HI has 16 significant bits). */
static const float LN2_HI = 0.693145751953125f;
static const float LN2_LO = 1.42860682e-6f;

float fabsf(float x) { return from_bits(bits(x) & 0x7fffffffu); }

float sqrtf(float x)
{
#ifdef __riscv_flen
    return __builtin_sqrtf(x); /* one fsqrt.s with -fno-math-errno */
#else
    uint32_t ix = bits(x);
    if ((ix & 0x7fffffffu) == 0 || ix == 0x7f800000u || (ix & 0x7fffffffu) > 0x7f800000u)
        return x; /* +-0, +inf, NaN */
    if (ix >> 31)
        return TD_NAN;
    /* x = (m / 2^23) * 2^e with m in [2^23, 2^24) */
    int e;
    uint32_t m;
    if (ix < 0x00800000u) { /* subnormal: normalise */
        m = ix;
        e = -126;
        while (!(m & 0x00800000u)) {
            m <<= 1;
            e--;
        }
    } else {
        m = (ix & 0x007fffffu) | 0x00800000u;
        e = (int)(ix >> 23) - 127;
    }
    if (e & 1) { /* make the exponent even: m in [2^23, 2^25) */
        m <<= 1;
        e--;
    }
    /* sqrt(m / 2^23) = sqrt(m * 2^23) / 2^23, and sqrt(m * 2^23) is in [2^23, 2^24). */
    uint64_t n = (uint64_t)m << 23, r = 0, rem = 0;
    for (int i = 47; i >= 1; i -= 2) { /* bit-by-bit integer square root, 24 result bits */
        rem = (rem << 2) | ((n >> (i - 1)) & 3u);
        uint64_t trial = (r << 2) | 1u;
        r <<= 1;
        if (rem >= trial) {
            rem -= trial;
            r |= 1u;
        }
    }
    /* The exact root lies in (r, r+1); it is never halfway, so round up iff rem > r. */
    if (rem > r)
        r++;
    /* r == 2^24 after rounding carries into the exponent, which the addition does for us. */
    return from_bits((uint32_t)((e / 2 + 127) << 23) + (uint32_t)r - 0x00800000u);
#endif
}

float expf(float x)
{
    if (x != x)
        return x;
    if (x > 88.7228394f)
        return TD_INF;
    if (x < -103.972084f)
        return 0.0f;
    /* x = k ln2 + r, |r| <= ln2/2; e^r by its Taylor series to r^7 (truncation < 1e-8). */
    float kf = x * 1.44269504f;
    int k = (int)(kf + (kf >= 0.0f ? 0.5f : -0.5f));
    float r = (x - (float)k * LN2_HI) - (float)k * LN2_LO;
    float p = 1.0f + r * (1.0f + r * (0.5f + r * (1.0f / 6 + r * (1.0f / 24 + r * (1.0f / 120 +
                   r * (1.0f / 720 + r * (1.0f / 5040)))))));
    if (k > 127) { /* 2^128 is not a float: scale in two steps */
        p *= 2.0f;
        k--;
    }
    if (k < -126) { /* subnormal result: one rounding, in the last multiply */
        p *= from_bits((uint32_t)(k + 100 + 127) << 23);
        return p * from_bits((uint32_t)(127 - 100) << 23);
    }
    return p * from_bits((uint32_t)(k + 127) << 23);
}

float expm1f(float x)
{
    /* Near 0, e^x - 1 cancels: use the series to x^12 for |x| < 1 (truncation < 2e-10). */
    if (fabsf(x) < 1.0f) {
        float q = 1.0f / 479001600;
        static const float c[] = {1.0f / 39916800, 1.0f / 3628800, 1.0f / 362880, 1.0f / 40320,
                                  1.0f / 5040, 1.0f / 720, 1.0f / 120, 1.0f / 24, 1.0f / 6, 0.5f, 1.0f};
        for (unsigned i = 0; i < sizeof c / sizeof c[0]; i++)
            q = q * x + c[i];
        return q * x;
    }
    return expf(x) - 1.0f;
}

float logf(float x)
{
    uint32_t ix = bits(x);
    if (x != x)
        return x;
    if ((ix & 0x7fffffffu) == 0)
        return -TD_INF;
    if (ix >> 31)
        return TD_NAN;
    if (ix == 0x7f800000u)
        return x;
    int e = 0;
    if (ix < 0x00800000u) { /* subnormal */
        ix = bits(x * 8388608.0f);
        e = -23;
    }
    /* x = 2^e * m with m in [sqrt(1/2), sqrt(2)) */
    e += (int)(ix >> 23) - 127;
    ix = (ix & 0x007fffffu) | 0x3f800000u;
    if (ix > 0x3fb504f3u) {
        ix -= 0x00800000u;
        e++;
    }
    float f = from_bits(ix) - 1.0f; /* exact */
    /* log(1+f) = 2 atanh(s) = 2s + s*R(s^2), s = f/(2+f); and 2s = f - s*f, so
     * log(1+f) = f - s*(f - R): the rounding errors land in the small correction term. */
    float s = f / (2.0f + f);
    float z = s * s;
    float R = z * (2.0f / 3 + z * (2.0f / 5 + z * (2.0f / 7 + z * (2.0f / 9))));
    float lm = f - s * (f - R);
    return (float)e * LN2_HI + ((float)e * LN2_LO + lm);
}

float tanhf(float x)
{
    float a = fabsf(x);
    if (a > 9.0f) /* 1 - tanh(9) < half an ulp of 1 */
        return x > 0.0f ? 1.0f : (x < 0.0f ? -1.0f : x);
    if (a != a)
        return x;
    /* tanh a = (e^2a - 1) / (e^2a + 1) = t / (t + 2) with t = expm1(2a): no cancellation. */
    float t = expm1f(2.0f * a);
    float y = t / (t + 2.0f);
    return x < 0.0f ? -y : y;
}

float erff(float x)
{
    float a = fabsf(x);
    float y;
    if (a != a)
        return x;
    if (a < 1.0f) {
        /* Maclaurin series: erf x = 2/sqrt(pi) * sum (-1)^n x^(2n+1) / (n! (2n+1)), n <= 10,
         * written as a + a*q with the leading 1 taken out of q, so the rounding errors of the
         * alternating sum land in the small correction (truncation < 1.2e-9 at |x| = 1). */
        static const float c[] = {1.480719281e-08f, -1.636584415e-07f, 1.646211444e-06f,
                                  -1.492565025e-05f, 1.205533263e-04f, -8.548327023e-04f,
                                  5.223977845e-03f, -2.686617151e-02f, 1.128379181e-01f,
                                  -3.761263788e-01f, 1.283791671e-01f /* 2/sqrt(pi) - 1 */};
        float z = a * a, q = 0.0f;
        for (unsigned i = 0; i < sizeof c / sizeof c[0]; i++)
            q = q * z + c[i];
        y = a + a * q;
    } else if (a < 4.0f) {
        /* erf = 1 - erfc, erfc a = e^(-a^2) Q(a). Q fitted (numpy Chebyshev least squares, degree 9,
         * then to monomials) in u = 1/a - 0.625 over [1, 4]; relative error of Q < 2.3e-7 in float,
         * and erfc < 0.16 here, so erf's absolute error stays under 4e-8 from Q. */
        static const float c[] = {2.999758534e-02f, -6.344926544e-03f, -2.811271697e-02f,
                                  4.447063431e-02f, -4.682505876e-02f, 2.327326313e-02f,
                                  4.376266152e-02f, -1.723938733e-01f, 3.822838068e-01f,
                                  3.059529960e-01f};
        float u = 1.0f / a - 0.625f, q = 0.0f;
        for (unsigned i = 0; i < sizeof c / sizeof c[0]; i++)
            q = q * u + c[i];
        y = 1.0f - expf(-a * a) * q;
    } else {
        y = 1.0f; /* erfc(4) = 1.5e-8 < half an ulp of 1 */
    }
    return x < 0.0f ? -y : y;
}

/* sinf/cosf: exact argument reduction for every finite x (ONNX Sin/Cos inputs are unbounded).
 * |x| = m * 2^(e-23) with a 24-bit integer m; x * 2/pi mod 4 needs only the bits of 2/pi from
 * weight 2^-(e-24) on (earlier ones add multiples of 4), so a 96-bit window of them times m
 * gives the quadrant and a 64-bit fraction exactly (a Payne-Hanek reduction in integers). */
static const uint32_t TWO_OVER_PI[] = { /* bit k has weight 2^(31-k); word 0 is the integer part */
    0x00000000u, 0xa2f9836eu, 0x4e441529u, 0xfc2757d1u, 0xf534ddc0u,
    0xdb629599u, 0x3c439041u, 0xfe5163abu, 0xdebbc561u, 0xb7246e3au};

static uint32_t window(unsigned w, unsigned s)
{
    return s ? (TWO_OVER_PI[w] << s) | (TWO_OVER_PI[w + 1] >> (32 - s)) : TWO_OVER_PI[w];
}

/* |x| >= pi/4, finite: returns the quadrant, sets r = |x| - quadrant * pi/2 in [-pi/4, pi/4]. */
static unsigned reduce_pio2(uint32_t ix, float *r)
{
    int e = (int)((ix >> 23) & 0xff) - 127;
    uint64_t m = (ix & 0x007fffffu) | 0x00800000u;
    unsigned k0 = (unsigned)(e + 7), w = k0 >> 5, s = k0 & 31;
    uint64_t p_hi = m * window(w, s), p_mid = m * window(w + 1, s), p_lo = m * window(w + 2, s);
    /* P = m * W = p_hi 2^64 + p_mid 2^32 + p_lo; |x| * 2/pi = P * 2^-94 (mod 4) */
    uint64_t c = (p_lo >> 32) + (p_mid & 0xffffffffu);
    uint32_t r0 = (uint32_t)p_lo, r1 = (uint32_t)c;
    c = (c >> 32) + (p_mid >> 32) + (p_hi & 0xffffffffu);
    uint32_t r2 = (uint32_t)c;
    unsigned q = (r2 >> 30) & 3u;
    uint64_t f = ((uint64_t)(r2 & 0x3fffffffu) << 34) | ((uint64_t)r1 << 2) | (r0 >> 30);
    if (f >> 63)
        q = (q + 1) & 3u; /* fraction >= 1/2: round the quadrant up, fraction becomes negative */
    /* 64-bit signed fraction times pi/2 * 2^-64, in double so r is rounded once to float. */
    *r = (float)((double)(int64_t)f * 0x1.921fb54442d18p-64 /* pi/2 * 2^-64 */);
    return q;
}

static float sin_poly(float r) /* |r| <= pi/4, Taylor to r^9 (truncation < 3e-9 relative) */
{
    float z = r * r;
    return r + r * z * (-1.0f / 6 + z * (1.0f / 120 + z * (-1.0f / 5040 + z * (1.0f / 362880))));
}

static float cos_poly(float r) /* |r| <= pi/4, Taylor to r^10 (truncation < 2e-10) */
{
    float z = r * r;
    return 1.0f + z * (-0.5f + z * (1.0f / 24 + z * (-1.0f / 720 + z * (1.0f / 40320 + z * (-1.0f / 3628800)))));
}

float sinf(float x)
{
    uint32_t ix = bits(x) & 0x7fffffffu;
    if (ix >= 0x7f800000u)
        return x - x; /* NaN for inf and NaN */
    if (ix < 0x3f490fdbu) /* |x| < pi/4 */
        return sin_poly(x);
    float r;
    unsigned q = reduce_pio2(ix, &r);
    float y = (q & 1u) ? cos_poly(r) : sin_poly(r);
    if (q & 2u)
        y = -y;
    return (bits(x) >> 31) ? -y : y;
}

float cosf(float x)
{
    uint32_t ix = bits(x) & 0x7fffffffu;
    if (ix >= 0x7f800000u)
        return x - x;
    if (ix < 0x3f490fdbu)
        return cos_poly(x);
    float r;
    unsigned q = reduce_pio2(ix, &r);
    float y = (q & 1u) ? sin_poly(r) : cos_poly(r);
    return (q == 1u || q == 2u) ? -y : y;
}
