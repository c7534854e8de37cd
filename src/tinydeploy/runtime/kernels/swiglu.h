/* QSwiGLU (ops/swiglu.py): g = silu(h1) * h3 with the sigmoid from a Q15 table (linear
 * interpolation), then per-row quantization to int8 with its run-time scale. First n rows. */
#ifndef TD_SWIGLU_H
#define TD_SWIGLU_H
#include "td_dynq.h"

/* channels [lo, hi) of one row; shared: as td_rmsnorm_row (maxima combined, core 0 writes F).
 * All in 32 bits: |h sv| <= 2^30, |silu| <= 2^15, |g| <= 2^30 (the golden's int64 values). */
static inline void td_swiglu_row(const int16_t *h1, const int16_t *h3, int lo, int hi, int shared, int k,
                                 const int32_t *sig, td_scale c, int32_t qmax, int8_t *g8, int32_t *F)
{
    int32_t g[hi - lo + 1];
    int32_t half = k > 0 ? 1 << (k - 1) : 0;
    uint64_t M, none = 0;
    uint32_t m = 0;   /* 32-bit words in the loop (RV32) */
    for (int i = lo; i < hi; i++) {
        int32_t h = h1[i];
        int32_t idx = (h >> k) + 512, f = h & ((1 << k) - 1), sv;
        if (idx < 0) sv = 0;
        else if (idx >= 1024) sv = 32768;
        else sv = sig[idx] + (((sig[idx + 1] - sig[idx]) * f + half) >> k);
        int32_t silu = (h * sv + (1 << 14)) >> 15, gi = silu * h3[i];
        g[i - lo] = gi;
        uint32_t a = td_abs32(gi);
        m = a > m ? a : m;
    }
    M = m;
    if (shared) td_par_reduce2(&none, &M);
    td_quantize_vec32m(g, hi - lo, (uint32_t)M, qmax, g8 + lo, 0);
    if (!shared || td_par_me() == 0) {
        td_scale f = td_scale_mul(td_scale_norm((int64_t)M, 0), c);
        F[0] = f.m; F[1] = f.e;
    }
}
/* rows across the cores, or for fewer rows than cores (a decode step) each row's channels */
static inline void td_swiglu_dyn(const int16_t *h1, const int16_t *h3, int n, int H, int frac_bits,
                                 const int32_t *sig, td_scale c, int32_t qmax, int8_t *g8, int32_t *F)
{
    int k = frac_bits - 5;
    if (n >= td_par_cores()) {
        TD_PAR_FOR(t, n) td_swiglu_row(h1 + t * H, h3 + t * H, 0, H, 0, k, sig, c, qmax, g8 + t * H, F + 2 * t);
    } else {
        for (int t = 0; t < n; t++)
            td_swiglu_row(h1 + t * H, h3 + t * H, td_par_lo(H), td_par_hi(H), 1, k, sig, c, qmax, g8 + t * H,
                          F + 2 * t);
    }
    td_par_sync();
}
#endif
