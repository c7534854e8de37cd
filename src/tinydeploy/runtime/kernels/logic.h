/* Comparisons, boolean logic and bitwise ops with numpy broadcasting (strides from ops/nd.py).
 * Booleans are uint8 0/1. Instantiated per element type; unused static inline code costs nothing. */
#ifndef TD_LOGIC_H
#define TD_LOGIC_H
#include "td_nd.h"

#define TD_DEFINE_COMPARE(SUFFIX, T)                                                           \
TD_DEFINE_BINARY(td_equal_##SUFFIX, T, T, uint8_t, va == vb)                                   \
TD_DEFINE_BINARY(td_less_##SUFFIX, T, T, uint8_t, va < vb)                                     \
TD_DEFINE_BINARY(td_less_equal_##SUFFIX, T, T, uint8_t, va <= vb)                              \
TD_DEFINE_BINARY(td_greater_##SUFFIX, T, T, uint8_t, va > vb)                                  \
TD_DEFINE_BINARY(td_greater_equal_##SUFFIX, T, T, uint8_t, va >= vb)

TD_DEFINE_COMPARE(f32, float)
TD_DEFINE_COMPARE(f64, double)
TD_DEFINE_COMPARE(s8, int8_t)
TD_DEFINE_COMPARE(u8, uint8_t)
TD_DEFINE_COMPARE(s16, int16_t)
TD_DEFINE_COMPARE(u16, uint16_t)
TD_DEFINE_COMPARE(s32, int32_t)
TD_DEFINE_COMPARE(u32, uint32_t)
TD_DEFINE_COMPARE(s64, int64_t)
TD_DEFINE_COMPARE(u64, uint64_t)

TD_DEFINE_BINARY(td_and_b8, uint8_t, uint8_t, uint8_t, va && vb)
TD_DEFINE_BINARY(td_or_b8, uint8_t, uint8_t, uint8_t, va || vb)
TD_DEFINE_BINARY(td_xor_b8, uint8_t, uint8_t, uint8_t, (va != 0) != (vb != 0))

static inline void td_not_b8(const uint8_t *x, uint8_t *y, int32_t n)
{
    for (int32_t i = 0; i < n; i++) y[i] = (uint8_t)!x[i];
}

/* Bitwise ops on integers; BitShift on unsigned integers (shift counts >= width give 0, as the
 * ONNX reference computes it with numpy). */
#define TD_DEFINE_BITWISE(SUFFIX, T)                                                           \
TD_DEFINE_BINARY(td_bitwise_and_##SUFFIX, T, T, T, va & vb)                                    \
TD_DEFINE_BINARY(td_bitwise_or_##SUFFIX, T, T, T, va | vb)                                     \
TD_DEFINE_BINARY(td_bitwise_xor_##SUFFIX, T, T, T, va ^ vb)                                    \
static inline void td_bitwise_not_##SUFFIX(const T *x, T *y, int32_t n)                        \
{                                                                                              \
    for (int32_t i = 0; i < n; i++) y[i] = (T)~x[i];                                           \
}

TD_DEFINE_BITWISE(s8, int8_t)
TD_DEFINE_BITWISE(u8, uint8_t)
TD_DEFINE_BITWISE(s16, int16_t)
TD_DEFINE_BITWISE(u16, uint16_t)
TD_DEFINE_BITWISE(s32, int32_t)
TD_DEFINE_BITWISE(u32, uint32_t)
TD_DEFINE_BITWISE(s64, int64_t)
TD_DEFINE_BITWISE(u64, uint64_t)

#define TD_DEFINE_SHIFT(SUFFIX, T, BITS)                                                       \
TD_DEFINE_BINARY(td_shl_##SUFFIX, T, T, T, vb >= BITS ? 0 : (T)(va << vb))                     \
TD_DEFINE_BINARY(td_shr_##SUFFIX, T, T, T, vb >= BITS ? 0 : (T)(va >> vb))

TD_DEFINE_SHIFT(u8, uint8_t, 8)
TD_DEFINE_SHIFT(u16, uint16_t, 16)
TD_DEFINE_SHIFT(u32, uint32_t, 32)
TD_DEFINE_SHIFT(u64, uint64_t, 64)

/* signed: left shifts the two's complement bits (through the unsigned type), right shifts
 * arithmetically; out-of-range counts give 0, or -1 for a negative value shifted right */
#define TD_DEFINE_SSHIFT(SUFFIX, T, U, BITS)                                                   \
TD_DEFINE_BINARY(td_shl_##SUFFIX, T, T, T, (vb < 0 || vb >= BITS) ? 0 : (T)(U)((U)va << vb))   \
TD_DEFINE_BINARY(td_shr_##SUFFIX, T, T, T,                                                     \
                 (vb < 0 || vb >= BITS) ? (va < 0 ? -1 : 0) : (va < 0 ? ~(~va >> vb) : va >> vb))

TD_DEFINE_SSHIFT(s8, int8_t, uint8_t, 8)
TD_DEFINE_SSHIFT(s16, int16_t, uint16_t, 16)
TD_DEFINE_SSHIFT(s32, int32_t, uint32_t, 32)
TD_DEFINE_SSHIFT(s64, int64_t, uint64_t, 64)
#endif
