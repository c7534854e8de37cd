/* Ways to go wrong, one per FAULT value. */
#include <stdint.h>
#include "hal.h"

/* volatile: the compiler cannot see the overruns */
volatile uint32_t offset = 0x100000;  /* past the end of a 512 KiB SRAM */
volatile uint32_t page = 4096;        /* past the 4 KiB page holding the end of .bss */
uint8_t buf[64];
extern uint8_t _end[];

static int __attribute__((noinline)) deep(int n)
{
    volatile uint8_t frame[512];
    frame[n & 511] = (uint8_t)n;
    return n ? deep(n - 1) + frame[0] : 0;
}

int main(void)
{
#if FAULT == 1   /* write past the end of SRAM */
    buf[offset] = 1;
#elif FAULT == 2 /* unbounded recursion */
    return deep(100000);
#elif FAULT == 3 /* never ends */
    for (;;)
        offset++;
#elif FAULT == 4 /* write just past the last object: unmapped only with guard=True */
    _end[page] = 1;
#elif FAULT == 5 /* an illegal instruction */
    if (page)
        __builtin_trap();
#endif
    return 0;
}
