/* The two entry points the simulators know by name (rv32 and cluster runtimes link this file). */
#include "td_mmio_rv32.h"

/* uint64_t td_cycles(void). Written in assembly so it is never inlined: the rv32 simulator serves
 * the low word at `td_cycles_load` from a table lookup and the count of its enclosing block (see
 * targets/rv32/simulator.py); the cluster serves it by stop and replay, adding the core's waits. */
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

/* void _td_halt(int code): the simulator stops a core when its PC reaches this address (emu_start's
 * `until`), before it executes, and takes the exit code from a0. On hardware it spins. */
    .section .text._td_halt, "ax", @progbits
    .globl _td_halt
    .type _td_halt, @function
_td_halt:
    j       _td_halt
    .size _td_halt, . - _td_halt
