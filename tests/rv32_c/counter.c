/* The program's own counter: td_cycles() (served from a table lookup) and a raw read of the
 * register from an arbitrary place (served by stop-and-resume). */
#include "hal.h"
#include "td_mmio_rv32.h"

volatile int sink;
uint64_t t[4];
uint32_t raw[2];

int main(void)
{
    t[0] = td_cycles();
    for (int i = 0; i < 1000; i++)
        sink += i;
    t[1] = td_cycles();
    t[2] = td_cycles();
    raw[0] = *(volatile uint32_t *)(TD_MMIO_BASE + TD_MMIO_CYCLES_LO);
    for (int i = 0; i < 37; i++)
        sink ^= i;
    raw[1] = *(volatile uint32_t *)(TD_MMIO_BASE + TD_MMIO_CYCLES_LO);
    t[3] = td_cycles();
    td_puts("done\n");
    return 0;
}
