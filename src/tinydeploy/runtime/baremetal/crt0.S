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

/* uint64_t td_cycles(void). Written in assembly so it is never inlined: the simulator serves
 * the low word from a table lookup and the count of its enclosing block (see simulator.py). */
    .section .text.td_cycles, "ax", @progbits
    .globl td_cycles
    .type td_cycles, @function
td_cycles:
    li      t0, TD_MMIO_BASE
    .globl td_cycles_load
td_cycles_load:
    lw      a0, TD_MMIO_CYCLES_LO(t0)
    lw      a1, TD_MMIO_CYCLES_HI(t0)
    ret
    .size td_cycles, . - td_cycles

/* void _td_halt(int code): the simulator stops when the PC reaches this address (emu_start's
 * `until`), before it executes, and takes the exit code from a0. On hardware it spins. */
    .section .text._td_halt, "ax", @progbits
    .globl _td_halt
    .type _td_halt, @function
_td_halt:
    j       _td_halt
    .size _td_halt, . - _td_halt
