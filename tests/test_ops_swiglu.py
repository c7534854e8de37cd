"""QSwiGLU: host C == golden bit for bit (first n rows); silu(h1) * h3 within the sigmoid table's
error and the int8 row quantization of the exact value; the sigmoid table saturates beyond +-16."""
import numpy as np

from ops_testlib import IrCases
from tinydeploy.ops.intmath import scale_from_float
from tinydeploy.ops.linear import row_scales
from tinydeploy.ops.swiglu import SIGMOID_Q15


def test_swiglu_rows():
    rng = np.random.default_rng(5)
    T, H, fb = 6, 172, 11  # h1 in [-16, 16) at 2^-11, plus values past the table
    h1 = rng.integers(-32768, 32768, (T, H)).astype(np.int16)
    h1[0, :4] = [-32768, 32767, 0, -1]
    h3 = rng.integers(-3000, 3000, (T, H)).astype(np.int16)
    b = IrCases("swiglu")
    ins = [b.input("h1", h1), b.input("h3", h3), b.input("n", np.array([5], np.int32)),
           b.const("sig", SIGMOID_Q15.astype(np.int32))]
    g8, F = b.node("QSwiGLU", ins, ((T, H), np.int8), ((T, 2), np.int32), frac_bits=fb,
                   c=scale_from_float(1 / 127), qmax=127)
    gold, host = b.run()
    for o in (g8, F):
        np.testing.assert_array_equal(gold[o][:5], host[o][:5])
    x = h1 / 2.0**fb
    real = x / (1 + np.exp(-x)) * 2.0**fb * h3  # in units of h1 * h3
    m, e = row_scales(gold[F])
    got = gold[g8] * (m * 2.0 ** -e.astype(float))[:, None]
    row = np.abs(real).max(axis=1, keepdims=True)
    assert (np.abs(got - real) <= row / 254 + row * 2**-12 + np.abs(h3) * (np.abs(h1) * 2**-15 + 1)).all()
