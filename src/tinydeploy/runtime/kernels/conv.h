/* Direct NCHW convolution, reference form: shapes are arguments, but every call site passes
 * literals and the kernel is static inline, so the C compiler specialises each layer. */
#ifndef TD_CONV_H
#define TD_CONV_H
#include "td_common.h"
#include "td_fast_conv.h"

#define TD_CONV_LOOPS(ACC_T, LOAD_X, LOAD_W, INIT, STORE)                                       \
    const int CG = C / G, KG = K / G;                                                          \
    TD_PAR_FOR2(k, K, oh, OH) {  /* (channel, output row) pairs across the cores */            \
        const int g = k / KG;                                                                  \
        {                                                                                      \
            for (int ow = 0; ow < OW; ow++) {                                                  \
                ACC_T acc = INIT;                                                              \
                for (int c = 0; c < CG; c++) {                                                 \
                    for (int kh = 0; kh < KH; kh++) {                                          \
                        const int ih = oh * SH - PT + kh * DH;                                 \
                        if (ih < 0 || ih >= H) continue;                                       \
                        for (int kw = 0; kw < KW; kw++) {                                      \
                            const int iw = ow * SW - PL + kw * DW;                             \
                            if (iw < 0 || iw >= W) continue;                                   \
                            acc += LOAD_X(((g * CG + c) * H + ih) * W + iw) *                  \
                                   LOAD_W(((k * CG + c) * KH + kh) * KW + kw);                 \
                        }                                                                      \
                    }                                                                          \
                }                                                                              \
                y[(k * OH + oh) * OW + ow] = STORE;                                            \
            }                                                                                  \
        }                                                                                      \
    }                                                                                          \
    td_par_sync();

static inline void td_conv_f32(const float *x, const float *w, const float *bias, float *y,
                               int C, int H, int W, int K, int OH, int OW, int KH, int KW,
                               int SH, int SW, int PT, int PL, int DH, int DW, int G,
                               float lo, float hi)
{
#define TD_LX(i) x[i]
#define TD_LW(i) w[i]
    TD_CONV_LOOPS(float, TD_LX, TD_LW, (bias ? bias[k] : 0.0f), td_clampf(acc, lo, hi))
#undef TD_LX
#undef TD_LW
}

/* acc = bias + sum (x - x_zp)(w - w_zp); y = clamp(requant(acc, m[k], s[k]) + y_zp, lo, hi) */
static inline void td_conv_s8(const int8_t *x, const int8_t *w, const int32_t *bias, int8_t *y,
                              int C, int H, int W, int K, int OH, int OW, int KH, int KW,
                              int SH, int SW, int PT, int PL, int DH, int DW, int G,
                              int32_t x_zp, int32_t w_zp, const int32_t *m, const int8_t *s,
                              int32_t y_zp, int32_t lo, int32_t hi)
{
#define TD_LX(i) ((int32_t)x[i] - x_zp)
#define TD_LW(i) ((int32_t)w[i] - w_zp)
    TD_CONV_LOOPS(int32_t, TD_LX, TD_LW, (bias ? bias[k] : 0),
                  (int8_t)td_clamp(td_requant(acc, m[k], s[k]) + y_zp, lo, hi))
#undef TD_LX
#undef TD_LW
}

/* ConvInteger: int32 y = sum (x - x_zp)(w - w_zp) for int8 / uint8 operands (padding adds 0) */
#define TD_DEFINE_CONV_INT(SUFFIX, TX, TW)                                                     \
static inline void td_conv_int_##SUFFIX(const TX *x, const TW *w, int32_t *y,                 \
                                        int C, int H, int W, int K, int OH, int OW, int KH,   \
                                        int KW, int SH, int SW, int PT, int PL, int DH, int DW, \
                                        int G, int32_t x_zp, int32_t w_zp)                    \
{                                                                                             \
    TD_CONV_LOOPS(int32_t, TD_LX_INT, TD_LW_INT, 0, acc)                                      \
}
#define TD_LX_INT(i) ((int32_t)x[i] - x_zp)
#define TD_LW_INT(i) ((int32_t)w[i] - w_zp)
TD_DEFINE_CONV_INT(s8s8, int8_t, int8_t)
TD_DEFINE_CONV_INT(u8s8, uint8_t, int8_t)
TD_DEFINE_CONV_INT(s8u8, int8_t, uint8_t)
TD_DEFINE_CONV_INT(u8u8, uint8_t, uint8_t)
#undef TD_LX_INT
#undef TD_LW_INT
#endif
