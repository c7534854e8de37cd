/* Run-time scales: C twin of ops/intmath.py, bit for bit. A scale (m, e) = m * 2^-e is applied as
 * td_requant64 (td_common.h): one rounding, half up; run-time scales keep a 15-bit mantissa
 * (2^14 <= m < 2^15) so a product of two fits 32 bits. The *_32 / word functions return the same
 * value to the bit as the 64-bit formula they replace (RV32 has no 64-bit registers). */
#ifndef TD_DYNQ_H
#define TD_DYNQ_H
#include <stdint.h>
#include "td_common.h"

typedef struct { int32_t m, e; } td_scale;

/* round-half-up right shift (s <= 0: left shift) */
static inline int64_t td_rsr(int64_t x, int32_t s)
{
    return s > 0 ? (x + ((int64_t)1 << (s - 1))) >> s : (int64_t)((uint64_t)x << (-s));
}
static inline int64_t td_sat(int64_t x, int bits)
{
    int64_t lim = (bits >= 64) ? INT64_MAX : (((int64_t)1 << (bits - 1)) - 1);
    return x > lim ? lim : (x < -lim - 1 ? -lim - 1 : x);
}
static inline int32_t td_bitlen(uint64_t v)  /* bits of v (0 for 0), by binary search */
{
    int32_t b = 0;
    uint32_t w = (uint32_t)(v >> 32);
    if (w) b = 32; else w = (uint32_t)v;
    if (w >> 16) { b += 16; w >>= 16; }
    if (w >> 8) { b += 8; w >>= 8; }
    if (w >> 4) { b += 4; w >>= 4; }
    if (w >> 2) { b += 2; w >>= 2; }
    if (w >> 1) { b += 1; w >>= 1; }
    return b + (int32_t)w;
}
/* floor(n / d), d > 0. For d < 2^32 from 32-bit divisions (RV32M has no 64-bit divide; libgcc's
 * takes ~100 instructions): the high word's quotient, then the rest r:lo (r < d) in two base-2^16
 * digits against d shifted to its top bit (Knuth's algorithm D: each estimated digit is at most 2
 * too large, corrected against the divisor's low half). */
static inline uint64_t td_udiv64(uint64_t n, uint64_t d)
{
    if (d >> 32) return n / d;
    uint32_t dv = (uint32_t)d, nh = (uint32_t)(n >> 32), lo = (uint32_t)n;
    uint32_t qh = nh / dv, r = nh - qh * dv;
    int32_t s = 32 - td_bitlen(dv);
    uint32_t dn = dv << s, dh = dn >> 16, dl = dn & 0xFFFF;
    uint32_t n1 = s ? (r << s) | (lo >> (32 - s)) : r, n0 = lo << s;
    uint32_t q1 = n1 / dh, rh = n1 - q1 * dh;
    while (q1 >> 16 || q1 * dl > ((rh << 16) | (n0 >> 16))) {
        q1--;
        rh += dh;
        if (rh >> 16) break;
    }
    uint32_t n21 = (n1 << 16) + (n0 >> 16) - q1 * dn;
    uint32_t q0 = n21 / dh;
    rh = n21 - q0 * dh;
    while (q0 >> 16 || q0 * dl > ((rh << 16) | (n0 & 0xFFFF))) {
        q0--;
        rh += dh;
        if (rh >> 16) break;
    }
    return ((uint64_t)qh << 32) | (q1 << 16 | q0);
}
static inline td_scale td_scale_norm(int64_t m, int32_t e)
{
    td_scale r = {0, 0};
    if (m <= 0) return r;
    int32_t sh = td_bitlen((uint64_t)m) - 15;
    int64_t m2 = td_rsr(m, sh);
    int32_t carry = m2 >= (1 << 15);
    if (carry) m2 >>= 1;
    r.m = (int32_t)m2;
    r.e = e - sh - carry;
    return r;
}
static inline td_scale td_scale_mul(td_scale a, td_scale b)
{
    return td_scale_norm((int64_t)a.m * b.m, a.e + b.e);
}
static inline int64_t td_scale_apply(int64_t x, td_scale s) { return td_requant64(x, s.m, s.e); }
static inline int64_t td_min64(int64_t a, int64_t b) { return a < b ? a : b; }

/* Per-vector symmetric quantization (intmath.quantize_vec): r = (qmax << 47) / M for the absmax M,
 * q = (x r + 2^46) >> 47, |q| <= qmax as |x| <= M. |x r| <= qmax 2^47 < 2^63, so x r is its low 64
 * bits, formed from 32-bit words: hi = x rh + high word of (x rl), and 2^46 only touches the high
 * word: q = (hi + 2^14) >> 15. */
static inline uint64_t td_quantize_recip(int32_t qmax, uint64_t M)
{
    return td_udiv64((uint64_t)qmax << 47, M > 0 ? M : 1);
}
static inline void td_quantize_put(void *out, int out16, int i, int32_t hi)
{
    int32_t q = (hi + (1 << 14)) >> 15;
    if (out16) ((int16_t *)out)[i] = (int16_t)q; else ((int8_t *)out)[i] = (int8_t)q;
}
/* int64 x (|x| < 2^40; x rh's high word and xh rl enter mod 2^32) with absmax M (of these or more values) */
static inline void td_quantize_vec64m(const int64_t *x, int n, uint64_t M, int32_t qmax, void *out, int out16)
{
    uint64_t r = td_quantize_recip(qmax, M);
    uint32_t rh = (uint32_t)(r >> 32), rl = (uint32_t)r;
    for (int i = 0; i < n; i++) {
        uint32_t xl = (uint32_t)x[i], xh = (uint32_t)((uint64_t)x[i] >> 32);
        td_quantize_put(out, out16, i, (int32_t)(xl * rh + xh * rl + (uint32_t)(((uint64_t)xl * rl) >> 32)));
    }
}
static inline uint64_t td_absmax64(const int64_t *x, int n)
{
    uint64_t M = 0;
    for (int i = 0; i < n; i++) { uint64_t a = (uint64_t)(x[i] < 0 ? -x[i] : x[i]); if (a > M) M = a; }
    return M;
}
/* returns M */
static inline int64_t td_quantize_vec(const int64_t *x, int n, int32_t qmax, void *out, int out16)
{
    uint64_t M = td_absmax64(x, n);
    td_quantize_vec64m(x, n, M, qmax, out, out16);
    return (int64_t)M;
}
/* int8 row and its run-time scale F = M * c (intmath.quantize_rows) */
static inline void td_quantize_row(const int64_t *x, int n, td_scale c, int32_t qmax, int8_t *q, int32_t *F)
{
    td_scale f = td_scale_mul(td_scale_norm(td_quantize_vec(x, n, qmax, q, 0), 0), c);
    F[0] = f.m; F[1] = f.e;
}

/* rsr(x * m, e) in 32-bit words for x < 2^31 when m2 = td_mulhr_m(m, e) is nonzero (1 <= e <= 32 and
 * m << (32 - e) < 2^32): (x m + 2^(e-1)) >> e = (x m2 + 2^31) >> 32 = hi(x m2) + bit 31 of lo(x m2) */
static inline uint32_t td_mulhr_m(uint32_t m, int32_t e)
{
    return e >= 1 && e <= 32 && ((uint64_t)m << (32 - e)) >> 32 == 0 ? m << (32 - e) : 0;
}
static inline uint32_t td_mulhr(uint32_t x, uint32_t m2)
{
    uint64_t p = (uint64_t)x * m2;
    return (uint32_t)(p >> 32) + ((uint32_t)p >> 31);
}

/* a * b as two 32-bit words (hi, lo) of the unsigned 64-bit product */
typedef struct { uint32_t hi, lo; } td_u64w;
static inline td_u64w td_mulu(uint32_t a, uint32_t b)
{
    uint64_t p = (uint64_t)a * b;
    td_u64w r = {(uint32_t)(p >> 32), (uint32_t)p};
    return r;
}
/* td_quantize_vec for int32 x (the same q to the bit; hi = x rh + the high word of x rl fits 32 bits),
 * given the absmax M (kernels find it while they compute x) */
static inline void td_quantize_vec32m(const int32_t *x, int n, uint32_t M, int32_t qmax, void *out, int out16)
{
    uint64_t r = td_quantize_recip(qmax, M);
    int32_t rh = (int32_t)(r >> 32);
    uint32_t rl = (uint32_t)r;
    for (int i = 0; i < n; i++)
        td_quantize_put(out, out16, i, x[i] * rh + (int32_t)(((int64_t)x[i] * (int64_t)rl) >> 32));
}
static inline uint32_t td_abs32(int32_t x) { return x < 0 ? -(uint32_t)x : (uint32_t)x; }
static inline int64_t td_quantize_vec32(const int32_t *x, int n, int32_t qmax, void *out, int out16)
{
    uint32_t M = 0;
    for (int i = 0; i < n; i++) { uint32_t a = td_abs32(x[i]); if (a > M) M = a; }
    td_quantize_vec32m(x, n, M, qmax, out, out16);
    return M;
}
/* int8 row of int32 x with absmax M and its run-time scale F = M * c */
static inline void td_quantize_row32m(const int32_t *x, int n, uint32_t M, td_scale c, int32_t qmax, int8_t *q,
                                      int32_t *F)
{
    td_quantize_vec32m(x, n, M, qmax, q, 0);
    td_scale f = td_scale_mul(td_scale_norm(M, 0), c);
    F[0] = f.m; F[1] = f.e;
}
/* sat_bits(rsr(acc * s.m, s.e)) for 0 <= s.m < 2^15 and |acc| < 2^42 (a linear layer with up to
 * 4096 columns: |acc| <= (cols / 32 + 2) * 2^15 * 2^19), planned once per row of outputs. From the
 * 32-bit words of P = acc * m (|P| < 2^57): for 33 <= e <= 63 the rounding constant only touches the
 * high word, r = (hi(P) + 2^(e-33)) >> (e-32); for 27 <= e <= 32 the result still fits 32 bits and is
 * both words shifted after adding 2^(e-1) with its carry. Other exponents take the 64-bit path. */
typedef struct { td_scale s; int32_t mode, rnd, lo, hi; } td_rescale_t;
static inline td_rescale_t td_rescale_plan(td_scale s, int bits)
{
    td_rescale_t p;
    p.s = s;
#ifdef TD_X86
    p.mode = 0;   /* one 64-bit product */
#else
    p.mode = s.e >= 33 && s.e <= 63 ? 1 : (s.e >= 27 && s.e <= 32 ? 2 : 0);
#endif
    p.rnd = p.mode == 1 ? 1 << (s.e - 33) : 0;
    p.hi = bits >= 32 ? INT32_MAX : (1 << (bits - 1)) - 1;
    p.lo = -p.hi - 1;
    return p;
}
static inline int32_t td_rescale(int64_t acc, td_rescale_t p)
{
    int32_t r;
    if (p.mode) {
        uint32_t lo = (uint32_t)acc, m = (uint32_t)p.s.m;
        int32_t ph = (int32_t)((uint32_t)(acc >> 32) * m + (uint32_t)(((uint64_t)lo * m) >> 32));
        if (p.mode == 1) {
            r = (ph + p.rnd) >> (p.s.e - 32);
        } else {
            uint32_t pl = lo * m, R = (uint32_t)1 << (p.s.e - 1), pl2 = pl + R;
            uint32_t ph2 = (uint32_t)ph + (pl2 < R);
            r = (int32_t)((ph2 << (32 - p.s.e)) | ((pl2 >> 1) >> (p.s.e - 1)));
        }
    } else {
        int64_t v = td_scale_apply(acc, p.s);
        r = (int32_t)(v < p.lo ? p.lo : (v > p.hi ? p.hi : v));
    }
    return r < p.lo ? p.lo : (r > p.hi ? p.hi : r);
}
#endif
