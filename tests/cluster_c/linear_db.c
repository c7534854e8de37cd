/* Parallel int8 linear layer for the cluster simulator tests:
 *     y[M][N] = requant(x[M][K] . w[N][K]^T + b[N])
 * x, w, b and y live in L2 (filled and read by the host). Each core owns a contiguous slice of the
 * N output channels and streams its rows of w through two L1 tile buffers of TN rows with its own
 * DMA transfers: tile t+1 is in flight while tile t is computed (double buffering). Core 0 brings
 * x to L1; one barrier makes it visible to all. Each core writes its slice of y back with one
 * 2-D transfer (M rows of its columns, row stride N).
 *
 * params (L1, set by the host): multiplier, shift, test flags (FLAG_*).
 */
#include "td_cluster.h"

#ifndef M
#define M 1
#endif
#ifndef N
#define N 512
#endif
#ifndef K
#define K 256
#endif
#ifndef TN
#define TN 8
#endif
#define MAX_CORES 8

#define FLAG_SKIP_WAIT 1  /* forget to wait for the prefetched tile: results must come out wrong */
#define FLAG_TOUCH_L2 2   /* core 3 reads w directly from L2: the simulator must stop with an error */

int8_t x_l2[M * K] TD_L2;
int8_t w_l2[N * K] TD_L2;
int32_t b_l2[N] TD_L2;
int8_t y_l2[M * N] TD_L2;

int32_t params[4] TD_L1;
static int8_t x_l1[M * K] TD_L1;
static int8_t w_l1[MAX_CORES][2][TN * K] TD_L1;
static int32_t b_l1[N] TD_L1;
static int8_t y_l1[M * N] TD_L1;

static inline int8_t requant(int32_t acc, int32_t mult, int32_t shift)
{
    int64_t v = ((int64_t)acc * mult + ((int64_t)1 << (shift - 1))) >> shift;
    return (int8_t)(v > 127 ? 127 : v < -128 ? -128 : v);
}

/* rows [r0, r0 + rows) of y from a tile of w holding those rows */
static void compute_tile(const int8_t *w, int r0, int rows, int32_t mult, int32_t shift)
{
    for (int r = 0; r < rows; r++) {
        const int8_t *wr = w + r * K;
        for (int m = 0; m < M; m++) {
            const int8_t *xm = x_l1 + m * K;
            int32_t acc = b_l1[r0 + r];
            for (int k = 0; k < K; k++)
                acc += (int32_t)xm[k] * (int32_t)wr[k];
            y_l1[m * N + r0 + r] = requant(acc, mult, shift);
        }
    }
}

static inline int min_int(int a, int b) { return a < b ? a : b; }

int main(void)
{
    const int id = (int)td_core_id(), nc = (int)td_ncores();
    const int32_t mult = params[0], shift = params[1], flags = params[2];
    const int n0 = N * id / nc, n1 = N * (id + 1) / nc;
    const int tiles = (n1 - n0 + TN - 1) / TN;

    if ((flags & FLAG_TOUCH_L2) && id == 3)
        y_l1[0] = *(volatile int8_t *)&w_l2[100];

    uint32_t x_done = 0;
    if (id == 0)
        x_done = td_dma_start_1d(x_l1, x_l2, sizeof x_l1);
    uint32_t b_done = td_dma_start_1d(&b_l1[n0], &b_l2[n0], (uint32_t)(n1 - n0) * sizeof b_l1[0]);
    uint32_t next = td_dma_start_1d(w_l1[id][0], &w_l2[n0 * K], (uint32_t)min_int(TN, n1 - n0) * K);
    if (id == 0)
        td_dma_wait(x_done);
    td_dma_wait(b_done);
    td_barrier();

    for (int t = 0; t < tiles; t++) {
        const int r0 = n0 + t * TN, rows = min_int(TN, n1 - r0);
        const uint32_t current = next;
        if (t + 1 < tiles)
            next = td_dma_start_1d(w_l1[id][(t + 1) & 1], &w_l2[(r0 + TN) * K],
                                   (uint32_t)min_int(TN, n1 - r0 - TN) * K);
        if (!(flags & FLAG_SKIP_WAIT))
            td_dma_wait(current);
        compute_tile(w_l1[id][t & 1], r0, rows, mult, shift);
    }
    td_dma_wait(td_dma_start_2d(&y_l2[n0], &y_l1[n0], (uint32_t)(n1 - n0), M, N, N));
    return 0;
}
