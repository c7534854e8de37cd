/* tinydeploy cluster HAL: core id, barrier, DMA, memory placement. Also provides hal.h (console,
 * td_cycles, td_exit). Every core runs the same program from main() (SPMD); they synchronise only
 * through td_barrier() and the DMA's td_dma_wait().
 *
 * Memory: the cores address L1 (data, bss, TD_L1 buffers, stacks) and the code/constants at the
 * start of L2. TD_L2 / TD_L2_CONST data is reachable only by the DMA: a direct access from a core
 * stops the simulation with an error naming the core, PC and address.
 *
 * Register map: must match targets/cluster/config.py.
 */
#ifndef TD_CLUSTER_H
#define TD_CLUSTER_H

#define TD_CLUSTER_PERIPH   0x10200000
#define TD_CORE_ID          0x10  /* read: id of the reading core (0..ncores-1) */
#define TD_NCORES           0x14  /* read: cores running the program */
#define TD_BARRIER          0x18  /* write: wait until every core has arrived */
#define TD_DMA_SRC          0x40  /* per-core DMA registers, then START / WAIT */
#define TD_DMA_DST          0x44
#define TD_DMA_LEN          0x48  /* bytes per row */
#define TD_DMA_N1           0x4C  /* rows */
#define TD_DMA_SRC_STRIDE1  0x50  /* bytes between rows */
#define TD_DMA_DST_STRIDE1  0x54
#define TD_DMA_N2           0x58  /* planes of rows */
#define TD_DMA_SRC_STRIDE2  0x5C  /* bytes between planes */
#define TD_DMA_DST_STRIDE2  0x60
#define TD_DMA_START        0x64  /* read: queue the programmed transfer, returns its id */
#define TD_DMA_WAIT         0x68  /* write id: wait until that transfer (and every earlier one) is done */

#ifndef __ASSEMBLER__
#include <stdint.h>

#include "hal.h"
#include "td_mmio_rv32.h"

#if TD_MMIO_BASE != TD_CLUSTER_PERIPH
#error "cluster code is compiled with -DTD_MMIO_BASE=0x10200000 (targets/cluster does this)"
#endif

/* Placement: L1 buffers (not zeroed at start), L2 data (DMA only; TD_L2_CONST for const data,
 * which needs its own section). */
#define TD_L1 __attribute__((section(".l1"), aligned(8)))
#define TD_L2 __attribute__((section(".l2"), aligned(8)))
#define TD_L2_CONST __attribute__((section(".l2.rodata"), aligned(8)))

#define TD_REG(off) (*(volatile uint32_t *)(TD_CLUSTER_PERIPH + (off)))
/* Memory changes behind the compiler's back (other cores, the DMA): no caching across these. */
#define TD_MEMORY_FENCE() __asm__ volatile("" ::: "memory")

static inline uint32_t td_core_id(void) { return TD_REG(TD_CORE_ID); }
static inline uint32_t td_ncores(void) { return TD_REG(TD_NCORES); }

static inline void td_barrier(void)
{
    TD_MEMORY_FENCE();
    TD_REG(TD_BARRIER) = 0;
    TD_MEMORY_FENCE();
}

/* Transfers run on one shared channel in the order they were started (across cores, in simulated
 * time). The bytes move when the transfer completes: read the destination, or reuse the source,
 * only after td_dma_wait(id). Strides are in bytes and must be non-negative. */
static inline uint32_t td_dma_start_1d(void *dst, const void *src, uint32_t bytes)
{
    TD_MEMORY_FENCE();
    TD_REG(TD_DMA_SRC) = (uint32_t)src;
    TD_REG(TD_DMA_DST) = (uint32_t)dst;
    TD_REG(TD_DMA_LEN) = bytes;
    TD_REG(TD_DMA_N1) = 1;
    TD_REG(TD_DMA_N2) = 1;
    return TD_REG(TD_DMA_START);
}

/* Program rows x row_bytes with row strides; the caller sets the planes and starts. */
static inline void td_dma_rows_(void *dst, const void *src, uint32_t row_bytes, uint32_t rows,
                                uint32_t dst_stride, uint32_t src_stride)
{
    TD_MEMORY_FENCE();
    TD_REG(TD_DMA_SRC) = (uint32_t)src;
    TD_REG(TD_DMA_DST) = (uint32_t)dst;
    TD_REG(TD_DMA_LEN) = row_bytes;
    TD_REG(TD_DMA_N1) = rows;
    TD_REG(TD_DMA_SRC_STRIDE1) = src_stride;
    TD_REG(TD_DMA_DST_STRIDE1) = dst_stride;
}

static inline uint32_t td_dma_start_2d(void *dst, const void *src, uint32_t row_bytes, uint32_t rows,
                                       uint32_t dst_stride, uint32_t src_stride)
{
    td_dma_rows_(dst, src, row_bytes, rows, dst_stride, src_stride);
    TD_REG(TD_DMA_N2) = 1;
    return TD_REG(TD_DMA_START);
}

static inline uint32_t td_dma_start_3d(void *dst, const void *src, uint32_t row_bytes, uint32_t rows,
                                       uint32_t dst_stride, uint32_t src_stride, uint32_t planes,
                                       uint32_t dst_plane_stride, uint32_t src_plane_stride)
{
    td_dma_rows_(dst, src, row_bytes, rows, dst_stride, src_stride);
    TD_REG(TD_DMA_N2) = planes;
    TD_REG(TD_DMA_SRC_STRIDE2) = src_plane_stride;
    TD_REG(TD_DMA_DST_STRIDE2) = dst_plane_stride;
    return TD_REG(TD_DMA_START);
}

static inline void td_dma_wait(uint32_t id)
{
    TD_MEMORY_FENCE();
    TD_REG(TD_DMA_WAIT) = id;
    TD_MEMORY_FENCE();
}

#endif /* __ASSEMBLER__ */
#endif /* TD_CLUSTER_H */
