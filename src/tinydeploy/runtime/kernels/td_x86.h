/* SSE2 helpers of the x86-64 host kernels (TD_X86, td_common.h): int16 values times int8 values
 * sign-extended in registers (unpacked with themselves, shifted right 8), 8 products per pmaddwd.
 * Integer sums in another order than the portable C: the same values to the bit. */
#ifndef TD_X86_H
#define TD_X86_H
#include <emmintrin.h>
#include <stdint.h>

/* 8 int8 at w as 8 int16 */
static inline __m128i td_x86_s8x8(const int8_t *w)
{
    __m128i b = _mm_loadl_epi64((const __m128i *)w);
    return _mm_srai_epi16(_mm_unpacklo_epi8(b, b), 8);
}
/* acc + pairwise sums of x[i] w[i], i < 8 */
static inline __m128i td_x86_madd8(__m128i acc, const int16_t *x, const int8_t *w)
{
    return _mm_add_epi32(acc, _mm_madd_epi16(_mm_loadu_si128((const __m128i *)x), td_x86_s8x8(w)));
}
/* the same for i < 16 */
static inline __m128i td_x86_madd16(__m128i acc, const int16_t *x, const int8_t *w)
{
    __m128i b = _mm_loadu_si128((const __m128i *)w);
    acc = _mm_add_epi32(acc, _mm_madd_epi16(_mm_loadu_si128((const __m128i *)x), _mm_srai_epi16(_mm_unpacklo_epi8(b, b), 8)));
    return _mm_add_epi32(acc, _mm_madd_epi16(_mm_loadu_si128((const __m128i *)(x + 8)),
                                             _mm_srai_epi16(_mm_unpackhi_epi8(b, b), 8)));
}
/* [sum of a0's lanes, of a1's, of a2's, of a3's]: one transpose-add */
static inline __m128i td_x86_sum4(__m128i a0, __m128i a1, __m128i a2, __m128i a3)
{
    __m128i t0 = _mm_unpacklo_epi32(a0, a1), t1 = _mm_unpackhi_epi32(a0, a1);
    __m128i t2 = _mm_unpacklo_epi32(a2, a3), t3 = _mm_unpackhi_epi32(a2, a3);
    return _mm_add_epi32(_mm_add_epi32(_mm_unpacklo_epi64(t0, t2), _mm_unpackhi_epi64(t0, t2)),
                         _mm_add_epi32(_mm_unpacklo_epi64(t1, t3), _mm_unpackhi_epi64(t1, t3)));
}
/* lane i (a constant) */
#define TD_X86_LANE(v, i) _mm_cvtsi128_si32(_mm_shuffle_epi32((v), (i)))
#endif
