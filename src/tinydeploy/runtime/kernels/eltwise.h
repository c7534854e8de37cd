/* Binary elementwise kernels with numpy broadcasting, float and integer.
 *
 * The compiler reduces every broadcast to a 4-deep loop nest over dims D0..D3 (innermost last)
 * with one element stride per input (0 on a broadcast dim); the output is contiguous. All of these
 * are literals at the call site, so the C compiler specialises each call. */
#ifndef TD_ELTWISE_H
#define TD_ELTWISE_H
#include "td_common.h"
#if defined(__STDC_HOSTED__) && __STDC_HOSTED__
#include <math.h>
#define TD_SQRTF(v) sqrtf(v)
#define TD_POWF(a, b) powf(a, b)
#define TD_FMODF(a, b) fmodf(a, b)
#else
float expf(float);
float logf(float);
#define TD_INFF (__builtin_inff())
/* freestanding: no libm. sqrt by Newton from a bit-level first guess (error < 2 ulp);
 * pow through exp/log (relative error ~1e-6 for moderate results); fmod by truncated quotient. */
static inline float td_sqrtf_(float v)
{
    if (!(v > 0.0f) || v == TD_INFF) return v == 0.0f || v == TD_INFF ? v : __builtin_nanf("");
    union { float f; uint32_t u; } c = { v };
    c.u = (c.u >> 1) + 0x1fc00000u;
    float r = c.f;
    for (int i = 0; i < 4; i++) r = 0.5f * (r + v / r);
    return r;
}
static inline float td_powf_(float a, float b)
{
    if (b == 0.0f) return 1.0f;
    if (a == 0.0f) return b > 0.0f ? 0.0f : TD_INFF;
    float ib = (float)(int32_t)b;
    if (a < 0.0f) {
        if (ib != b) return __builtin_nanf("");
        float r = expf(b * logf(-a));
        return ((int32_t)b & 1) ? -r : r;
    }
    return expf(b * logf(a));
}
static inline float td_fmodf_(float a, float b)
{
    float q = a / b;
    q = q < 0.0f ? -(float)(int64_t)(-q) : (float)(int64_t)q;
    return a - q * b;
}
#define TD_SQRTF(v) td_sqrtf_(v)
#define TD_POWF(a, b) td_powf_(a, b)
#define TD_FMODF(a, b) td_fmodf_(a, b)
#endif

/* Across the cores: the rows (i0, i1, i2) when there are several, else the columns i3. */
#define TD_BCAST_LOOPS(STMT)                                                                   \
    const int rows_ = D0 * D1 * D2;                                                            \
    const int rlo_ = rows_ > 1 ? td_par_lo(rows_) : 0, rhi_ = rows_ > 1 ? td_par_hi(rows_) : 1; \
    const int clo_ = rows_ > 1 ? 0 : td_par_lo(D3), chi_ = rows_ > 1 ? D3 : td_par_hi(D3);     \
    for (int r_ = rlo_; r_ < rhi_; r_++) {                                                     \
        const int i2 = r_ % D2, i1 = r_ / D2 % D1, i0 = r_ / D2 / D1;                          \
        ptrdiff_t k = (ptrdiff_t)r_ * D3 + clo_;                                               \
        for (int i3 = clo_; i3 < chi_; i3++, k++) {                                            \
            const ptrdiff_t ia = (ptrdiff_t)i0 * as0 + (ptrdiff_t)i1 * as1 +                   \
                                 (ptrdiff_t)i2 * as2 + (ptrdiff_t)i3 * as3;                    \
            const ptrdiff_t ib = (ptrdiff_t)i0 * bs0 + (ptrdiff_t)i1 * bs1 +                   \
                                 (ptrdiff_t)i2 * bs2 + (ptrdiff_t)i3 * bs3;                    \
            STMT;                                                                              \
        }                                                                                      \
    }                                                                                          \
    td_par_sync();

#define TD_BCAST_ARGS int D0, int D1, int D2, int D3, int as0, int as1, int as2, int as3,      \
                      int bs0, int bs1, int bs2, int bs3

/* y = EXPR(va, vb) */
#define TD_DEFINE_BINARY4(NAME, T, EXPR)                                                       \
static inline void NAME(const T *a, const T *b, T *y, TD_BCAST_ARGS)                          \
{                                                                                             \
    TD_BCAST_LOOPS(const T va = a[ia]; const T vb = b[ib]; y[k] = (T)(EXPR))                  \
}

#define TD_DEFINE_ARITH(SUFFIX, T)                                                             \
TD_DEFINE_BINARY4(td_add_##SUFFIX, T, va + vb)                                                 \
TD_DEFINE_BINARY4(td_sub_##SUFFIX, T, va - vb)                                                 \
TD_DEFINE_BINARY4(td_mul_##SUFFIX, T, va * vb)                                                 \
TD_DEFINE_BINARY4(td_max_##SUFFIX, T, va > vb ? va : vb)                                       \
TD_DEFINE_BINARY4(td_min_##SUFFIX, T, va < vb ? va : vb)

TD_DEFINE_ARITH(f32, float)
TD_DEFINE_ARITH(s32, int32_t)
TD_DEFINE_ARITH(s64, int64_t)
TD_DEFINE_BINARY4(td_div_f32, float, va / vb)
TD_DEFINE_BINARY4(td_pow_f32, float, TD_POWF(va, vb))
TD_DEFINE_BINARY4(td_fmod_f32, float, TD_FMODF(va, vb))
/* float Mod, fmod = 0 (numpy np.mod): the remainder takes the divisor's sign; a zero remainder is
 * a zero with the divisor's sign */
static inline float td_pymodf_(float a, float b)
{
    float r = TD_FMODF(a, b);
    if (r != 0.0f) return ((r < 0.0f) != (b < 0.0f)) ? r + b : r;
    return b < 0.0f ? -0.0f : 0.0f;
}
TD_DEFINE_BINARY4(td_mod_f32, float, td_pymodf_(va, vb))
/* Pow with a float base and an integer exponent tensor: the exponent is converted to float */
#define TD_DEFINE_POW_F32(SUFFIX, TB)                                                          \
static inline void td_pow_f32_##SUFFIX(const float *a, const TB *b, float *y, TD_BCAST_ARGS)  \
{                                                                                             \
    TD_BCAST_LOOPS(const float va = a[ia]; const float vb = (float)b[ib]; y[k] = TD_POWF(va, vb)) \
}
TD_DEFINE_POW_F32(s32, int32_t)
TD_DEFINE_POW_F32(s64, int64_t)
TD_DEFINE_POW_F32(u32, uint32_t)
TD_DEFINE_POW_F32(u64, uint64_t)
/* Max / Min propagate NaN as numpy and onnxruntime do */
TD_DEFINE_BINARY4(td_fmax_f32, float, (va != va || vb != vb) ? va + vb : (va > vb ? va : vb))
TD_DEFINE_BINARY4(td_fmin_f32, float, (va != va || vb != vb) ? va + vb : (va < vb ? va : vb))
/* integer Mod, fmod = 0: the result takes the divisor's sign (Python %) */
#define TD_IMOD(va, vb) ((va) % (vb) != 0 && (((va) % (vb) < 0) != ((vb) < 0)) ? (va) % (vb) + (vb) : (va) % (vb))
TD_DEFINE_BINARY4(td_mod_s32, int32_t, TD_IMOD(va, vb))
TD_DEFINE_BINARY4(td_mod_s64, int64_t, TD_IMOD(va, vb))
TD_DEFINE_BINARY4(td_fmod_s32, int32_t, va % vb)
TD_DEFINE_BINARY4(td_fmod_s64, int64_t, va % vb)

static inline void td_sqrt_f32(const float *x, float *y, int n)
{
    for (int i = 0; i < n; i++) y[i] = TD_SQRTF(x[i]);
}

static inline void td_scale_f32(const float *x, float *y, int n, float c)
{
    for (int i = 0; i < n; i++) y[i] = x[i] * c;
}

/* ---- int8 -------------------------------------------------------------------------------------
 * QAdd / QSub / QMax / QMin (TFLite-style): both inputs are brought to a common fixed-point
 * domain with L = 20 bits of headroom, combined, then requantized once:
 *     xa = requant((a - za) * 2^L, ma, sa)      real ma·2^-sa = sa_real / (2 max(sa_real, sb_real))
 *     xb = requant((b - zb) * 2^L, mb, sb)
 *     y  = clamp(requant(xa OP xb, m, s) + zy, lo, hi)   real m·2^-s = 2 max(..) / (2^L sy)
 * |a - za| < 2^8, so (a - za)·2^L < 2^28 and xa, xb < 2^27: no int32 overflow.
 * QMul: y = clamp(requant((a - za)(b - zb), m, s) + zy, lo, hi), real = sa·sb / sy. */
#define TD_QBIN_LEFT_SHIFT 20
#define TD_DEFINE_QBINARY(NAME, COMBINE)                                                       \
static inline void NAME(const int8_t *a, const int8_t *b, int8_t *y, TD_BCAST_ARGS,           \
                        int32_t za, int32_t ma, int32_t sa, int32_t zb, int32_t mb, int32_t sb,\
                        int32_t m, int32_t s, int32_t zy, int32_t lo, int32_t hi)             \
{                                                                                             \
    TD_BCAST_LOOPS(                                                                           \
        const int32_t xa = td_requant(((int32_t)a[ia] - za) * (1 << TD_QBIN_LEFT_SHIFT), ma, sa); \
        const int32_t xb = td_requant(((int32_t)b[ib] - zb) * (1 << TD_QBIN_LEFT_SHIFT), mb, sb); \
        y[k] = (int8_t)td_clamp(td_requant(COMBINE, m, s) + zy, lo, hi))                      \
}
TD_DEFINE_QBINARY(td_qadd_s8, xa + xb)
TD_DEFINE_QBINARY(td_qsub_s8, xa - xb)
TD_DEFINE_QBINARY(td_qmax_s8, xa > xb ? xa : xb)
TD_DEFINE_QBINARY(td_qmin_s8, xa < xb ? xa : xb)

static inline void td_qmul_s8(const int8_t *a, const int8_t *b, int8_t *y, TD_BCAST_ARGS,
                              int32_t za, int32_t zb, int32_t m, int32_t s, int32_t zy,
                              int32_t lo, int32_t hi)
{
    TD_BCAST_LOOPS(
        const int32_t p = ((int32_t)a[ia] - za) * ((int32_t)b[ib] - zb);
        y[k] = (int8_t)td_clamp(td_requant(p, m, s) + zy, lo, hi))
}
#endif
