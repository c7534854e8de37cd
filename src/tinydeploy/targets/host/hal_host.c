/* The HAL (runtime/baremetal/hal.h) on a host: console to stdout, a nanosecond clock, exit(). */
#define _POSIX_C_SOURCE 199309L
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "hal.h"

void td_putc(char c) { putchar(c); }
void td_puts(const char *s) { fputs(s, stdout); }
void td_put_int(long v) { printf("%ld", v); }
void td_put_hex(uint32_t v) { printf("%08x", (unsigned)v); }
uint64_t td_cycles(void)   /* no cycle model: wall-clock nanoseconds (CLOCK_MONOTONIC) */
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}
void td_exit(int code) { fflush(stdout); exit(code); }
