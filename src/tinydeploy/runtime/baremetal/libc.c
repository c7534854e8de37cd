/* The few libc functions a freestanding build needs.
 *
 * clang emits calls to memcpy/memset/memmove/memcmp on its own (struct copies, loop idioms), even
 * with -ffreestanding. zig's compiler_rt also carries weak copies of the mem* functions; these
 * strong definitions win at link time so the instruction counts do not depend on zig's version.
 * Soft-float (__addsf3 ...) and 64-bit division helpers (__divdi3 ...) come from zig's compiler_rt,
 * which `zig cc` links automatically.
 *
 * LLVM does not turn the loops below into calls to the function being defined, so they do not
 * recurse (checked in tests/test_target_rv32.py by running them).
 */
#include <stdint.h>

#include "string.h"

#define ALIGNED4(p) ((((uintptr_t)(p)) & 3u) == 0)

/* Forward copy without `restrict`, so memmove may use it for overlapping dst < src. */
static void *copy_forward(void *dst, const void *src, size_t n)
{
    unsigned char *d = dst;
    const unsigned char *s = src;
    if (ALIGNED4(d) && ALIGNED4(s)) {
        for (; n >= 16; n -= 16, d += 16, s += 16) {
            uint32_t a = ((const uint32_t *)s)[0], b = ((const uint32_t *)s)[1];
            uint32_t c = ((const uint32_t *)s)[2], e = ((const uint32_t *)s)[3];
            ((uint32_t *)d)[0] = a; ((uint32_t *)d)[1] = b;
            ((uint32_t *)d)[2] = c; ((uint32_t *)d)[3] = e;
        }
        for (; n >= 4; n -= 4, d += 4, s += 4)
            *(uint32_t *)d = *(const uint32_t *)s;
    }
    while (n--)
        *d++ = *s++;
    return dst;
}

void *memcpy(void *restrict dst, const void *restrict src, size_t n)
{
    return copy_forward(dst, src, n);
}

void *memset(void *dst, int c, size_t n)
{
    unsigned char *d = dst;
    uint32_t w = (uint8_t)c * 0x01010101u;
    while (n && !ALIGNED4(d)) {
        *d++ = (unsigned char)c;
        n--;
    }
    for (; n >= 16; n -= 16, d += 16) {
        ((uint32_t *)d)[0] = w; ((uint32_t *)d)[1] = w;
        ((uint32_t *)d)[2] = w; ((uint32_t *)d)[3] = w;
    }
    for (; n >= 4; n -= 4, d += 4)
        *(uint32_t *)d = w;
    while (n--)
        *d++ = (unsigned char)c;
    return dst;
}

void *memmove(void *dst, const void *src, size_t n)
{
    unsigned char *d = dst;
    const unsigned char *s = src;
    if (d <= s || d >= s + n)
        return copy_forward(dst, src, n);
    while (n--)
        d[n] = s[n];
    return dst;
}

int memcmp(const void *a, const void *b, size_t n)
{
    const unsigned char *x = a, *y = b;
    for (; n; n--, x++, y++)
        if (*x != *y)
            return *x - *y;
    return 0;
}

size_t strlen(const char *s)
{
    const char *p = s;
    while (*p)
        p++;
    return (size_t)(p - s);
}
