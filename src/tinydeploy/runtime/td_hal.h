/* The tiny hardware abstraction every target provides (host: targets/host/hal_host.c;
 * bare metal: runtime/baremetal). Console, an exact cycle counter, exit. */
#ifndef TD_HAL_H
#define TD_HAL_H
#include <stdint.h>

void td_putc(char c);
void td_puts(const char *s);
uint64_t td_cycles(void);     /* host: 0 (no cycle model); simulators: retired instructions */
void td_exit(int code);
#endif
