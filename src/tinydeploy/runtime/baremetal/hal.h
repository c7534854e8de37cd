/* tinydeploy HAL as implemented for bare metal (runtime/baremetal/hal_rv32.c).
 *
 * The same prototypes as runtime/td_hal.h (which generated code includes and the host target
 * implements in targets/host/hal_host.c), plus two console helpers for bare-metal programs.
 * Its own include guard, so both headers may be included together.
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
 * simulator's model is 1 cycle per instruction); differences of two reads are exact. On the
 * host it returns 0. */
uint64_t td_cycles(void);

/* End the program with an exit code (main returning does the same). */
void td_exit(int code) __attribute__((noreturn));

#ifdef __cplusplus
}
#endif

#endif /* TD_BAREMETAL_HAL_H */
