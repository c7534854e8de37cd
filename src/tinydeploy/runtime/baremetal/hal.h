/* tinydeploy HAL: the one interface generated code uses to talk to its platform.
 * Implemented by runtime/baremetal/hal_rv32.c (simulated MCU) and targets/host/hal_host.c (host);
 * codegen copies this header into every generated project.
 */
#ifndef TD_BAREMETAL_HAL_H
#define TD_BAREMETAL_HAL_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Console: one byte, a string (no newline added), a signed decimal, 8 hex digits. */
void td_putc(char c);
void td_puts(const char *s);
void td_put_int(long v);
void td_put_hex(uint32_t v);

/* Cycle counter. On rv32 it is the exact number of instructions retired since reset (the
 * simulator's model is 1 cycle per instruction); differences of two reads are exact. The host
 * has no cycle model: there it counts wall-clock nanoseconds. */
uint64_t td_cycles(void);

/* End the program with an exit code (main returning does the same). */
void td_exit(int code) __attribute__((noreturn));

#ifdef __cplusplus
}
#endif

#endif /* TD_BAREMETAL_HAL_H */
