/* Reductions over any set of axes. The compiler merges the input's dims into at most three kept
 * dims (K0..K2, input strides ks*) and three reduced dims (R0..R2, strides rs*); the output is
 * contiguous over the kept dims. `op` is a literal, so each call specialises to one reduction. */
#ifndef TD_REDUCE_H
#define TD_REDUCE_H
#include "td_common.h"
#include "eltwise.h"   /* TD_SQRTF; expf / logf */

enum { TD_RED_SUM, TD_RED_MEAN, TD_RED_MAX, TD_RED_MIN, TD_RED_PROD, TD_RED_SUMSQ, TD_RED_L1, TD_RED_L2,
       TD_RED_LOGSUM, TD_RED_LOGSUMEXP };

#define TD_REDUCE_ARGS int K0, int K1, int K2, int ks0, int ks1, int ks2,                     \
                       int R0, int R1, int R2, int rs0, int rs1, int rs2

#define TD_REDUCE_LOOPS(BODY)                                                                  \
    ptrdiff_t k = 0;                                                                           \
    for (int o0 = 0; o0 < K0; o0++)                                                            \
        for (int o1 = 0; o1 < K1; o1++)                                                        \
            for (int o2 = 0; o2 < K2; o2++, k++) {                                             \
                const ptrdiff_t base = (ptrdiff_t)o0 * ks0 + (ptrdiff_t)o1 * ks1 + (ptrdiff_t)o2 * ks2; \
                BODY;                                                                          \
            }

#define TD_REDUCE_INNER(STMT)                                                                  \
    for (int r0 = 0; r0 < R0; r0++)                                                            \
        for (int r1 = 0; r1 < R1; r1++)                                                        \
            for (int r2 = 0; r2 < R2; r2++) {                                                  \
                const ptrdiff_t i_ = base + (ptrdiff_t)r0 * rs0 + (ptrdiff_t)r1 * rs1 + (ptrdiff_t)r2 * rs2; \
                STMT;                                                                          \
            }

static inline void td_reduce_f32(const float *x, float *y, TD_REDUCE_ARGS, int op)
{
    TD_REDUCE_LOOPS(
        /* the identity of max / min, so an empty reduced set gives -inf / +inf as ONNX specifies */
        float mx = op == TD_RED_MIN ? __builtin_inff() : -__builtin_inff();
        float s = op == TD_RED_PROD ? 1.0f : 0.0f;
        float acc;
        if (op == TD_RED_MAX || op == TD_RED_MIN || op == TD_RED_LOGSUMEXP)   /* NaN propagates */
            TD_REDUCE_INNER(const float v = x[i_];
                            if (v != v || (op == TD_RED_MIN ? v < mx : v > mx)) mx = v)
        if (op != TD_RED_MAX && op != TD_RED_MIN)
            TD_REDUCE_INNER(const float v = x[i_];
                            switch (op) {
                            case TD_RED_PROD: s *= v; break;
                            case TD_RED_SUMSQ: case TD_RED_L2: s += v * v; break;
                            case TD_RED_L1: s += v < 0.0f ? -v : v; break;
                            case TD_RED_LOGSUMEXP: s += expf(v - mx); break;
                            default: s += v; break;
                            })
        switch (op) {
        case TD_RED_MAX: case TD_RED_MIN: acc = mx; break;
        case TD_RED_MEAN: acc = s / (float)(R0 * R1 * R2); break;
        case TD_RED_L2: acc = TD_SQRTF(s); break;
        case TD_RED_LOGSUM: acc = logf(s); break;
        case TD_RED_LOGSUMEXP: acc = mx + logf(s); break;
        default: acc = s; break;
        }
        y[k] = acc)
}

/* int8: op SUM / MEAN: acc = sum (x - zx), y = requant(acc, m, s) + zy with m 2^-s = sx / (sy n) for
 * the mean (n reduced elements) or sx / sy for the sum: one rounding. MAX / MIN: the extreme
 * integer, rescaled once: y = requant(x* - zx, m, s) + zy (m 2^-s = sx / sy). */
static inline void td_reduce_s8(const int8_t *x, int8_t *y, TD_REDUCE_ARGS, int op, int32_t zx,
                                int32_t m, int32_t s, int32_t zy, int32_t lo, int32_t hi)
{
    TD_REDUCE_LOOPS(
        int32_t acc = (op == TD_RED_MAX || op == TD_RED_MIN) ? x[base] : 0;
        TD_REDUCE_INNER(const int32_t v = x[i_];
                        if (op == TD_RED_MAX) acc = v > acc ? v : acc;
                        else if (op == TD_RED_MIN) acc = v < acc ? v : acc;
                        else acc += v - zx)
        if (op == TD_RED_MAX || op == TD_RED_MIN) acc -= zx;
        y[k] = (int8_t)td_clamp(td_requant(acc, m, s) + zy, lo, hi))
}
#endif
