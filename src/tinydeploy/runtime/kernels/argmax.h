/* ArgMax / ArgMin (int64 indices, first or last extreme) and Hardmax (1 at the first maximum)
 * along an axis of n elements (outer × n × inner). NaN compares false: it never wins. */
#ifndef TD_ARGMAX_H
#define TD_ARGMAX_H
#include "td_common.h"

#define TD_DEFINE_ARG(S, T)                                                                    \
static inline void td_arg_##S(const T *x, int64_t *y, int32_t outer, int32_t n, int32_t inner, \
                              int want_max, int last)                                          \
{                                                                                              \
    for (int32_t o = 0; o < outer; o++)                                                        \
        for (int32_t i = 0; i < inner; i++) {                                                  \
            const T *col = x + (ptrdiff_t)o * n * inner + i;                                   \
            int32_t best = 0;                                                                  \
            for (int32_t j = 1; j < n; j++) {                                                  \
                const T v = col[(ptrdiff_t)j * inner], b = col[(ptrdiff_t)best * inner];       \
                const int better = want_max ? (last ? v >= b : v > b) : (last ? v <= b : v < b); \
                if (better) best = j;                                                          \
            }                                                                                  \
            y[(ptrdiff_t)o * inner + i] = best;                                                \
        }                                                                                      \
}                                                                                              \
static inline void td_hardmax_##S(const T *x, T *y, int32_t outer, int32_t n, int32_t inner)   \
{                                                                                              \
    for (int32_t o = 0; o < outer; o++)                                                        \
        for (int32_t i = 0; i < inner; i++) {                                                  \
            const ptrdiff_t base = (ptrdiff_t)o * n * inner + i;                               \
            int32_t best = 0;                                                                  \
            for (int32_t j = 1; j < n; j++)                                                    \
                if (x[base + (ptrdiff_t)j * inner] > x[base + (ptrdiff_t)best * inner]) best = j; \
            for (int32_t j = 0; j < n; j++) y[base + (ptrdiff_t)j * inner] = (T)(j == best);   \
        }                                                                                      \
}
TD_DEFINE_ARG(f32, float)
TD_DEFINE_ARG(f64, double)
TD_DEFINE_ARG(s8, int8_t)
TD_DEFINE_ARG(u8, uint8_t)
TD_DEFINE_ARG(s16, int16_t)
TD_DEFINE_ARG(u16, uint16_t)
TD_DEFINE_ARG(s32, int32_t)
TD_DEFINE_ARG(u32, uint32_t)
TD_DEFINE_ARG(s64, int64_t)
TD_DEFINE_ARG(u64, uint64_t)
#endif
