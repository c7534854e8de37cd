/* QEmbedding (ops/embedding.py): rows of an int8 table with Q8_0 group scales (groups of 32 over the
 * flattened table), at a static int16 scale: x = sat(apply(w8 * mw, c)). First n rows. */
#ifndef TD_EMBEDDING_H
#define TD_EMBEDDING_H
#include "td_dynq.h"

static inline void td_embedding_q8g(const int32_t *tok, int n, const int8_t *w8, const int16_t *mw, int D,
                                    td_scale c, int bits, int16_t *x)
{
    TD_PAR_FOR2(t, n, i, D) {   /* (row, channel) pairs across the cores */
        int32_t j = tok[t] * D + i;
        x[t * D + i] = (int16_t)td_sat(td_scale_apply((int64_t)w8[j] * mw[j >> 5], c), bits);
    }
    td_par_sync();
}
#endif
