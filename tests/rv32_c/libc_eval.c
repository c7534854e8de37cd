/* memcpy/memset/memmove/memcmp/strlen on odd sizes and alignments, checked in C. */
#include <stdint.h>
#include "string.h"

uint8_t a[300], b[300];
int failures;

int main(void)
{
    for (int n = 0; n < 70; n += 3)
        for (int off = 0; off < 4; off++) {
            for (int i = 0; i < 300; i++) a[i] = (uint8_t)(i * 7 + 1), b[i] = 0;
            memcpy(b + off, a + (3 - off), (size_t)n);
            for (int i = 0; i < n; i++) failures += b[off + i] != a[3 - off + i];
            failures += memcmp(b + off, a + (3 - off), (size_t)n) != 0;
            memset(b + off, 0x5a, (size_t)n);
            for (int i = 0; i < n; i++) failures += b[off + i] != 0x5a;
            failures += b[off + n] != 0;
            memmove(a + off + 5, a + off, (size_t)n);   /* overlapping, backwards */
            for (int i = 0; i < n; i++) failures += a[off + 5 + i] != (uint8_t)((off + i) * 7 + 1);
            for (int i = 0; i < 300; i++) a[i] = (uint8_t)(i * 7 + 1);
            memmove(a + off, a + off + 5, (size_t)n);   /* overlapping, forwards */
            for (int i = 0; i < n; i++) failures += a[off + i] != (uint8_t)((off + 5 + i) * 7 + 1);
        }
    failures += memcmp("abc", "abd", 3) >= 0;
    failures += strlen("tinydeploy") != 10;
    return failures;
}
