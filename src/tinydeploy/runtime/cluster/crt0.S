/* Start-up for the simulated cluster: every core starts here at the same PC.
 *
 * Each core reads its id, takes its stack (core i: the i-th slot below _stack_top, all in L1),
 * clears its share of .bss and meets the others at the barrier, so main() sees a zeroed .bss on
 * every core. .data was placed in L1 by the loader (load address = run address); `.l1` buffers
 * are not cleared. Returning from main() (or td_exit) jumps to _td_halt (baremetal/td_sim.S):
 * that core is done.
 */
#include "td_cluster.h"

    .section .text.start, "ax", @progbits
    .globl _start
    .type _start, @function
_start:
    li      t0, TD_CLUSTER_PERIPH
    lw      a0, TD_CORE_ID(t0)
    lw      a1, TD_NCORES(t0)
    la      sp, _stack_top
    lui     t1, %hi(_td_stack_bytes)
    addi    t1, t1, %lo(_td_stack_bytes)
    mul     t1, t1, a0
    sub     sp, sp, t1
#ifdef __riscv_flen
    /* FP instructions trap while mstatus.FS is Off. */
    li      t1, 0x2000
    csrs    mstatus, t1
    fscsr   zero
#endif
    /* .bss words [n*id/ncores, n*(id+1)/ncores) */
    la      t2, _bss_start
    la      t3, _bss_end
    sub     t3, t3, t2
    srli    t3, t3, 2
    mul     t4, t3, a0
    divu    t4, t4, a1
    addi    t5, a0, 1
    mul     t5, t5, t3
    divu    t5, t5, a1
    slli    t4, t4, 2
    slli    t5, t5, 2
    add     t4, t4, t2
    add     t5, t5, t2
1:  bgeu    t4, t5, 2f
    sw      zero, 0(t4)
    addi    t4, t4, 4
    j       1b
2:  sw      zero, TD_BARRIER(t0)
    call    main
    tail    td_exit
    .size _start, . - _start
