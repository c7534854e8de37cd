/* CumSum / CumProd along an axis (outer × n × inner): inclusive or exclusive, forward or reverse;
 * the running sum (product) is kept in the element type, in order, as numpy.cumsum does. */
#ifndef TD_CUMSUM_H
#define TD_CUMSUM_H
#include "td_common.h"

#define TD_DEFINE_CUMSUM(S, T)                                                                 \
static inline void td_cumsum_##S(const T *x, T *y, int32_t outer, int32_t n, int32_t inner,    \
                                 int exclusive, int reverse, int prod)                         \
{                                                                                              \
    for (int32_t o = 0; o < outer; o++)                                                        \
        for (int32_t i = 0; i < inner; i++) {                                                  \
            T acc = prod ? 1 : 0;                                                              \
            for (int32_t j = 0; j < n; j++) {                                                  \
                const ptrdiff_t k = ((ptrdiff_t)o * n + (reverse ? n - 1 - j : j)) * inner + i; \
                const T v = x[k];                                                              \
                if (exclusive) y[k] = acc;                                                     \
                acc = prod ? (T)(acc * v) : (T)(acc + v);                                      \
                if (!exclusive) y[k] = acc;                                                    \
            }                                                                                  \
        }                                                                                      \
}
TD_DEFINE_CUMSUM(f32, float)
TD_DEFINE_CUMSUM(f64, double)
TD_DEFINE_CUMSUM(s32, int32_t)
TD_DEFINE_CUMSUM(u32, uint32_t)
TD_DEFINE_CUMSUM(s64, int64_t)
TD_DEFINE_CUMSUM(u64, uint64_t)
#endif
