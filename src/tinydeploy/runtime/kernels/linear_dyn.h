/* QLinearDyn (ops/linear.py): int8 rows with a run-time scale F times int8 weights with Q8_0 group
 * scales (groups of 32 over the flattened [rows, cols] weight, so they may straddle rows), requantized
 * to a static output scale; bit-exact C of ops/linear.py. Works on the first n rows. */
#ifndef TD_LINEAR_DYN_H
#define TD_LINEAR_DYN_H
#include "td_dynq.h"

/* acc += x * b. On RISC-V one asm statement keeps mul and add together (as in td_fast.h): left to
 * itself clang issues all products of an unrolled step before their adds and spills them. */
#if defined(__riscv) && !defined(TD_NO_ASM)
#define TD_LD_MAC(acc, x, b) do { int32_t t_;                                                      \
        __asm__ volatile("mul %1, %2, %3\n\tadd %0, %0, %1" : "+r"(acc), "=&r"(t_) : "r"(x), "r"(b)); } while (0)
#define TD_LD_BARRIER() __asm__ volatile("" ::: "memory")
#else
#define TD_LD_MAC(acc, x, b) ((acc) += (x) * (b))
#define TD_LD_BARRIER() do { } while (0)
#endif
/* one column o of 4 weight rows against one activation */
#define TD_LD_COL(o) do { int32_t x_ = xp[(o)];                                                 \
        TD_LD_MAC(p0, x_, (int32_t)w0[(o)]); TD_LD_MAC(p1, x_, (int32_t)w1[(o)]);                      \
        TD_LD_MAC(p2, x_, (int32_t)w2[(o)]); TD_LD_MAC(p3, x_, (int32_t)w3[(o)]); } while (0)
#define TD_LD_COL4(o) do { TD_LD_COL((o)); TD_LD_COL((o) + 1); TD_LD_COL((o) + 2);             \
        TD_LD_COL((o) + 3); TD_LD_BARRIER(); } while (0)

static inline void td_linear_dyn_out(void *out, int out32, int idx, int64_t acc, td_rescale_t rq)
{
    int32_t v = td_rescale(acc, rq);
    if (out32) ((int32_t *)out)[idx] = v;
    else ((int16_t *)out)[idx] = (int16_t)v;
}
/* Fast path for cols == 64 (e.g. a model dimension of 64: every linear layer of stories260K but w2):
 * 8 (or 4) rows per pass, whole rows of 2 groups of 32 (a row never straddles groups), one weight pointer
 * with constant offsets r * 64 + o (immediates), so each activation load feeds 8 MACs and the 8 int32
 * group partials stay in registers. The partials of both groups are combined per row after the
 * pass: acc = m[2j] p_0 + m[2j + 1] p_1 as in the generic path (integer sums in another order: the
 * same value to the bit). */
#define TD_LD8_COL(o) do { int32_t x_ = xp[(o)];                                                 \
        TD_LD_MAC(p0, x_, (int32_t)w[(o)]); TD_LD_MAC(p1, x_, (int32_t)w[64 + (o)]);                   \
        TD_LD_MAC(p2, x_, (int32_t)w[128 + (o)]); TD_LD_MAC(p3, x_, (int32_t)w[192 + (o)]);            \
        TD_LD_MAC(p4, x_, (int32_t)w[256 + (o)]); TD_LD_MAC(p5, x_, (int32_t)w[320 + (o)]);            \
        TD_LD_MAC(p6, x_, (int32_t)w[384 + (o)]); TD_LD_MAC(p7, x_, (int32_t)w[448 + (o)]);            \
        TD_LD_BARRIER(); } while (0)
#define TD_LD8_COL4(o) do { TD_LD8_COL((o)); TD_LD8_COL((o) + 1); TD_LD8_COL((o) + 2);             \
        TD_LD8_COL((o) + 3); } while (0)

/* the same with 4 or 2 rows (the end of a core's run) */
#define TD_LD4_COL(o) do { int32_t x_ = xp[(o)];                                                 \
        TD_LD_MAC(p0, x_, (int32_t)w[(o)]); TD_LD_MAC(p1, x_, (int32_t)w[64 + (o)]);                   \
        TD_LD_MAC(p2, x_, (int32_t)w[128 + (o)]); TD_LD_MAC(p3, x_, (int32_t)w[192 + (o)]);            \
        TD_LD_BARRIER(); } while (0)
#define TD_LD4_COL4(o) do { TD_LD4_COL((o)); TD_LD4_COL((o) + 1); TD_LD4_COL((o) + 2);             \
        TD_LD4_COL((o) + 3); } while (0)
#define TD_LD2_COL(o) do { int32_t x_ = xp[(o)];                                                 \
        TD_LD_MAC(p0, x_, (int32_t)w[(o)]); TD_LD_MAC(p1, x_, (int32_t)w[64 + (o)]); } while (0)
#define TD_LD2_COL4(o) do { TD_LD2_COL((o)); TD_LD2_COL((o) + 1); TD_LD2_COL((o) + 2);             \
        TD_LD2_COL((o) + 3); TD_LD_BARRIER(); } while (0)
#define TD_LD_GROUP(COL4) do { COL4(0); COL4(4); COL4(8); COL4(12); COL4(16); COL4(20); COL4(24); COL4(28); } while (0)

/* rows % 2 == 0, cols == 64; one row of activations xr, output scale s. Each core takes a run of
 * 2-row units (so 172 rows on 8 cores are 20 or 22 per core, not up to 28 in blocks of 8), 8 rows per
 * pass while they last, then 4, then 2. */
__attribute__((noinline)) static void td_linear_dyn_c64(const int8_t *xr, const int8_t *w8,
                                                        const int16_t *mw, int rows, td_scale s, int bits,
                                                        void *out, int out32, int o0)
{
    const td_rescale_t rq = td_rescale_plan(s, bits);
    int32_t part[2][8];
    for (int u = td_par_lo(rows / 2), ue = td_par_hi(rows / 2); u < ue;) {
        const int j = u * 2, nr = ue - u >= 4 ? 8 : (ue - u >= 2 ? 4 : 2);
        const int8_t *w = w8 + j * 64, *xp = xr;
        for (int g = 0; g < 2; g++) {
            int32_t p0 = 0, p1 = 0, p2 = 0, p3 = 0, p4 = 0, p5 = 0, p6 = 0, p7 = 0;
            if (nr == 8) TD_LD_GROUP(TD_LD8_COL4);
            else if (nr == 4) TD_LD_GROUP(TD_LD4_COL4);
            else TD_LD_GROUP(TD_LD2_COL4);
            int32_t *pg = part[g];
            pg[0] = p0; pg[1] = p1; pg[2] = p2; pg[3] = p3; pg[4] = p4; pg[5] = p5; pg[6] = p6; pg[7] = p7;
            w += 32; xp += 32;
        }
        const int16_t *m = mw + 2 * j;
        for (int r = 0; r < nr; r++) {
            int64_t acc = (int64_t)m[2 * r] * part[0][r] + (int64_t)m[2 * r + 1] * part[1][r];
            td_linear_dyn_out(out, out32, o0 + j + r, acc, rq);
        }
        u += nr / 2;
    }
}

/* Prefill (several rows of activations) with cols == 64 and rows % 4 == 0: 4 activation rows x 4
 * weight rows per pass, so each load (4 of x, 4 of w per column) feeds 4 MACs: 2.5 instructions per
 * MAC in the loop instead of 3.1 for one row. The same group partials per row, combined as in
 * td_linear_dyn_c64 (the same value to the bit). */
#define TD_LD44_W(k, W, P0, P1, P2, P3) do { int32_t w_ = w[(W)];                                 \
        TD_LD_MAC(P0, x0, w_); TD_LD_MAC(P1, x1, w_); TD_LD_MAC(P2, x2, w_); TD_LD_MAC(P3, x3, w_); } while (0)
#define TD_LD44_COL(o) do { int32_t x0 = xp[(o)], x1 = xp[64 + (o)], x2 = xp[128 + (o)], x3 = xp[192 + (o)]; \
        TD_LD44_W(0, (o), p00, p10, p20, p30); TD_LD44_W(1, 64 + (o), p01, p11, p21, p31);            \
        TD_LD44_W(2, 128 + (o), p02, p12, p22, p32); TD_LD44_W(3, 192 + (o), p03, p13, p23, p33);      \
        TD_LD_BARRIER(); } while (0)

__attribute__((noinline)) static void td_linear_dyn_c64x4(const int8_t *x4, const int32_t *F4, const int8_t *w8,
                                                          const int16_t *mw, int rows, td_scale c, int bits,
                                                          void *out, int out32, int o0)
{
    td_rescale_t rq[4];
    for (int i = 0; i < 4; i++) {
        td_scale f = {F4[2 * i], F4[2 * i + 1]};
        rq[i] = td_rescale_plan(td_scale_mul(f, c), bits);
    }
    int32_t part[2][16];
    TD_PAR_FOR(jb, rows / 4) {   /* blocks of 4 rows across the cores */
        const int j = jb * 4;
        const int8_t *w = w8 + j * 64, *xp = x4;
        for (int g = 0; g < 2; g++) {
            int32_t p00 = 0, p01 = 0, p02 = 0, p03 = 0, p10 = 0, p11 = 0, p12 = 0, p13 = 0;
            int32_t p20 = 0, p21 = 0, p22 = 0, p23 = 0, p30 = 0, p31 = 0, p32 = 0, p33 = 0;
            for (int k = 0; k < 32; k += 8, w += 8, xp += 8) {
                TD_LD44_COL(0); TD_LD44_COL(1); TD_LD44_COL(2); TD_LD44_COL(3);
                TD_LD44_COL(4); TD_LD44_COL(5); TD_LD44_COL(6); TD_LD44_COL(7);
            }
            int32_t *pg = part[g];
            pg[0] = p00; pg[1] = p01; pg[2] = p02; pg[3] = p03; pg[4] = p10; pg[5] = p11; pg[6] = p12; pg[7] = p13;
            pg[8] = p20; pg[9] = p21; pg[10] = p22; pg[11] = p23; pg[12] = p30; pg[13] = p31; pg[14] = p32;
            pg[15] = p33;
        }
        for (int jj = 0; jj < 4; jj++) {
            int64_t m0 = mw[2 * (j + jj)], m1 = mw[2 * (j + jj) + 1];
            for (int i = 0; i < 4; i++)
                td_linear_dyn_out(out, out32, o0 + i * rows + j + jj,
                                  m0 * part[0][4 * i + jj] + m1 * part[1][4 * i + jj], rq[i]);
        }
    }
}

#ifdef TD_X86
/* x86-64 hosts (td_common.h, td_x86.h): the activations widened once to int16, 8 products per
 * pmaddwd (16 with AVX2). Integer sums in another order: the same value to the bit. */
#include "td_x86.h"
#define TD_LD_SIMD_COLS 2048   /* the widened row is on the stack; wider rows take the scalar path */
/* sum of x[i] * w[i] for i < len (a group's segment of a row) */
static inline int32_t td_ld_dot(const int16_t *x, const int8_t *w, int len)
{
    __m128i acc = _mm_setzero_si128();
    int i = 0;
    for (; i + 16 <= len; i += 16) acc = td_x86_madd16(acc, x + i, w + i);
    if (i + 8 <= len) {
        acc = td_x86_madd8(acc, x + i, w + i);
        i += 8;
    }
    acc = _mm_add_epi32(acc, _mm_shuffle_epi32(acc, 0x4E));
    acc = _mm_add_epi32(acc, _mm_shuffle_epi32(acc, 0xB1));
    int32_t s = _mm_cvtsi128_si32(acc);
    for (; i < len; i++) s += (int32_t)x[i] * w[i];
    return s;
}
/* 4 weight rows that share their group borders (rows j, j + P, j + 2P, j + 3P: `stride` bytes and
 * `gstep` groups apart; P = 1 when a row is whole groups) against the widened activations, row j
 * starting at flat offset `base`: acc[r] = sum over row j + rP's group segments of mantissa x
 * (segment . x), each segment's products in int32 (|sum| < 2^31). Each activation load feeds the
 * 4 rows; the 4 segment sums come out of one transpose-add. */
static void td_ld_rows4_sse2(const int16_t *x16, const int8_t *w, int stride, int32_t base, int cols,
                             const int16_t *mw, int32_t gstep, int64_t *acc)
{
    int64_t c0 = 0, c1 = 0, c2 = 0, c3 = 0;
    for (int i = 0; i < cols; ) {
        int32_t g = (base + i) >> 5;
        int end = ((g + 1) << 5) - base, k = i;
        if (end > cols) end = cols;
        __m128i a0 = _mm_setzero_si128(), a1 = a0, a2 = a0, a3 = a0;
        for (; k + 16 <= end; k += 16) {
            a0 = td_x86_madd16(a0, x16 + k, w + k);
            a1 = td_x86_madd16(a1, x16 + k, w + stride + k);
            a2 = td_x86_madd16(a2, x16 + k, w + 2 * stride + k);
            a3 = td_x86_madd16(a3, x16 + k, w + 3 * stride + k);
        }
        if (k + 8 <= end) {
            a0 = td_x86_madd8(a0, x16 + k, w + k);
            a1 = td_x86_madd8(a1, x16 + k, w + stride + k);
            a2 = td_x86_madd8(a2, x16 + k, w + 2 * stride + k);
            a3 = td_x86_madd8(a3, x16 + k, w + 3 * stride + k);
            k += 8;
        }
        __m128i s = td_x86_sum4(a0, a1, a2, a3);
        int32_t p0 = TD_X86_LANE(s, 0), p1 = TD_X86_LANE(s, 1), p2 = TD_X86_LANE(s, 2), p3 = TD_X86_LANE(s, 3);
        for (; k < end; k++) {   /* the segment's last (len % 8) columns */
            int32_t x = x16[k];
            p0 += x * w[k]; p1 += x * w[stride + k]; p2 += x * w[2 * stride + k]; p3 += x * w[3 * stride + k];
        }
        c0 += (int64_t)mw[g] * p0;
        c1 += (int64_t)mw[g + gstep] * p1;
        c2 += (int64_t)mw[g + 2 * gstep] * p2;
        c3 += (int64_t)mw[g + 3 * gstep] * p3;
        i = end;
    }
    acc[0] = c0; acc[1] = c1; acc[2] = c2; acc[3] = c3;
}
#if defined(__GNUC__) && !defined(TD_NO_AVX2)
/* Rows of whole groups (P = 1) with AVX2 where the CPU has it (chosen at run time: the build targets
 * baseline x86-64): 16 products per vpmaddwd on weights sign-extended by vpmovsxbw. */
#include <immintrin.h>
static inline __attribute__((target("avx2"))) __m256i td_ld_madd32_avx2(__m256i xa, __m256i xb, const int8_t *w)
{
    __m256i wa = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)w));
    __m256i wb = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(w + 16)));
    return _mm256_add_epi32(_mm256_madd_epi16(xa, wa), _mm256_madd_epi16(xb, wb));
}
__attribute__((target("avx2"))) static void td_ld_rows4_avx2(const int16_t *x16, const int8_t *w, int stride,
                                                             int32_t base, int cols, const int16_t *mw,
                                                             int32_t gstep, int64_t *acc)
{
    int64_t c0 = 0, c1 = 0, c2 = 0, c3 = 0;
    for (int32_t k = 0, g = base >> 5; k < cols; k += 32, g++) {
        __m256i xa = _mm256_loadu_si256((const __m256i *)(x16 + k)), xb = _mm256_loadu_si256((const __m256i *)(x16 + k + 16));
        __m256i a0 = td_ld_madd32_avx2(xa, xb, w + k), a1 = td_ld_madd32_avx2(xa, xb, w + stride + k);
        __m256i a2 = td_ld_madd32_avx2(xa, xb, w + 2 * stride + k), a3 = td_ld_madd32_avx2(xa, xb, w + 3 * stride + k);
        /* per 128-bit lane [sum a0, sum a1, sum a2, sum a3], then the two lanes added */
        __m256i h = _mm256_hadd_epi32(_mm256_hadd_epi32(a0, a1), _mm256_hadd_epi32(a2, a3));
        __m128i s = _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
        c0 += (int64_t)mw[g] * _mm_cvtsi128_si32(s);
        c1 += (int64_t)mw[g + gstep] * _mm_extract_epi32(s, 1);
        c2 += (int64_t)mw[g + 2 * gstep] * _mm_extract_epi32(s, 2);
        c3 += (int64_t)mw[g + 3 * gstep] * _mm_extract_epi32(s, 3);
    }
    acc[0] = c0; acc[1] = c1; acc[2] = c2; acc[3] = c3;
}
#define TD_LD_AVX2 __builtin_cpu_supports("avx2")
#else
#define TD_LD_AVX2 0
#define td_ld_rows4_avx2 td_ld_rows4_sse2
#endif
/* td_linear_dyn (below) for one core, one activation row at a time: 4 weight rows sharing group
 * borders per pass (rows P apart, as the scalar fast path), the rows left one by one. */
__attribute__((noinline)) static void td_linear_dyn_simd(const int8_t *x8, const int32_t *F, int n, const int8_t *w8,
                                                         const int16_t *mw, int rows, int cols, td_scale c, int bits,
                                                         void *out, int out32)
{
    int P = 32 / (cols & 31 ? (cols & -cols) : 32);
    void (*rows4)(const int16_t *, const int8_t *, int, int32_t, int, const int16_t *, int32_t, int64_t *) =
        P == 1 && TD_LD_AVX2 ? td_ld_rows4_avx2 : td_ld_rows4_sse2;
    int quads = P == 1 ? rows / 4 : (rows % (4 * P) ? 0 : rows / 4);   /* 4-row passes */
    int16_t x16[TD_LD_SIMD_COLS];
    for (int t = 0; t < n; t++) {
        for (int i = 0; i < cols; i++) x16[i] = x8[t * cols + i];
        td_scale f = {F[2 * t], F[2 * t + 1]};
        const td_rescale_t rq = td_rescale_plan(td_scale_mul(f, c), bits);
        for (int q = 0; q < quads; q++) {   /* rows j + rP, r < 4; quads is a multiple of P */
            int j = 4 * q - 3 * (q & (P - 1));
            int64_t acc[4];
            rows4(x16, w8 + j * cols, P * cols, j * cols, cols, mw, P * cols / 32, acc);
            for (int r = 0; r < 4; r++) td_linear_dyn_out(out, out32, t * rows + j + r * P, acc[r], rq);
        }
        for (int j = 4 * quads; j < rows; j++) {
            int32_t base = j * cols;
            int64_t acc = 0;
            for (int i = 0; i < cols; ) {
                int32_t g = (base + i) >> 5;
                int end = ((g + 1) << 5) - base;
                if (end > cols) end = cols;
                acc += (int64_t)mw[g] * td_ld_dot(x16 + i, w8 + base + i, end - i);
                i = end;
            }
            td_linear_dyn_out(out, out32, t * rows + j, acc, rq);
        }
    }
}
#endif

/* out[t, j] = sat(apply(sum_g mw_g sum_{i in g} x8_i w8_ji, F_t * c)), groups of 32 over the
 * flattened [rows, cols] weight (they may straddle rows).
 * Fast path: 4 rows per pass that share their group borders (rows P apart, P = 32 / gcd(cols, 32):
 * row j + P starts P * cols / 32 groups after row j at the same offset within a group), so each
 * activation load feeds 4 MACs; int32 partial sums per group (|sum| <= 32 * 127 * 128 < 2^31), one
 * 64-bit multiply by the group mantissa per group and row; whole groups fully unrolled. Integer
 * sums in another order: the result is the same to the bit. On the cluster each core takes a
 * share of the weight rows (every output row t), then one barrier. */
__attribute__((noinline)) static void td_linear_dyn(const int8_t *x8, const int32_t *F, int n, const int8_t *w8,
                                                    const int16_t *mw, int rows, int cols, td_scale c, int bits,
                                                    void *out, int out32)
{
#ifdef TD_X86
    if (cols <= TD_LD_SIMD_COLS) {
        td_linear_dyn_simd(x8, F, n, w8, mw, rows, cols, c, bits, out, out32);
        return;
    }
#endif
    int gcd = cols & 31 ? (cols & -cols) : 32;
    int P = 32 / gcd;
    int fast = rows % (4 * P) == 0;
    int32_t gstep = P * cols / 32; /* groups between rows j and j + P */
    int t = 0;
    if (cols == 64 && rows % 4 == 0)
        for (; t + 4 <= n; t += 4)
            td_linear_dyn_c64x4(x8 + t * cols, F + 2 * t, w8, mw, rows, c, bits, out, out32, t * rows);
    for (; t < n; t++) {
        const int8_t *xr = x8 + t * cols;
        td_scale f = {F[2 * t], F[2 * t + 1]};
        td_scale s = td_scale_mul(f, c);
        const td_rescale_t rq = td_rescale_plan(s, bits);
        int j0 = 0;
        if (cols == 64 && rows >= 2) { /* P = 1: an odd last row alone */
            j0 = rows & ~1;
            td_linear_dyn_c64(xr, w8, mw, j0, s, bits, out, out32, t * rows);
        }
        if (fast) {
            TD_PAR_FOR2(jq, (rows - j0) / (4 * P), r, P) {   /* (4-row group, offset) pairs across the cores */
                    int j = j0 + jq * 4 * P + r;
                    int32_t base = j * cols;
                    const int8_t *w0 = w8 + base, *w1 = w0 + P * cols, *w2 = w1 + P * cols,
                                 *w3 = w2 + P * cols;
                    const int8_t *xp = xr;
                    int64_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
                    int i = 0;
                    while (i < cols) {
                        int32_t g = (base + i) >> 5;
                        int end = ((g + 1) << 5) - base;
                        if (end > cols) end = cols;
                        int len = end - i;
                        int32_t p0 = 0, p1 = 0, p2 = 0, p3 = 0;
                        if (len == 32) {
                            TD_LD_COL4(0); TD_LD_COL4(4); TD_LD_COL4(8); TD_LD_COL4(12);
                            TD_LD_COL4(16); TD_LD_COL4(20); TD_LD_COL4(24); TD_LD_COL4(28);
                            xp += 32; w0 += 32; w1 += 32; w2 += 32; w3 += 32;
                        } else {
                            int k = 0;
                            for (; k + 4 <= len; k += 4) {
                                TD_LD_COL4(0);
                                xp += 4; w0 += 4; w1 += 4; w2 += 4; w3 += 4;
                            }
                            for (; k < len; k++) {
                                TD_LD_COL(0);
                                xp++; w0++; w1++; w2++; w3++;
                            }
                        }
                        const int16_t *m = mw + g;
                        a0 += (int64_t)m[0] * p0;
                        a1 += (int64_t)m[gstep] * p1;
                        a2 += (int64_t)m[2 * gstep] * p2;
                        a3 += (int64_t)m[3 * gstep] * p3;
                        i = end;
                    }
                    int o = t * rows + j;
                    td_linear_dyn_out(out, out32, o, a0, rq);
                    td_linear_dyn_out(out, out32, o + P, a1, rq);
                    td_linear_dyn_out(out, out32, o + 2 * P, a2, rq);
                    td_linear_dyn_out(out, out32, o + 3 * P, a3, rq);
                }
            j0 = rows;
        }
        TD_PAR_FOR(jr, rows - j0) {
            const int j = j0 + jr;
            int32_t base = j * cols;
            const int8_t *wr = w8 + base;
            int64_t acc = 0;
            int i = 0;
            while (i < cols) {
                int32_t g = (base + i) >> 5;
                int end = ((g + 1) << 5) - base;
                if (end > cols) end = cols;
                int32_t part = 0;
                for (; i < end; i++) part += (int32_t)xr[i] * wr[i];
                acc += (int64_t)mw[g] * part;
            }
            td_linear_dyn_out(out, out32, t * rows + j, acc, rq);
        }
    }
    td_par_sync();   /* each core wrote its rows of every output row t */
}
#endif
