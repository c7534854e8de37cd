/* NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss (float32) over x[N][C][D], target[N][D].
 * A target equal to ignore_index (when has_ignore) or outside [0, C) contributes nothing.
 * Reductions: 0 none (y[N][D]), 1 sum, 2 mean = Σ w·loss / Σ w over counted elements. */
#ifndef TD_LOSS_H
#define TD_LOSS_H
#include "td_common.h"
#include "td_math.h"

#define TD_DEFINE_LOSS(IS, TI)                                                                 \
/* log-probabilities given (lp); SCE passes lp = NULL and scores x: log_softmax per (n, d) */  \
static inline void td_loss_f32_##IS(const float *x, int softmax, const TI *t, const float *w, float *y,  \
                                    float *log_prob, int32_t N, int32_t C, int32_t D, int64_t ignore,   \
                                    int has_ignore, int reduction)                             \
{                                                                                              \
    float sum = 0.0f, wsum = 0.0f, cs = 0.0f, cw = 0.0f;  /* Kahan: long sums stay float-exact */  \
    for (int32_t n = 0; n < N; n++)                                                            \
        for (int32_t d = 0; d < D; d++) {                                                      \
            const float *col = x + (ptrdiff_t)n * C * D + d;                                   \
            float shift = 0.0f;                                                                \
            if (softmax) {   /* log p_c = x_c - max - log Σ exp(x - max) */                    \
                float mx = col[0], se = 0.0f;                                                  \
                for (int32_t c = 1; c < C; c++) mx = col[(ptrdiff_t)c * D] > mx ? col[(ptrdiff_t)c * D] : mx; \
                for (int32_t c = 0; c < C; c++) se += TD_EXPF(col[(ptrdiff_t)c * D] - mx);     \
                shift = mx + TD_LOGF(se);                                                      \
                if (log_prob)                                                                  \
                    for (int32_t c = 0; c < C; c++)                                            \
                        log_prob[(ptrdiff_t)n * C * D + (ptrdiff_t)c * D + d] = col[(ptrdiff_t)c * D] - shift; \
            }                                                                                  \
            const int64_t k = (int64_t)t[(ptrdiff_t)n * D + d];                                \
            float l = 0.0f, wk = 0.0f;                                                         \
            if (!(has_ignore && k == ignore) && k >= 0 && k < C) {                             \
                wk = w ? w[k] : 1.0f;                                                          \
                l = -(col[(ptrdiff_t)k * D] - shift) * wk;                                     \
            }                                                                                  \
            if (reduction == 0) y[(ptrdiff_t)n * D + d] = l;                                   \
            float ys_ = l - cs, ts_ = sum + ys_;                                               \
            cs = (ts_ - sum) - ys_;                                                            \
            sum = ts_;                                                                         \
            float yw_ = wk - cw, tw_ = wsum + yw_;                                             \
            cw = (tw_ - wsum) - yw_;                                                           \
            wsum = tw_;                                                                        \
        }                                                                                      \
    if (reduction == 1) y[0] = sum;                                                            \
    if (reduction == 2) y[0] = sum / wsum;                                                     \
}
TD_DEFINE_LOSS(i32, int32_t)
TD_DEFINE_LOSS(i64, int64_t)
#endif
