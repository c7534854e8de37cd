/* Deeploy's integer dialect (ops/deeploy*.py, docs/deeploy_dialect.md), with the arithmetic of
 * Deeploy's C kernels. Float32 tensors hold integers (Deeploy's files): read as int32 the way C's
 * cast does, saturated (NaN -> 0) where the cast would be undefined. Signed int32 overflow, which
 * Deeploy's kernels leave to the compiler, wraps here (unsigned arithmetic). */
#ifndef TD_DEEPLOY_H
#define TD_DEEPLOY_H
#include "td_common.h"

/* (int32_t)v with saturation and NaN -> 0, from the bits: no float arithmetic (no soft-float calls on
 * a core without FPU) */
static inline int32_t td_dpy_f2i(float v)
{
    union { float f; uint32_t u; } c;   /* type punning through a union: no memcpy call when freestanding */
    uint32_t b, m;
    int32_t e, mag;
    c.f = v;
    b = c.u;
    e = (int32_t)((b >> 23) & 0xFFu) - 150;     /* v = m * 2^e */
    m = (b & 0x7FFFFFu) | 0x800000u;
    if (e >= 8)                                  /* |v| >= 2^31, inf, NaN */
        return ((b & 0x7FFFFFFFu) > 0x7F800000u) ? 0 : ((b >> 31) ? INT32_MIN : INT32_MAX);
    if (e < -23) return 0;                       /* |v| < 1 (and zeros, subnormals) */
    mag = (int32_t)(e >= 0 ? m << e : m >> -e);
    return (b >> 31) ? -mag : mag;
}
/* (float)v, rounded to nearest even, from the bits (no soft-float call either) */
static inline float td_dpy_i2f(int32_t v)
{
    union { float f; uint32_t u; } c;
    uint32_t m = v < 0 ? 0u - (uint32_t)v : (uint32_t)v, t = m;
    int32_t n = 0;
    if (!m) return 0.0f;
    if (t >> 16) { n += 16; t >>= 16; }
    if (t >> 8) { n += 8; t >>= 8; }
    if (t >> 4) { n += 4; t >>= 4; }
    if (t >> 2) { n += 2; t >>= 2; }
    if (t >> 1) n += 1;                          /* n: index of the top bit */
    if (n <= 23) {
        m <<= 23 - n;
    } else {
        uint32_t sh = (uint32_t)(n - 23), rem = m & ((1u << sh) - 1u), half = 1u << (sh - 1u);
        m >>= sh;
        if (rem > half || (rem == half && (m & 1u))) {
            if (++m >> 24) { m >>= 1; n++; }
        }
    }
    c.u = (v < 0 ? 0x80000000u : 0u) | ((uint32_t)(n + 127) << 23) | (m & 0x7FFFFFu);
    return c.f;
}
#define TD_DPY_LD_float(v) td_dpy_f2i(v)
#define TD_DPY_ST_float(TO, v) td_dpy_i2f((int32_t)(v))
#define TD_DPY_ST_int(TO, v) ((TO)(v))
#define TD_DPY_LD_int(v) ((int32_t)(v))
#define TD_DPY_WRAP(v) ((int32_t)(uint32_t)(v))

/* Every kernel reads element (or row) k before writing it, so it runs in place on the same bytes.
 * Elements (rows) are shared among a cluster's cores (td_par_lo/hi, td_common.h). */

/* RequantShift: y = clamp((x*mul + add + 2^(s-1)) >> s, lo, hi) in int32; mul/add index (i / inner) % C */
#define TD_RQS_DEF(NAME, TI, TO, LD, ST)                                                                   \
    static inline void NAME(const TI *x, TO *y, int32_t n, int32_t C, int32_t inner, const int32_t *mul,  \
                            const int32_t *add, int32_t s, int32_t lo, int32_t hi)                     \
    {                                                                                                  \
        TD_PAR_FOR(i, n) {                                                              \
            int32_t c = (i / inner) % C;                                                               \
            uint32_t v = (uint32_t)LD(x[i]) * (uint32_t)mul[c] + (uint32_t)add[c] + ((1u << s) >> 1); \
            y[i] = ST(TO, td_clamp(TD_DPY_WRAP(v) >> s, lo, hi));                                          \
        }                                                                                              \
        td_par_sync();                                                                                       \
    }

/* iHardswish: y = x * (clamp(x + three, 0, six) * one_over_six), int32 */
#define TD_IHSWISH_DEF(NAME, TI, TO, LD, ST)                                                               \
    static inline void NAME(const TI *x, TO *y, int32_t n, int32_t one_over_six, int32_t three, int32_t six) \
    {                                                                                                  \
        TD_PAR_FOR(i, n) {                                                              \
            int32_t v = LD(x[i]);                                                                      \
            uint32_t t = (uint32_t)td_clamp(TD_DPY_WRAP((uint32_t)v + (uint32_t)three), 0, six) * (uint32_t)one_over_six; \
            y[i] = ST(TO, TD_DPY_WRAP((uint32_t)v * t));                                                   \
        }                                                                                              \
        td_par_sync();                                                                                       \
    }

/* TrueIntegerDiv: y = x * c (int32), c = floor(Delta*eta / (y*eta + eps)) */
#define TD_MULC_DEF(NAME, TI, TO, LD, ST)                                                                  \
    static inline void NAME(const TI *x, TO *y, int32_t n, int32_t c)                                  \
    {                                                                                                  \
        TD_PAR_FOR(i, n) y[i] = ST(TO, TD_DPY_WRAP((uint32_t)LD(x[i]) * (uint32_t)c));     \
        td_par_sync();                                                                                       \
    }

/* iSoftmax (Softmax_s8_s8): per row t = x - max, z = clamp((int8)(-t / log2), 0, 31), p = t + z*log2,
 * e = (uint32)((a*(p+b)^2 + c) >> z), y = (uint32)(e*(n-1)) / sum e. tab: e for d = -t in [0, 256)
 * (every 8-bit input), computed at compile time; e is computed twice (sum, output) instead of kept
 * in scratch, so the rows can be shared among a cluster's cores. */
static inline uint32_t td_isoftmax_e(uint32_t d, const uint32_t *tab, int32_t a, int32_t b, int64_t c,
                                     int32_t log2)
{
    uint32_t q;
    int32_t z;
    int64_t p;
    if (d < 256u) return tab[d];
    q = d / (uint32_t)log2;                                       /* exact: d >= 0 */
    z = td_clamp((int32_t)((q & 255u) ^ 128u) - 128, 0, 31);      /* (int8_t) */
    p = (int64_t)z * log2 - d + b;
    return (uint32_t)((uint64_t)(a * p * p + c) >> z);
}
#define TD_ISOFTMAX_DEF(NAME, TI, TO, LD, ST)                                                          \
    static inline void NAME(const TI *x, TO *y, const uint32_t *tab, int32_t rows, int32_t L, int32_t a, \
                            int32_t b, int64_t c, int32_t log2, int32_t n)                             \
    {                                                                                                  \
        TD_PAR_FOR(r, rows) {                                                                          \
            const TI *xr = x + (size_t)r * L;                                                          \
            TO *yr = y + (size_t)r * L;                                                                \
            int32_t mx = LD(xr[0]);                                                                    \
            uint32_t s = 0;                                                                            \
            for (int32_t j = 1; j < L; j++) if (LD(xr[j]) > mx) mx = LD(xr[j]);                        \
            for (int32_t j = 0; j < L; j++)                                                            \
                s += td_isoftmax_e((uint32_t)mx - (uint32_t)LD(xr[j]), tab, a, b, c, log2);            \
            for (int32_t j = 0; j < L; j++) {                                                          \
                uint32_t e = td_isoftmax_e((uint32_t)mx - (uint32_t)LD(xr[j]), tab, a, b, c, log2);    \
                yr[j] = ST(TO, (s ? (e * (uint32_t)(n - 1)) / s : 0u));                                \
            }                                                                                          \
        }                                                                                              \
        td_par_sync();                                                                                 \
    }

/* iRMSNorm: per row std = isqrt(sum x^2 / L + 1), y = clamp(((x*w) / std) >> s, lo, hi), int32 */
static inline int32_t td_dpy_isqrt(int32_t v)
{
    uint32_t r = 0;
    for (uint32_t bit = 1u << 15; bit; bit >>= 1)
        if ((r | bit) * (r | bit) <= (uint32_t)v) r |= bit;
    return (int32_t)r;
}
#define TD_IRMSNORM_DEF(NAME, TI, TO, LD, ST)                                                              \
    static inline void NAME(const TI *x, TO *y, const int32_t *w, int32_t rows, int32_t L, int32_t s,  \
                            int32_t lo, int32_t hi)                                                    \
    {                                                                                                  \
        TD_PAR_FOR(r, rows) {                                                           \
            const TI *xr = x + (size_t)r * L;                                                          \
            TO *yr = y + (size_t)r * L;                                                                \
            uint32_t ss = 0;                                                                           \
            for (int32_t j = 0; j < L; j++) ss += (uint32_t)LD(xr[j]) * (uint32_t)LD(xr[j]);           \
            int32_t m = TD_DPY_WRAP(ss) / L + 1, sd = m > 0 ? td_dpy_isqrt(m) : 0;                     \
            if (sd < 1) sd = 1;                                                                        \
            for (int32_t j = 0; j < L; j++)                                                            \
                yr[j] = ST(TO, td_clamp((TD_DPY_WRAP((uint32_t)LD(xr[j]) * (uint32_t)w[j]) / sd) >> s, lo, hi)); \
        }                                                                                              \
        td_par_sync();                                                                                       \
    }
/* iGELU (GELU_s8_s32): q = min(|x|, -b), L = sgn(x) * (one - (q + b)^2), y = x * ((one + L) >> 1), int32 */
#define TD_IGELU_DEF(NAME, TI, TO, LD, ST)                                                                 \
    static inline void NAME(const TI *x, TO *y, int32_t n, int32_t b, int32_t one)                    \
    {                                                                                                  \
        TD_PAR_FOR(i, n) {                                                              \
            int32_t v = LD(x[i]), sg = (v > 0) - (v < 0), a = TD_DPY_WRAP((uint32_t)sg * (uint32_t)v); \
            int32_t q = a > -b ? -b : a, d = q + b;                                                    \
            int32_t L = TD_DPY_WRAP((uint32_t)sg * (uint32_t)(one - d * d));                           \
            y[i] = ST(TO, TD_DPY_WRAP((uint32_t)v * (uint32_t)(TD_DPY_WRAP((uint32_t)one + (uint32_t)L) >> 1))); \
        }                                                                                              \
        td_par_sync();                                                                                       \
    }

/* iNoNorm (SnitchiNoNorm_s8_s8): y = (int8)(((x*w + bias) * mul) >> s); bias index (i / inner) % C */
#define TD_INONORM_DEF(NAME, TI, TO, LD, ST)                                                               \
    static inline void NAME(const TI *x, TO *y, int32_t n, const int32_t *w, const int32_t *bias, int32_t C, \
                            int32_t inner, int32_t mul, int32_t s)                                     \
    {                                                                                                  \
        TD_PAR_FOR(i, n) {                                                              \
            uint32_t v = ((uint32_t)LD(x[i]) * (uint32_t)w[i] + (uint32_t)bias[(i / inner) % C]) * (uint32_t)mul; \
            y[i] = ST(TO, (int8_t)(uint8_t)(uint32_t)(TD_DPY_WRAP(v) >> s));                               \
        }                                                                                              \
        td_par_sync();                                                                                       \
    }

/* ITAMax (gw = 0) and ITAPartialMax (groups of gw): ITA's shift softmax, sh = (uint8)((max - x + 16) >> 5),
 * sum of 256 >> sh, y = (K / sum) >> sh with K = (n-1)*256 (ITAMax) or (n/2-1)*256 (ITAPartialMax) */
static inline uint32_t td_ita_sh(int32_t d)
{
    uint32_t s = (uint32_t)((d + 16) >> 5) & 255u;
    return s > 31 ? 31 : s;
}
#define TD_ITAMAX_DEF(NAME, TI, TO, LD, ST)                                                                \
    static inline void NAME(const TI *x, TO *y, int32_t rows, int32_t L, int32_t n, int32_t gw)        \
    {                                                                                                  \
        TD_PAR_FOR(r, rows) {                                                           \
            const TI *xr = x + (size_t)r * L;                                                          \
            TO *yr = y + (size_t)r * L;                                                                \
            int32_t mx = -128;                                                                         \
            uint32_t sum = 0, K;                                                                       \
            if (gw == 0) {                                                                             \
                for (int32_t j = 0; j < L; j++) if (LD(xr[j]) > mx) mx = LD(xr[j]);                    \
                for (int32_t j = 0; j < L; j++) sum += 256u >> td_ita_sh(mx - LD(xr[j]));              \
                K = (uint32_t)(n - 1) * 256u;                                                          \
            } else {                                                                                   \
                for (int32_t g = 0; g < L / gw; g++) {                                                 \
                    int32_t cm = -128, grow;                                                           \
                    uint32_t es = 0, sh;                                                               \
                    for (int32_t k = 0; k < gw; k++) if (LD(xr[g * gw + k]) > cm) cm = LD(xr[g * gw + k]); \
                    grow = cm > mx;                                                                    \
                    sh = grow ? (uint32_t)((cm - mx + 16) >> 5) : 0u;                                  \
                    if (grow) mx = cm;                                                                 \
                    for (int32_t k = 0; k < gw; k++) es += 256u >> td_ita_sh(mx - LD(xr[g * gw + k])); \
                    sum = (sh > 31 ? 0u : sum >> sh) + es;                                             \
                }                                                                                      \
                K = (uint32_t)(n / 2 - 1) * 256u;                                                      \
            }                                                                                          \
            uint32_t inv = sum ? K / sum : 0u;                                                         \
            for (int32_t j = 0; j < L; j++) yr[j] = ST(TO, (inv >> td_ita_sh(mx - LD(xr[j]))));            \
        }                                                                                              \
        td_par_sync();                                                                                       \
    }

/* iLayerNorm (Layernorm_s8_s8): mean = sum x / L, t = (int16)(x - mean), std = isqrt(sum t^2 / L + 1),
 * y = (int8)((((int64)(x - mean) * w) / std + bias) >> s), no clamp */
#define TD_ILAYERNORM_DEF(NAME, TI, TO, LD, ST)                                                            \
    static inline void NAME(const TI *x, TO *y, const int32_t *w, const int32_t *bias, int32_t rows,   \
                            int32_t L, int32_t s)                                                      \
    {                                                                                                  \
        TD_PAR_FOR(r, rows) {                                                           \
            const TI *xr = x + (size_t)r * L;                                                          \
            TO *yr = y + (size_t)r * L;                                                                \
            uint32_t sm = 0, sq = 0;                                                                   \
            for (int32_t j = 0; j < L; j++) sm += (uint32_t)LD(xr[j]);                                 \
            int32_t mean = TD_DPY_WRAP(sm) / L;                                                        \
            for (int32_t j = 0; j < L; j++) {                                                          \
                int32_t t = (int16_t)(uint16_t)(uint32_t)(LD(xr[j]) - mean);                           \
                sq += (uint32_t)(t * t);                                                               \
            }                                                                                          \
            int32_t m = TD_DPY_WRAP(sq) / L + 1, sd = m > 0 ? td_dpy_isqrt(m) : 0;                     \
            if (sd < 1) sd = 1;                                                                        \
            for (int32_t j = 0; j < L; j++) {                                                          \
                int64_t v = ((int64_t)LD(xr[j]) - mean) * w[j] / sd + bias[j];                         \
                yr[j] = ST(TO, (int8_t)(uint8_t)(uint64_t)(v >> s));                                       \
            }                                                                                          \
        }                                                                                              \
        td_par_sync();                                                                                       \
    }

/* IntegerDiv (Div_s32_s32): a [o, m, i] / b [o, 1, i]: N = Delta*eta*a, D = eta*b + eps,
 * q = (int32)((N + sgn(N) * (D >> 1)) / D); RQIntegerDiv (shift > 0, RQDiv_s32_s8) then
 * clamp((q*mul + add + 2^(shift-1)) >> shift, -128, 127) */
#define TD_IDIV_DEF(NAME, TI, TO, LD, ST)                                                                  \
    static inline void NAME(const TI *a, const TI *b, TO *y, int32_t o, int32_t m, int32_t in, int32_t delta, \
                            int32_t eps, int32_t eta, int32_t mul, int32_t add, int32_t shift)         \
    {                                                                                                  \
        int64_t de = TD_DPY_WRAP((uint32_t)delta * (uint32_t)eta);                                     \
        TD_PAR_FOR(p, o)                                                                \
            for (int32_t j = 0; j < m; j++)                                                            \
                for (int32_t k = 0; k < in; k++) {                                                     \
                    int32_t ia = (p * m + j) * in + k;                                                 \
                    int64_t N = de * LD(a[ia]), D = (int64_t)eta * LD(b[p * in + k]) + eps;            \
                    int32_t q = D ? TD_DPY_WRAP((uint64_t)((N + (N >= 0 ? 1 : -1) * (D >> 1)) / D)) : 0; \
                    if (shift > 0) {                                                                   \
                        uint32_t v = (uint32_t)q * (uint32_t)mul + (uint32_t)add + (1u << (shift - 1)); \
                        q = td_clamp(TD_DPY_WRAP(v) >> shift, -128, 127);                              \
                    }                                                                                  \
                    y[ia] = ST(TO, q);                                                                     \
                }                                                                                      \
        td_par_sync();                                                                                       \
    }

/* IntegerMean: S = sum over [o, n, i]'s middle axis (int32); (S + n/2) >> shift when shift >= 0,
 * else (S + sgn(S) * (n >> 1)) / n */
#define TD_IMEAN_DEF(NAME, TI, TO, LD, ST)                                                                 \
    static inline void NAME(const TI *x, TO *y, int32_t o, int32_t n, int32_t in, int32_t shift)       \
    {                                                                                                  \
        TD_PAR_FOR2(p, o, k, in) {                                                         \
                uint32_t s = 0;                                                                        \
                for (int32_t j = 0; j < n; j++) s += (uint32_t)LD(x[((size_t)p * n + j) * in + k]);    \
                int32_t S = TD_DPY_WRAP(s);                                                            \
                int64_t r = shift >= 0 ? ((int64_t)S + (n >> 1)) >> shift                              \
                                       : ((int64_t)S + (S >= 0 ? 1 : -1) * (int64_t)(n >> 1)) / n;     \
                y[(size_t)p * in + k] = ST(TO, r);                                                         \
            }                                                                                          \
        td_par_sync();                                                                                       \
    }

/* one definition per (input, output) type pair: Deeploy's files use float32 and int32 containers */
#define TD_DPY_TYPES(DEF, NAME, SI, TI, LD)                                                            \
    DEF(NAME##_##SI##_f32, TI, float, LD, TD_DPY_ST_float)                                             \
    DEF(NAME##_##SI##_s8, TI, int8_t, LD, TD_DPY_ST_int)                                               \
    DEF(NAME##_##SI##_u8, TI, uint8_t, LD, TD_DPY_ST_int)                                              \
    DEF(NAME##_##SI##_s16, TI, int16_t, LD, TD_DPY_ST_int)                                             \
    DEF(NAME##_##SI##_u16, TI, uint16_t, LD, TD_DPY_ST_int)                                            \
    DEF(NAME##_##SI##_s32, TI, int32_t, LD, TD_DPY_ST_int)
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
TD_DPY_ALL(TD_IGELU_DEF, td_igelu)
TD_DPY_ALL(TD_INONORM_DEF, td_inonorm)
TD_DPY_ALL(TD_ITAMAX_DEF, td_itamax)
TD_DPY_ALL(TD_ILAYERNORM_DEF, td_ilayernorm)
TD_DPY_ALL(TD_IDIV_DEF, td_idiv)
TD_DPY_ALL(TD_IMEAN_DEF, td_imean)
#endif
