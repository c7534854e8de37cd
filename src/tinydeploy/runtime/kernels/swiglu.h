/* QSwiGLU (ops/swiglu.py): g = silu(h1) * h3 with the sigmoid from a Q15 table (linear
 * interpolation), then per-row quantization to int8 with its run-time scale. First n rows. */
#ifndef TD_SWIGLU_H
#define TD_SWIGLU_H
#include "td_dynq.h"

static inline void td_swiglu_dyn(const int16_t *h1, const int16_t *h3, int n, int H, int frac_bits,
                                 const int32_t *sig, td_scale c, int32_t qmax, int8_t *g8, int32_t *F)
{
    /* all in 32 bits: |h sv| <= 2^30, |silu| <= 2^15, |g| <= 2^30 (the golden's int64 values) */
    int32_t g[H];
    int k = frac_bits - 5;
    int32_t half = k > 0 ? 1 << (k - 1) : 0;
    for (int t = 0; t < n; t++) {
        uint32_t M = 0;
        for (int i = 0; i < H; i++) {
            int32_t h = h1[t * H + i];
            int32_t idx = (h >> k) + 512, f = h & ((1 << k) - 1), sv;
            if (idx < 0) sv = 0;
            else if (idx >= 1024) sv = 32768;
            else sv = sig[idx] + (((sig[idx + 1] - sig[idx]) * f + half) >> k);
            int32_t silu = (h * sv + (1 << 14)) >> 15;
            g[i] = silu * h3[t * H + i];
            uint32_t a = td_abs32(g[i]);
            M = a > M ? a : M;
        }
        td_quantize_row32m(g, H, M, c, qmax, g8 + t * H, F + 2 * t);
    }
}
#endif
