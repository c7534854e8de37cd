/* Start-up for the simulated rv32 MCU.
 *
 * The whole image runs from SRAM where the loader put it (load address = run address), so .data
 * needs no copy; .bss is zeroed here rather than trusted to the loader, as on real hardware.
 * The stack sits at the bottom of SRAM and grows down towards unmapped memory, so an overflow
 * faults instead of silently corrupting data.
 */
#include "td_mmio_rv32.h"

    .section .text.start, "ax", @progbits
    .globl _start
    .type _start, @function
_start:
    la      sp, _stack_top
#ifdef __riscv_flen
    /* FP instructions trap while mstatus.FS is Off. */
    li      t0, 0x2000
    csrs    mstatus, t0
    fscsr   zero
#endif
    la      t0, _bss_start
    la      t1, _bss_end
1:  bgeu    t0, t1, 2f
    sw      zero, 0(t0)
    addi    t0, t0, 4
    j       1b
2:  call    main
    tail    td_exit
    .size _start, . - _start
