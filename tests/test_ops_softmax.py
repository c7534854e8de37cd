"""Softmax: float kernel vs ORT; integer QSoftmax (exp table, fixed-point reciprocal) bit-exact with
golden and within 1 LSB of ORT, mean signed error ~0."""
import numpy as np
import pytest

from ops_testlib import Cases, compiler


def _float_cases(opset=17):
    b = Cases(seed=30, opset=opset)
    for shape, axis in [((2, 3, 8), -1), ((2, 3, 8), 1), ((4, 5), 0), ((1, 2, 3, 4), 2), ((7,), 0)]:
        for op in ("Softmax", "LogSoftmax"):
            b.out(b.op(op, b.raw_input(shape, np.float32), axis=axis), label=f"{op}{shape}{axis}")
    return b


@pytest.mark.parametrize("cc", ["gcc", "clang", "asan"])
def test_float_softmax(cc):
    _float_cases().check(**compiler(cc), rtol=1e-5, atol=1e-6)


def test_float_softmax_opset11_flattens_trailing_axes():
    _float_cases(opset=11).check(rtol=1e-5, atol=1e-6)


def _quant_cases(dtype=np.int8):
    b = Cases(seed=31)
    u = 128 if dtype == np.uint8 else 0
    for shape, axis, sx in [((4, 4, 16), -1, 0.05), ((2, 8, 8), -1, 0.2), ((3, 40), -1, 0.02), ((2, 5, 6), 1, 0.1),
                            ((16, 1), -1, 0.1), ((2, 4, 100), -1, 0.08), ((8, 32), -1, 0.5)]:
        x = b.act(shape, sx, 5 + u, dtype)
        b.q_out(b.op("Softmax", x, axis=axis), 1 / 256, -128 + u, dtype, f"{shape}{axis}{sx}")
    # a non-default output quantization
    b.q_out(b.op("Softmax", b.act((6, 12), 0.1, -3 + u, dtype), axis=-1), 1 / 200, -100 + u, dtype, "sy=1/200")
    return b


@pytest.mark.parametrize("dtype", [np.int8, np.uint8], ids=["s8", "u8"])
def test_quantized_softmax(dtype):
    c, stats = _quant_cases(dtype).check(max_lsb=1, mean_lsb=0.05)
    assert all(n.op != "Softmax" for n in c.graph.nodes)


def test_quantized_softmax_sanitizers():
    _quant_cases().check(cc="clang", extra=["-fsanitize=address,undefined", "-fno-omit-frame-pointer"])


# ---- property: the integer golden against exact (float64) softmax, no ORT needed -----------------
from hypothesis import given, settings, strategies as st  # noqa: E402

from tinydeploy.ir import Node  # noqa: E402
from tinydeploy.ops.softmax import exp_table, qsoftmax, reciprocal_constant  # noqa: E402


@settings(max_examples=300, deadline=None)
@given(L=st.integers(1, 300), sx=st.floats(0.003, 2.0), sy=st.sampled_from([1 / 256, 1 / 255, 1 / 200, 0.01]),
       seed=st.integers(0, 2**31))
def test_qsoftmax_golden_is_correctly_rounded(L, sx, sy, seed):
    """Off by at most 1 LSB from the exactly rounded softmax, and only within 0.02 LSB of a tie."""
    x = np.random.default_rng(seed).integers(-128, 128, (3, L)).astype(np.int8)
    C, Sc = reciprocal_constant(sy)
    node = Node("QSoftmax", "s", ["x"], ["y"], dict(axis=-1, table=exp_table(sx), C=C, Sc=Sc, zy=-128, lo=-128, hi=127))
    y = qsoftmax(node, None, [x])[0].astype(np.int64)
    v = x.astype(np.float64) * sx
    p = np.exp(v - v.max(axis=1, keepdims=True))
    exact = p / p.sum(axis=1, keepdims=True) / sy - 128
    ref = np.clip(np.rint(exact), -128, 127)
    off = y != ref
    assert np.abs(y - ref).max() <= 1
    assert np.all(np.abs(np.abs(exact[off] - np.floor(exact[off])) - 0.5) < 0.02), exact[off]


def test_softmax_exp2_against_float():
    """softmax_exp2 (QAttentionKV's integer softmax, run-time score scale): Q15 probabilities within
    0.3 % + 2 LSB of the float softmax, masked positions 0, an all-equal row uniform."""
    import math

    from tinydeploy.ops.intmath import scale_from_float, scale_to_float
    from tinydeploy.ops.softmax import softmax_exp2
    r = np.random.default_rng(9)
    acc = r.integers(-2**25, 2**25, (4, 300))
    acc[3] = 12345
    unit = 3e-7  # one score step in natural-log units
    G = scale_from_float(unit * math.log2(math.e) * 256)
    visible = np.ones(acc.shape, bool)
    visible[1, 150:] = False
    p = softmax_exp2(acc, visible, (np.full((4, 1), G[0]), np.full((4, 1), G[1])), 16)
    x = np.where(visible, acc * unit * scale_to_float(G) / (unit * math.log2(math.e) * 256), -np.inf)
    ref = np.exp(x - x.max(axis=1, keepdims=True))
    ref = ref / ref.sum(axis=1, keepdims=True) * 2**15
    assert np.all(np.abs(p - ref) <= ref * 3e-3 + 2)
    assert not p[1, 150:].any() and np.ptp(p[3]) == 0
