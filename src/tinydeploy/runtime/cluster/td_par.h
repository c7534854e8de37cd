/* Work split for the kernels of runtime/kernels on the cluster (td_common.h includes this when
 * built with TD_CLUSTER): a parallel kernel takes items [td_par_lo(n), td_par_hi(n)) of its n and
 * ends with td_par_sync(). The generated network sets td_par_team: every core in a parallel layer,
 * 1 while core 0 runs a layer alone (then the other cores wait at the layer's barrier). */
#ifndef TD_PAR_H
#define TD_PAR_H
#include "td_cluster.h"

extern volatile uint32_t td_par_team;

static inline int td_par_lo(int n) { return (int)((uint32_t)n * td_core_id() / td_par_team); }
static inline int td_par_hi(int n) { return (int)((uint32_t)n * (td_core_id() + 1) / td_par_team); }
static inline void td_par_sync(void)
{
    if (td_par_team > 1)
        td_barrier();
}
#endif
