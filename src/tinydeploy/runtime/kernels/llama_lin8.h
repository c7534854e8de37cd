/* tdl_linear_q8 fast path for cols == 64 (the model dimension of stories260K: every linear layer but
 * w2): 8 rows per pass, whole rows of 2 groups of 32 (a row never straddles groups), one weight
 * pointer with constant offsets r * 64 + o (immediates), so each activation load feeds 8 MACs and
 * the 8 int32 group partials stay in registers. The partials of both groups are combined per row
 * after the pass: acc = m[2j] p_0 + m[2j + 1] p_1 as in the generic path (integer sums in another
 * order: the same value to the bit). Included by llama.h (needs TDL_MAC, tdl_linear_q8_out). */
#ifndef TD_LLAMA_LIN8_H
#define TD_LLAMA_LIN8_H

#define TDL_L8_COL(o) do { int32_t x_ = xp[(o)];                                                 \
        TDL_MAC(p0, x_, (int32_t)w[(o)]); TDL_MAC(p1, x_, (int32_t)w[64 + (o)]);                   \
        TDL_MAC(p2, x_, (int32_t)w[128 + (o)]); TDL_MAC(p3, x_, (int32_t)w[192 + (o)]);            \
        TDL_MAC(p4, x_, (int32_t)w[256 + (o)]); TDL_MAC(p5, x_, (int32_t)w[320 + (o)]);            \
        TDL_MAC(p6, x_, (int32_t)w[384 + (o)]); TDL_MAC(p7, x_, (int32_t)w[448 + (o)]);            \
        TDL_BARRIER(); } while (0)
#define TDL_L8_COL4(o) do { TDL_L8_COL((o)); TDL_L8_COL((o) + 1); TDL_L8_COL((o) + 2);             \
        TDL_L8_COL((o) + 3); } while (0)

/* rows % 8 == 0, cols == 64; one row of activations xr, output scale s */
__attribute__((noinline)) static void tdl_linear_q8_c64(const int8_t *xr, const int8_t *w8,
                                                       const int16_t *mw, int rows, tdl_scale s,
                                                       int bits, void *out, int out32, int o0)
{
    int32_t part[2][8];
    for (int j = 0; j < rows; j += 8) {
        const int8_t *w = w8 + j * 64, *xp = xr;
        for (int g = 0; g < 2; g++) {
            int32_t p0 = 0, p1 = 0, p2 = 0, p3 = 0, p4 = 0, p5 = 0, p6 = 0, p7 = 0;
            TDL_L8_COL4(0); TDL_L8_COL4(4); TDL_L8_COL4(8); TDL_L8_COL4(12);
            TDL_L8_COL4(16); TDL_L8_COL4(20); TDL_L8_COL4(24); TDL_L8_COL4(28);
            int32_t *pg = part[g];
            pg[0] = p0; pg[1] = p1; pg[2] = p2; pg[3] = p3; pg[4] = p4; pg[5] = p5; pg[6] = p6; pg[7] = p7;
            w += 32; xp += 32;
        }
        const int16_t *m = mw + 2 * j;
        for (int r = 0; r < 8; r++) {
            int64_t acc = (int64_t)m[2 * r] * part[0][r] + (int64_t)m[2 * r + 1] * part[1][r];
            tdl_linear_q8_out(out, out32, o0 + j + r, acc, s, bits);
        }
    }
}
#endif
