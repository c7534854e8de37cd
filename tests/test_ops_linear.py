"""QLinearDyn and QEmbedding (int8 weights with per-group scales, run-time row scales): host C ==
golden bit for bit on every kernel path (4 activation rows x 4 weight rows, 8 weight rows of 64
columns, 4 rows sharing group borders, generic), within the scale rounding of the exact real result;
only the first n rows are computed."""
import numpy as np
import pytest

from ops_testlib import IrCases
from tinydeploy.ops.intmath import scale_from_float, scale_to_float
from tinydeploy.ops.linear import effective_weight

RNG = np.random.default_rng(7)


def _weights(N, K):
    w8 = RNG.integers(-127, 128, (N, K)).astype(np.int8)
    mw = RNG.integers(1 << 13, 1 << 15, -(-N * K // 32)).astype(np.int16)
    return w8, mw


def _row_scales(T, lo, hi):
    return np.array([scale_from_float(v) for v in RNG.uniform(lo, hi, T)], np.int32)


@pytest.mark.parametrize("extra", [None, ["-DTD_NO_AVX2"], ["-DTD_NO_SIMD"]], ids=["avx2", "sse2", "scalar"])
def test_linear_dyn_paths_and_rows(extra):
    """x86-64 hosts take the SSE2 path (4 weight rows sharing group borders per pass, rows of whole
    groups in AVX2 where the CPU has it; the rows left one by one; segments by 16s, an 8, a scalar
    tail); TD_NO_AVX2 keeps SSE2 only; TD_NO_SIMD the scalar kernels rv32 and the cluster use."""
    b = IrCases("linear")
    T = 6
    n = b.input("n", np.array([4], np.int32))
    cases = []
    # (N, K): c64 path (K = 64, N % 8 == 0), shared group borders (K = 172: P = 8, N % 32 == 0),
    # generic (N odd), groups straddling rows everywhere but the first; whole groups per row with N % 4
    # left over (the SIMD path's 4-row passes, then one row)
    for N, K, bits, rows in [(16, 64, 16, n), (64, 172, 16, n), (9, 40, 32, ""), (12, 64, 32, ""), (10, 96, 32, "")]:
        x8 = RNG.integers(-127, 128, (T, K)).astype(np.int8)
        F = _row_scales(T, 1e-3, 1e-2)
        w8, mw = _weights(N, K)
        c = scale_from_float(3000 / (np.sqrt(K) * 73**2 * 2**14 * 5e-3))
        y = b.node("QLinearDyn", [b.input(f"x{K}_{N}", x8), b.input(f"F{K}_{N}", F), rows,
                                  b.const(f"w{K}_{N}", w8), b.const(f"m{K}_{N}", mw)],
                   ((T, N), np.int32 if bits > 16 else np.int16), c=c, bits=bits)
        cases.append((y, x8, F, w8, mw, c, 4 if rows else T, bits))
    gold, host = b.run(extra=extra)
    for y, x8, F, w8, mw, c, rows, bits in cases:
        np.testing.assert_array_equal(gold[y][:rows], host[y][:rows], err_msg=y)
        real = x8.astype(np.float64) @ effective_weight(w8, mw).T
        real *= np.array([scale_to_float(f) for f in F])[:, None] * scale_to_float(c)
        lim = (1 << (bits - 1)) - 1
        err = np.abs(gold[y] - np.clip(real, -lim - 1, lim))
        assert (err <= 0.5 + np.abs(real) * 2**-13).all(), (y, err.max())


def test_embedding_rows():
    b = IrCases("embedding")
    w8, mw = _weights(40, 24)  # groups of 32 straddle the rows of 24
    tok = RNG.integers(0, 40, 9).astype(np.int32)
    c = scale_from_float(0.005)
    y = b.node("QEmbedding", [b.input("tok", tok), b.input("n", np.array([7], np.int32)), b.const("w8", w8),
                              b.const("mw", mw)], ((9, 24), np.int16), c=c, bits=16)
    gold, host = b.run()
    np.testing.assert_array_equal(gold[y][:7], host[y][:7])
    real = np.clip(effective_weight(w8, mw)[tok] * scale_to_float(c), -32768, 32767)
    assert np.abs(gold[y] - real).max() <= 0.5 + np.abs(real).max() * 2**-14
