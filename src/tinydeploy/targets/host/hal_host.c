/* The HAL (runtime/baremetal/hal.h) on a host: console to stdout, no cycle model (0), exit(). */
#include <stdio.h>
#include <stdlib.h>
#include "hal.h"

void td_putc(char c) { putchar(c); }
void td_puts(const char *s) { fputs(s, stdout); }
void td_put_int(long v) { printf("%ld", v); }
void td_put_hex(uint32_t v) { printf("%08x", (unsigned)v); }
uint64_t td_cycles(void) { return 0; }
void td_exit(int code) { fflush(stdout); exit(code); }
