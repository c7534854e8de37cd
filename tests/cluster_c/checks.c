/* Small cluster programs for the simulator tests, one per mode (mode[0], set by the host):
 *   1 barrier accounting: core i works longer the larger i is, then meets the others;
 *     stamps[i] = td_cycles() just before and just after the barrier
 *   2 strided DMA (core 0): a 3-D block of cube_l2 into L1, back out to L2 as 2-D rows at a
 *     column offset, and as one 1-D copy
 *   3 DMA issue order: core i starts one transfer after work that shrinks with i, in steps
 *     shorter than a transfer (so they queue); ids[i] = its id
 *   4 console: core i prints its digit after work that shrinks with i
 *   5 deadlock: core 0 returns while the others wait at the barrier
 *   6 DMA to an address outside L1 and L2 (core 2)
 *   7 a store into the code region (core 1)
 */
#include "td_cluster.h"

#define P 5
#define R 7
#define C 24
#define OUT_C 20

int32_t mode[4] TD_L1;
uint64_t stamps[8][2] TD_L1;
uint32_t ids[8] TD_L1;

int8_t cube_l2[P][R][C] TD_L2;
int8_t rows_l2[12][OUT_C] TD_L2;
int8_t flat_l2[3 * 4 * 16] TD_L2;
int8_t src_l2[8][64] TD_L2;
int8_t block_l1[3][4][16] TD_L1;
int8_t dst_l1[8][64] TD_L1;

static void work(int n)
{
    for (volatile int i = 0; i < n; i++)
        ;
}

int main(void)
{
    const int id = (int)td_core_id(), nc = (int)td_ncores();
    switch (mode[0]) {
    case 1:
        work(37 * id + 5 * id * id);
        stamps[id][0] = td_cycles();
        td_barrier();
        stamps[id][1] = td_cycles();
        break;
    case 2:
        if (id == 0) {
            /* cube_l2[1:4, 2:6, 3:19] -> block_l1: 16-byte rows, 4 rows, 3 planes */
            td_dma_wait(td_dma_start_3d(block_l1, &cube_l2[1][2][3], 16, 4, 16, C, 3, 4 * 16, R * C));
            td_dma_start_2d(&rows_l2[0][2], block_l1, 16, 12, OUT_C, 16);
            td_dma_wait(td_dma_start_1d(flat_l2, block_l1, sizeof block_l1));
        }
        break;
    case 3:
        work(3 * (nc - 1 - id));
        ids[id] = td_dma_start_1d(dst_l1[id], src_l2[id], sizeof dst_l1[id]);
        td_dma_wait(ids[id]);
        break;
    case 4:
        work(200 * (nc - 1 - id));
        td_putc((char)('0' + id));
        break;
    case 5:
        if (id == 0)
            return 0;
        td_barrier();
        break;
    case 6:
        if (id == 2)
            td_dma_wait(td_dma_start_1d((void *)0x100, src_l2, 16));
        break;
    case 7:
        if (id == 1)
            *(volatile uint32_t *)(uintptr_t)&work = 0;
        break;
    }
    return 0;
}
