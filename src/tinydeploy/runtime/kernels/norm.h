/* LayerNormalization and RMSNormalization over the last D elements of each of `rows` rows. */
#ifndef TD_NORM_H
#define TD_NORM_H
#include "td_common.h"
#include "eltwise.h"   /* TD_SQRTF */
#include "td_dynq.h"

/* y = (x - mean) / sqrt(var + eps) * gamma + beta;  rms: y = x / sqrt(mean(x^2) + eps) * gamma */
static inline void td_layernorm_f32(const float *x, const float *gamma, const float *beta, float *y,
                                    int rows, int D, float eps, int rms)
{
    for (int r = 0; r < rows; r++) {
        const float *xr = x + (ptrdiff_t)r * D;
        float *yr = y + (ptrdiff_t)r * D;
        float mean = 0.0f, var = 0.0f;
        if (!rms) {
            for (int i = 0; i < D; i++) mean += xr[i];
            mean /= (float)D;
        }
        for (int i = 0; i < D; i++) var += (xr[i] - mean) * (xr[i] - mean);
        const float inv = 1.0f / TD_SQRTF(var / (float)D + eps);
        for (int i = 0; i < D; i++)
            yr[i] = (xr[i] - mean) * inv * gamma[i] + (beta ? beta[i] : 0.0f);
    }
}

/* floor(2^30 / sqrt(w)) for w in [2^26, 2^28): the largest R with R^2 w <= 2^60, by binary search
 * over its 18 bits (R^2 w < 2^64 throughout). Result in (2^16, 2^17]. */
static inline uint32_t td_rsqrt_q30(uint64_t w)
{
    uint32_t R = 0;
    for (int b = 17; b >= 0; b--) {
        const uint64_t t = R | (1u << b);
        if (t * t * w <= ((uint64_t)1 << 60)) R = (uint32_t)t;
    }
    return R;
}

/* int8 normalisation, integer only (see ops/norm.py for the derivation):
 *   LN:  c_i = D x_i - sum x,        V = D sum x^2 - (sum x)^2
 *   RMS: c_i = D (x_i - zx),         V = D sum (x - zx)^2
 *   W = V 2^16 + E16 (E16 = D^2 eps / sx^2 2^16),  W' = W 4^-j in [2^26, 2^28)
 *   N_i = round(c_i R 2^-(6+j)) = n_i 2^16        (n_i the normalised value, R = td_rsqrt_q30(W'))
 *   y_i = clamp((N_i Mg_i + Bq_i + 2^(Sg-1)) >> Sg, lo, hi)   Mg_i = gamma_i/sy 2^(Sg-16),
 *                                                            Bq_i = (beta_i/sy + zy) 2^Sg */
static inline void td_layernorm_s8(const int8_t *x, int8_t *y, int rows, int D, int rms, int32_t zx,
                                   int64_t E16, const int32_t *Mg, const int64_t *Bq, int Sg,
                                   int32_t lo, int32_t hi)
{
    TD_PAR_FOR(r, rows) {   /* rows across the cores */
        const int8_t *xr = x + (ptrdiff_t)r * D;
        int8_t *yr = y + (ptrdiff_t)r * D;
        int32_t sum = 0, sq = 0;
        const int32_t z = rms ? zx : 0;
        for (int i = 0; i < D; i++) {
            const int32_t d = (int32_t)xr[i] - z;
            sum += d;
            sq += d * d;
        }
        const int64_t V = (int64_t)D * sq - (rms ? 0 : (int64_t)sum * sum);
        uint64_t w = ((uint64_t)V << 16) + (uint64_t)E16;
        int j = 0;
        if (w == 0) j = 64;   /* every c_i is 0: N_i = 0 */
        while (j < 64 && w >= ((uint64_t)1 << 28)) { w >>= 2; j++; }
        while (j < 64 && w < ((uint64_t)1 << 26)) { w <<= 2; j--; }
        const int sh = 6 + j;
        const int64_t R = j < 64 ? (int64_t)td_rsqrt_q30(w) : 0;
        const int64_t half = (int64_t)1 << (Sg - 1);
        for (int i = 0; i < D; i++) {
            const int64_t c = (int64_t)D * ((int32_t)xr[i] - z) - (rms ? 0 : sum);
            const int64_t N = sh >= 1 && sh < 64 ? (c * R + ((int64_t)1 << (sh - 1))) >> sh : 0;
            const int64_t v = (N * Mg[i] + Bq[i] + half) >> Sg;
            yr[i] = (int8_t)(v < lo ? lo : (v > hi ? hi : v));
        }
    }
    td_par_sync();
}

/* QRMSNormDyn (ops/norm.py): int16 rows -> int8 z8 = quantize(x * G) and the run-time scale
 * F = M * (1 / rms) * c per row (1/rms is one scalar per row, so it goes into F, not into z8). */
/* floor(sqrt(t)) for 0 < t < 2^32: Newton's iteration from 2^ceil(bits / 2) >= sqrt(t) decreases to
 * the floor (RV32M divides in one instruction: a few steps instead of 16 bit by bit) */
static inline uint32_t td_isqrt(uint32_t t)
{
    uint32_t x = (uint32_t)1 << ((td_bitlen(t) + 1) / 2), y = (x + t / x) >> 1;
    while (y < x) { x = y; y = (x + t / x) >> 1; }
    return x;
}
/* intmath.inv_sqrt_scale: t = T 2^-d in [2^27, 2^29), s = isqrt(t) in [11585, 23170], and
 * (2^44 + s / 2) / s < 2^30 by long division in two base-2^16 digits (each below 2^16 as s < 2^15) */
static inline td_scale td_inv_sqrt(int64_t T)
{
    int32_t d = td_bitlen((uint64_t)T) - 29;
    d += d & 1;
    uint32_t t = (uint32_t)(d >= 0 ? T >> d : T << (-d)), s = td_isqrt(t);
    uint32_t n = ((uint32_t)1 << 28) + (s >> 17), lo = (s / 2) & 0xFFFF;   /* (2^44 + s/2) = n 2^16 + lo */
    uint32_t q1 = n / s, q0 = (((n - q1 * s) << 16) | lo) / s;
    return td_scale_norm((int64_t)(q1 << 16 | q0), 44 + d / 2);
}
/* channels [lo, hi) of one row; shared: the other cores do the rest of the row (sums and maxima
 * combined by td_par_reduce2) and core 0 writes F */
static inline void td_rmsnorm_row(const int16_t *xr, int D, int lo, int hi, int shared, const int16_t *G,
                                  int64_t epsn, td_scale c, int32_t qmax, int8_t *zr, int32_t *F)
{
    int32_t z[hi - lo + 1];
    uint64_t ss = 0, M;
    uint32_t m = 0;   /* 32-bit words in the loop (RV32) */
    for (int i = lo; i < hi; i++) {
        int32_t zi = (int32_t)xr[i] * G[i];
        z[i - lo] = zi;
        ss += (uint32_t)((int32_t)xr[i] * xr[i]);
        uint32_t a = td_abs32(zi);
        m = a > m ? a : m;
    }
    M = m;
    (void)D;
    if (shared) td_par_reduce2(&ss, &M);
    td_quantize_vec32m(z, hi - lo, (uint32_t)M, qmax, zr + lo, 0);
    if (!shared || td_par_me() == 0) {
        int64_t T = epsn + (int64_t)ss;
        td_scale f = td_scale_mul(td_scale_mul(td_scale_norm((int64_t)M, 0), td_inv_sqrt(T < 1 ? 1 : T)), c);
        F[0] = f.m; F[1] = f.e;
    }
}
/* rows across the cores, or for fewer rows than cores (a decode step) each row's channels */
static inline void td_rmsnorm_dyn(const int16_t *x, int n, int D, const int16_t *G, int64_t epsn,
                                  td_scale c, int32_t qmax, int8_t *z8, int32_t *F)
{
    if (n >= td_par_cores()) {
        TD_PAR_FOR(t, n) td_rmsnorm_row(x + t * D, D, 0, D, 0, G, epsn, c, qmax, z8 + t * D, F + 2 * t);
    } else {
        for (int t = 0; t < n; t++)
            td_rmsnorm_row(x + t * D, D, td_par_lo(D), td_par_hi(D), 1, G, epsn, c, qmax, z8 + t * D, F + 2 * t);
    }
    td_par_sync();
}
#endif
