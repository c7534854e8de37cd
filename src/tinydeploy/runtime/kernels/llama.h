/* Integer SLM kernels (llama2.c architecture): bit-exact C of models/llama/intops.py + intmath.py.
 * A scale is (m, e) = m * 2^-e with a 15-bit mantissa; rsr = round-half-up right shift.
 * Every kernel works on the first n rows (n: run-time row count, 1 for a decode step). */
#ifndef TD_LLAMA_H
#define TD_LLAMA_H
#include <stdint.h>
#include <string.h>

typedef struct { int32_t m, e; } tdl_scale;

static inline int64_t tdl_rsr(int64_t x, int32_t s)
{
    return s > 0 ? (x + ((int64_t)1 << (s - 1))) >> s : (int64_t)((uint64_t)x << (-s));
}
static inline int64_t tdl_sat(int64_t x, int bits)
{
    int64_t lim = (bits >= 64) ? INT64_MAX : (((int64_t)1 << (bits - 1)) - 1);
    return x > lim ? lim : (x < -lim - 1 ? -lim - 1 : x);
}
static inline int32_t tdl_bitlen(uint64_t v)
{
    int32_t b = 0;
    while (v) { b++; v >>= 1; }
    return b;
}
static inline tdl_scale tdl_norm(int64_t m, int32_t e)
{
    tdl_scale r = {0, 0};
    if (m <= 0) return r;
    int32_t sh = tdl_bitlen((uint64_t)m) - 15;
    int64_t m2 = tdl_rsr(m, sh);
    int32_t carry = m2 >= (1 << 15);
    if (carry) m2 >>= 1;
    r.m = (int32_t)m2;
    r.e = e - sh - carry;
    return r;
}
static inline tdl_scale tdl_mul(tdl_scale a, tdl_scale b)
{
    return tdl_norm((int64_t)a.m * b.m, a.e + b.e);
}
static inline int64_t tdl_apply(int64_t x, tdl_scale s) { return tdl_rsr(x * s.m, s.e); }

#include "llama_words.h" /* needs tdl_scale, tdl_norm, tdl_mul, tdl_apply, tdl_sat */

/* floor(sqrt(t)) for t < 2^32, bit by bit */
static inline uint32_t tdl_isqrt(uint32_t t)
{
    uint32_t r = 0, b = (uint32_t)1 << 30;
    while (b > t) b >>= 2;
    while (b) {
        if (t >= r + b) { t -= r + b; r = (r >> 1) + b; } else { r >>= 1; }
        b >>= 2;
    }
    return r;
}
static inline tdl_scale tdl_inv_sqrt(int64_t T)
{
    int32_t d = tdl_bitlen((uint64_t)T) - 29;
    d += d & 1;
    int64_t t = d >= 0 ? T >> d : T << (-d);
    int64_t s = tdl_isqrt((uint32_t)t);
    return tdl_norm((((int64_t)1 << 44) + s / 2) / s, 44 + d / 2);
}
/* per-vector symmetric quantization; returns the absmax M */
static inline int64_t tdl_quantize(const int64_t *x, int n, int32_t qmax, void *out, int out16)
{
    int64_t M = 0;
    for (int i = 0; i < n; i++) { int64_t a = x[i] < 0 ? -x[i] : x[i]; if (a > M) M = a; }
    int64_t r = ((int64_t)qmax << 47) / (M > 0 ? M : 1);
    for (int i = 0; i < n; i++) {
        int64_t q = (x[i] * r + ((int64_t)1 << 46)) >> 47;
        q = q > qmax ? qmax : (q < -qmax ? -qmax : q);
        if (out16) ((int16_t *)out)[i] = (int16_t)q; else ((int8_t *)out)[i] = (int8_t)q;
    }
    return M;
}
static inline void tdl_dyn_q8(const int64_t *x, int n, tdl_scale c, int32_t qmax, int8_t *q, int32_t *F)
{
    tdl_scale f = tdl_mul(tdl_norm(tdl_quantize(x, n, qmax, q, 0), 0), c);
    F[0] = f.m; F[1] = f.e;
}

static inline void tdl_embed(const int32_t *tok, int n, const int8_t *w8, const int16_t *mw, int D,
                             tdl_scale c, int bits, int16_t *x)
{
    for (int t = 0; t < n; t++) {
        int32_t base = tok[t] * D;
        for (int i = 0; i < D; i++) {
            int32_t j = base + i;
            x[t * D + i] = (int16_t)tdl_sat(tdl_apply((int64_t)w8[j] * mw[j >> 5], c), bits);
        }
    }
}

static inline void tdl_rmsnorm_q8(const int16_t *x, int n, int D, const int16_t *G, int64_t epsn,
                                  tdl_scale c, int32_t qmax, int8_t *z8, int32_t *F)
{
    int32_t z[D];
    for (int t = 0; t < n; t++) {
        const int16_t *xr = x + t * D;
        int64_t ss = epsn;
        for (int i = 0; i < D; i++) { z[i] = (int32_t)xr[i] * G[i]; ss += (uint32_t)((int32_t)xr[i] * xr[i]); }
        if (ss < 1) ss = 1;
        int64_t M = tdl_quantize32(z, D, qmax, z8 + t * D, 0);
        tdl_scale f = tdl_mul(tdl_mul(tdl_norm(M, 0), tdl_inv_sqrt(ss)), c);
        F[2 * t] = f.m; F[2 * t + 1] = f.e;
    }
}

/* acc += x * b. On RISC-V one asm statement keeps mul and add together (as in td_fast.h): left to
 * itself clang issues all products of an unrolled step before their adds and spills them. */
#if defined(__riscv) && !defined(TD_NO_ASM)
#define TDL_MAC(acc, x, b) do { int32_t t_;                                                      \
        __asm__ volatile("mul %1, %2, %3\n\tadd %0, %0, %1" : "+r"(acc), "=&r"(t_) : "r"(x), "r"(b)); } while (0)
#define TDL_BARRIER() __asm__ volatile("" ::: "memory")
#else
#define TDL_MAC(acc, x, b) ((acc) += (x) * (b))
#define TDL_BARRIER() do { } while (0)
#endif
/* one column o of 4 weight rows against one activation */
#define TDL_Q8_COL(o) do { int32_t x_ = xp[(o)];                                                 \
        TDL_MAC(p0, x_, (int32_t)w0[(o)]); TDL_MAC(p1, x_, (int32_t)w1[(o)]);                      \
        TDL_MAC(p2, x_, (int32_t)w2[(o)]); TDL_MAC(p3, x_, (int32_t)w3[(o)]); } while (0)
#define TDL_Q8_COL4(o) do { TDL_Q8_COL((o)); TDL_Q8_COL((o) + 1); TDL_Q8_COL((o) + 2);             \
        TDL_Q8_COL((o) + 3); TDL_BARRIER(); } while (0)

static inline void tdl_linear_q8_out(void *out, int out32, int idx, int64_t acc, tdl_scale s, int bits)
{
    int64_t v = tdl_rescale(acc, s, bits);
    if (out32) ((int32_t *)out)[idx] = (int32_t)v;
    else ((int16_t *)out)[idx] = (int16_t)v;
}
#include "llama_lin8.h"

/* out[t, j] = sat(apply(sum_g mw_g sum_{i in g} x8_i w8_ji, F_t * c)), groups of 32 over the
 * flattened [rows, cols] weight (they may straddle rows).
 * Fast path: 4 rows per pass that share their group borders (rows P apart, P = 32 / gcd(cols, 32):
 * row j + P starts P * cols / 32 groups after row j at the same offset within a group), so each
 * activation load feeds 4 MACs; int32 partial sums per group (|sum| <= 32 * 127 * 128 < 2^31), one
 * 64-bit multiply by the group mantissa per group and row; whole groups fully unrolled. Integer
 * sums in another order: the result is the same to the bit. */
__attribute__((noinline)) static void tdl_linear_q8(const int8_t *x8, const int32_t *F, int n, const int8_t *w8,
                                 const int16_t *mw, int rows, int cols, tdl_scale c, int bits,
                                 void *out, int out32)
{
    int gcd = cols & 31 ? (cols & -cols) : 32;
    int P = 32 / gcd;
    int fast = rows % (4 * P) == 0;
    int32_t gstep = P * cols / 32; /* groups between rows j and j + P */
    for (int t = 0; t < n; t++) {
        const int8_t *xr = x8 + t * cols;
        tdl_scale f = {F[2 * t], F[2 * t + 1]};
        tdl_scale s = tdl_mul(f, c);
        int j0 = 0;
        if (cols == 64 && rows >= 8) { /* P = 1: rows 8k.. by the 4-row path or one by one */
            j0 = rows & ~7;
            tdl_linear_q8_c64(xr, w8, mw, j0, s, bits, out, out32, t * rows);
        }
        if (fast) {
            for (int jb = j0; jb < rows; jb += 4 * P)
                for (int r = 0; r < P; r++) {
                    int j = jb + r;
                    int32_t base = j * cols;
                    const int8_t *w0 = w8 + base, *w1 = w0 + P * cols, *w2 = w1 + P * cols,
                                 *w3 = w2 + P * cols;
                    const int8_t *xp = xr;
                    int64_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
                    int i = 0;
                    while (i < cols) {
                        int32_t g = (base + i) >> 5;
                        int end = ((g + 1) << 5) - base;
                        if (end > cols) end = cols;
                        int len = end - i;
                        int32_t p0 = 0, p1 = 0, p2 = 0, p3 = 0;
                        if (len == 32) {
                            TDL_Q8_COL4(0); TDL_Q8_COL4(4); TDL_Q8_COL4(8); TDL_Q8_COL4(12);
                            TDL_Q8_COL4(16); TDL_Q8_COL4(20); TDL_Q8_COL4(24); TDL_Q8_COL4(28);
                            xp += 32; w0 += 32; w1 += 32; w2 += 32; w3 += 32;
                        } else {
                            int k = 0;
                            for (; k + 4 <= len; k += 4) {
                                TDL_Q8_COL4(0);
                                xp += 4; w0 += 4; w1 += 4; w2 += 4; w3 += 4;
                            }
                            for (; k < len; k++) {
                                TDL_Q8_COL(0);
                                xp++; w0++; w1++; w2++; w3++;
                            }
                        }
                        const int16_t *m = mw + g;
                        a0 += (int64_t)m[0] * p0;
                        a1 += (int64_t)m[gstep] * p1;
                        a2 += (int64_t)m[2 * gstep] * p2;
                        a3 += (int64_t)m[3 * gstep] * p3;
                        i = end;
                    }
                    int o = t * rows + j;
                    tdl_linear_q8_out(out, out32, o, a0, s, bits);
                    tdl_linear_q8_out(out, out32, o + P, a1, s, bits);
                    tdl_linear_q8_out(out, out32, o + 2 * P, a2, s, bits);
                    tdl_linear_q8_out(out, out32, o + 3 * P, a3, s, bits);
                }
            j0 = rows;
        }
        for (int j = j0; j < rows; j++) {
            int32_t base = j * cols;
            const int8_t *wr = w8 + base;
            int64_t acc = 0;
            int i = 0;
            while (i < cols) {
                int32_t g = (base + i) >> 5;
                int end = ((g + 1) << 5) - base;
                if (end > cols) end = cols;
                int32_t part = 0;
                for (; i < end; i++) part += (int32_t)xr[i] * wr[i];
                acc += (int64_t)mw[g] * part;
            }
            tdl_linear_q8_out(out, out32, t * rows + j, acc, s, bits);
        }
    }
}

static inline void tdl_rope(int16_t *v, int32_t pos, int n, int D, int hs, const int16_t *cosq,
                            const int16_t *sinq)
{
    int half = hs / 2;
    for (int t = 0; t < n; t++) {
        const int16_t *cr = cosq + (pos + t) * half, *sr = sinq + (pos + t) * half;
        int16_t *vr = v + t * D;
        for (int k = 0; k < D / 2; k++) {
            int32_t x0 = vr[2 * k], x1 = vr[2 * k + 1], c = cr[k % half], s = sr[k % half];
            vr[2 * k] = (int16_t)tdl_sat(tdl_rsr(x0 * c - x1 * s, 14), 16);
            vr[2 * k + 1] = (int16_t)tdl_sat(tdl_rsr(x0 * s + x1 * c, 14), 16);
        }
    }
}

static inline void tdl_residual_add(int16_t *x, const int16_t *y, int n, int D, int bits)
{
    for (int i = 0; i < n * D; i++) x[i] = (int16_t)tdl_sat((int32_t)x[i] + y[i], bits);
}

static inline void tdl_last_row(const int16_t *x, int n, int D, int16_t *out)
{
    for (int i = 0; i < D; i++) out[i] = x[(n - 1) * D + i];
}

static inline void tdl_swiglu_q8(const int16_t *h1, const int16_t *h3, int n, int H, int frac_bits,
                                 const int32_t *sig, tdl_scale c, int32_t qmax, int8_t *g8, int32_t *F)
{
    /* all in 32 bits: |h sv| <= 2^30, |silu| <= 2^15, |g| <= 2^30 (the golden's int64 values) */
    int32_t g[H];
    int k = frac_bits - 5;
    int32_t half = k > 0 ? 1 << (k - 1) : 0;
    for (int t = 0; t < n; t++) {
        for (int i = 0; i < H; i++) {
            int32_t h = h1[t * H + i];
            int32_t idx = (h >> k) + 512, f = h & ((1 << k) - 1), sv;
            if (idx < 0) sv = 0;
            else if (idx >= 1024) sv = 32768;
            else sv = sig[idx] + (((sig[idx + 1] - sig[idx]) * f + half) >> k);
            int32_t silu = (h * sv + (1 << 14)) >> 15;
            g[i] = silu * h3[t * H + i];
        }
        tdl_dyn_q8_32(g, H, c, qmax, g8 + t * H, F + 2 * t);
    }
}

#include "llama_att.h"
#endif
