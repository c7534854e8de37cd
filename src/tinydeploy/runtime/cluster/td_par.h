/* Work split for the kernels of runtime/kernels on the cluster (td_common.h includes this when
 * built with TD_CLUSTER): a parallel kernel takes items [td_par_lo(n), td_par_hi(n)) of its n and
 * ends with td_par_sync(). The generated network sets td_par_team: every core in a parallel layer,
 * 1 while core 0 runs a layer alone (then the other cores wait at the layer's barrier). */
#ifndef TD_PAR_H
#define TD_PAR_H
#include "td_cluster.h"

extern volatile uint32_t td_par_team;
/* reduction slots (defined by the generated network): two sets used in turn, per core a sum and a max */
#define TD_PAR_MAX_CORES 32   /* targets/cluster/config.py MAX_CORES */
extern volatile uint32_t td_par_slot[2][TD_PAR_MAX_CORES][4];
extern volatile uint8_t td_par_turn[TD_PAR_MAX_CORES];

static inline int td_par_lo(int n) { return (int)((uint32_t)n * td_core_id() / td_par_team); }
static inline int td_par_hi(int n) { return (int)((uint32_t)n * (td_core_id() + 1) / td_par_team); }
static inline void td_par_sync(void)
{
    if (td_par_team > 1)
        td_barrier();
}
static inline int td_par_me(void) { return (int)td_core_id(); }
static inline int td_par_cores(void) { return (int)td_par_team; }

/* *sum and *max of every core's values (each core gets both), one barrier. A core leaves the barrier
 * and may publish the next reduction while others still read this one, so calls alternate between
 * two slot sets; it cannot get two ahead (the next call's barrier waits for everyone). */
static inline void td_par_reduce2(uint64_t *sum, uint64_t *max)
{
    if (td_par_team == 1) return;
    uint32_t me = td_core_id(), k = td_par_turn[me];
    td_par_turn[me] = (uint8_t)(k ^ 1);
    volatile uint32_t(*sl)[4] = td_par_slot[k];
    sl[me][0] = (uint32_t)*sum; sl[me][1] = (uint32_t)(*sum >> 32);
    sl[me][2] = (uint32_t)*max; sl[me][3] = (uint32_t)(*max >> 32);
    td_barrier();
    uint64_t s = 0, m = 0;
    for (uint32_t c = 0; c < td_par_team; c++) {
        uint64_t mc = sl[c][2] | (uint64_t)sl[c][3] << 32;
        s += sl[c][0] | (uint64_t)sl[c][1] << 32;
        m = mc > m ? mc : m;
    }
    *sum = s; *max = m;
}
#endif
