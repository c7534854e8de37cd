"""Softmax: float kernel vs ORT; integer QSoftmax (exp table, fixed-point reciprocal) bit-exact with
golden and within 1 LSB of ORT, mean signed error ~0."""
import numpy as np
import pytest

from ops_testlib import Cases


def _float_cases(opset=17):
    b = Cases(seed=30, opset=opset)
    for shape, axis in [((2, 3, 8), -1), ((2, 3, 8), 1), ((4, 5), 0), ((1, 2, 3, 4), 2), ((7,), 0)]:
        for op in ("Softmax", "LogSoftmax"):
            b.out(b.op(op, b.raw_input(shape, np.float32), axis=axis), label=f"{op}{shape}{axis}")
    return b


@pytest.mark.parametrize("cc", ["gcc", "clang"])
def test_float_softmax(cc):
    _float_cases().check(cc=cc, rtol=1e-5, atol=1e-6)


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
