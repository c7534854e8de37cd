/* MaxPool / AveragePool (and the global pools as one window over the whole plane), NCHW, over
 * P = N*C planes of H x W. Reference form; literals at every call site.
 *
 * Window of output (oh, ow): rows oh*SH - PT + kh*DH, columns likewise; positions outside the input
 * are padding. AveragePool divides by the padded window size clipped to the padded input
 * (count_include_pad = 1, as onnxruntime with ceil_mode) or by the number of real inputs (0). */
#ifndef TD_POOL_H
#define TD_POOL_H
#include "td_common.h"

#define TD_POOL_WINDOW_LOOPS(BODY)                                                            \
    for (int kh = 0; kh < KH; kh++) {                                                         \
        const int ih = oh * SH - PT + kh * DH;                                                \
        if (ih < 0 || ih >= H) continue;                                                      \
        for (int kw = 0; kw < KW; kw++) {                                                     \
            const int iw = ow * SW - PL + kw * DW;                                            \
            if (iw < 0 || iw >= W) continue;                                                  \
            BODY;                                                                             \
        }                                                                                     \
    }

/* divisor of AveragePool at (oh, ow); DH = DW = 1 */
static inline int td_pool_count(int oh, int ow, int H, int W, int KH, int KW, int SH, int SW,
                                int PT, int PL, int PB, int PR, int include_pad)
{
    int hs = oh * SH - PT, ws = ow * SW - PL;
    int he = hs + KH < H + PB ? hs + KH : H + PB, we = ws + KW < W + PR ? ws + KW : W + PR;
    if (include_pad) return (he - hs) * (we - ws);
    hs = hs < 0 ? 0 : hs;
    ws = ws < 0 ? 0 : ws;
    he = he > H ? H : he;
    we = we > W ? W : we;
    return (he - hs) * (we - ws);
}

#define TD_POOL_ARGS int P, int H, int W, int OH, int OW, int KH, int KW, int SH, int SW,      \
                     int PT, int PL, int DH, int DW

static inline void td_maxpool_f32(const float *x, float *y, TD_POOL_ARGS)
{
    TD_PAR_FOR2(p, P, oh, OH) {   /* (plane, output row) pairs across the cores */
        const float *xp = x + (ptrdiff_t)p * H * W;
        float *yp = y + (ptrdiff_t)p * OH * OW;
        {
            for (int ow = 0; ow < OW; ow++) {
                float acc = -3.402823466e38f;
                int any = 0;
                TD_POOL_WINDOW_LOOPS(float v = xp[ih * W + iw]; if (!any || v > acc || v != v) acc = v; any = 1)
                yp[oh * OW + ow] = acc;
            }
        }
    }
    td_par_sync();
}

static inline void td_avgpool_f32(const float *x, float *y, TD_POOL_ARGS, int PB, int PR, int include_pad)
{
    TD_PAR_FOR2(p, P, oh, OH) {   /* (plane, output row) pairs across the cores */
        const float *xp = x + (ptrdiff_t)p * H * W;
        float *yp = y + (ptrdiff_t)p * OH * OW;
        {
            for (int ow = 0; ow < OW; ow++) {
                float acc = 0.0f;
                TD_POOL_WINDOW_LOOPS(acc += xp[ih * W + iw])
                yp[oh * OW + ow] = acc / (float)td_pool_count(oh, ow, H, W, KH, KW, SH, SW, PT, PL, PB, PR, include_pad);
            }
        }
    }
    td_par_sync();
}

/* int8 max: the maximum is taken on the integers (monotonic), then rescaled once when the output
 * quantization differs (rq = 1): y = clamp(requant(max - x_zp, m, s) + y_zp, lo, hi). */
static inline void td_maxpool_s8(const int8_t *x, int8_t *y, TD_POOL_ARGS, int rq, int32_t x_zp,
                                 int32_t m, int32_t s, int32_t y_zp, int32_t lo, int32_t hi)
{
    TD_PAR_FOR2(p, P, oh, OH) {   /* (plane, output row) pairs across the cores */
        const int8_t *xp = x + (ptrdiff_t)p * H * W;
        int8_t *yp = y + (ptrdiff_t)p * OH * OW;
        {
            for (int ow = 0; ow < OW; ow++) {
                int32_t acc = -128;
                TD_POOL_WINDOW_LOOPS(if (xp[ih * W + iw] > acc) acc = xp[ih * W + iw])
                acc = rq ? td_requant(acc - x_zp, m, s) + y_zp : acc;
                yp[oh * OW + ow] = (int8_t)td_clamp(acc, lo, hi);
            }
        }
    }
    td_par_sync();
}

/* int8 average: acc = sum (x - x_zp) over the real inputs; the divisor c selects a multiplier
 * m[c - cmin], s[c - cmin] = sx / (sy * c), so there is one rounding per output. */
static inline void td_avgpool_s8(const int8_t *x, int8_t *y, TD_POOL_ARGS, int PB, int PR,
                                 int include_pad, int32_t x_zp, const int32_t *m, const int8_t *s,
                                 int cmin, int32_t y_zp, int32_t lo, int32_t hi)
{
    TD_PAR_FOR2(p, P, oh, OH) {   /* (plane, output row) pairs across the cores */
        const int8_t *xp = x + (ptrdiff_t)p * H * W;
        int8_t *yp = y + (ptrdiff_t)p * OH * OW;
        {
            for (int ow = 0; ow < OW; ow++) {
                int32_t acc = 0;
                TD_POOL_WINDOW_LOOPS(acc += (int32_t)xp[ih * W + iw] - x_zp)
                const int c = td_pool_count(oh, ow, H, W, KH, KW, SH, SW, PT, PL, PB, PR, include_pad) - cmin;
                yp[oh * OW + ow] = (int8_t)td_clamp(td_requant(acc, m[c], s[c]) + y_zp, lo, hi);
            }
        }
    }
    td_par_sync();
}
#endif
