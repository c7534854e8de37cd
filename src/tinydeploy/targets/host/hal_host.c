/* The HAL on a host: console to stdout, no cycle model (0), exit(). */
#include <stdio.h>
#include <stdlib.h>
#include "td_hal.h"

void td_putc(char c) { putchar(c); }
void td_puts(const char *s) { fputs(s, stdout); }
uint64_t td_cycles(void) { return 0; }
void td_exit(int code) { fflush(stdout); exit(code); }
