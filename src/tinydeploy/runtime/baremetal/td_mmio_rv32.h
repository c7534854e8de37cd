/* Memory map of the simulated rv32 MCU's one peripheral page; must match targets/rv32/simulator.py. */
#ifndef TD_MMIO_RV32_H
#define TD_MMIO_RV32_H

#ifndef TD_MMIO_BASE /* the cluster target maps the same registers at its own peripheral base */
#define TD_MMIO_BASE       0x10000000
#endif
#define TD_MMIO_CONSOLE    0x0   /* write: one byte to the console */
#define TD_MMIO_CYCLES_LO  0x4   /* read: instructions retired before this load; latches the high word */
#define TD_MMIO_CYCLES_HI  0x8   /* read: high word latched by the last CYCLES_LO read */

#endif
