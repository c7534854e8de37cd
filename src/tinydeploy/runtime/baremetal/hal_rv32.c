/* HAL for the simulated rv32 MCU: a write-only console register; exit by jumping to _td_halt.
 * td_cycles() lives in td_sim.S. */
#include "hal.h"
#include "td_mmio_rv32.h"

#define MMIO32(off) (*(volatile uint32_t *)(TD_MMIO_BASE + (off)))

extern void _td_halt(int code) __attribute__((noreturn));

void td_putc(char c) { MMIO32(TD_MMIO_CONSOLE) = (uint8_t)c; }

void td_puts(const char *s)
{
    while (*s)
        td_putc(*s++);
}

void td_put_int(long v)
{
    char buf[12];
    int n = 0;
    /* Negate in unsigned arithmetic so LONG_MIN prints correctly. */
    unsigned long u = v < 0 ? 0ul - (unsigned long)v : (unsigned long)v;
    do {
        buf[n++] = (char)('0' + u % 10u);
        u /= 10u;
    } while (u);
    if (v < 0)
        td_putc('-');
    while (n)
        td_putc(buf[--n]);
}

void td_put_hex(uint32_t v)
{
    for (int shift = 28; shift >= 0; shift -= 4)
        td_putc("0123456789abcdef"[(v >> shift) & 0xF]);
}

void td_exit(int code) { _td_halt(code); }
