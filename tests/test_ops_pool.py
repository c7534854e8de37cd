"""Pools: float kernels vs ORT, integer QMaxPool / QAvgPool bit-exact with golden and within 1 LSB of ORT."""
import numpy as np
import pytest

from ops_testlib import Cases, compiler

# (kernel, strides, pads, ceil_mode, count_include_pad, dilations)
CONFIGS = [([2, 2], [2, 2], [0, 0, 0, 0], 0, 0, None), ([3, 3], [1, 1], [1, 1, 1, 1], 0, 0, None),
           ([3, 3], [2, 2], [1, 1, 1, 1], 0, 1, None), ([3, 2], [2, 2], [0, 0, 0, 0], 1, 0, None),
           ([3, 3], [2, 2], [1, 0, 1, 1], 1, 1, None), ([2, 3], [1, 2], [0, 1, 1, 0], 1, 0, None),
           ([3, 3], [2, 1], [0, 0, 0, 0], 0, 0, [2, 1])]


def _attrs(k, s, p, ceil, incl, dil, op):
    a = dict(kernel_shape=k, strides=s, pads=p, ceil_mode=ceil)
    if op == "AveragePool":
        a["count_include_pad"] = incl
    elif dil:
        a["dilations"] = dil
    return a


def _float_cases():
    b = Cases(seed=20)
    for op in ("MaxPool", "AveragePool"):
        for cfg in CONFIGS:
            if op == "AveragePool" and cfg[5]:
                continue
            b.out(b.op(op, b.raw_input((2, 3, 7, 8), np.float32), **_attrs(*cfg, op)), label=f"{op}{cfg}")
        b.out(b.op(op, b.raw_input((1, 2, 9), np.float32), kernel_shape=[3], strides=[2], pads=[1, 1]), label=op + "1d")
        b.out(b.op(op, b.raw_input((1, 3, 6, 6), np.float32), kernel_shape=[3, 3], auto_pad="SAME_UPPER", strides=[2, 2]), label=op + "same")
    for op in ("GlobalAveragePool", "GlobalMaxPool"):
        b.out(b.op(op, b.raw_input((2, 3, 5, 4), np.float32)), label=op)
        b.out(b.op(op, b.raw_input((1, 4, 7), np.float32)), label=op + "1d")
    return b


@pytest.mark.parametrize("cc", ["gcc", "clang", "asan"])
def test_float_pools(cc):
    _float_cases().check(**compiler(cc), rtol=1e-5)


def _quant_cases(dtype=np.int8):
    b = Cases(seed=21)
    u = 128 if dtype == np.uint8 else 0
    for op in ("MaxPool", "AveragePool"):
        for cfg in CONFIGS:
            if op == "AveragePool" and cfg[5]:
                continue
            # the quantizer's MaxPool keeps the input quantization; also test a rescaling one
            for sx, zx, sy, zy in ([(0.05, 3, 0.05, 3), (0.05, 3, 0.03, -10)] if op == "MaxPool" else [(0.05, 3, 0.04, -2)]):
                b.q_out(b.op(op, b.act((2, 3, 7, 8), sx, zx + u, dtype), **_attrs(*cfg, op)), sy, zy + u, dtype, f"{op}{cfg}{sy}")
    for op in ("GlobalAveragePool", "GlobalMaxPool"):
        b.q_out(b.op(op, b.act((2, 8, 6, 6), 0.05, 7 + u, dtype)), 0.02, -5 + u, dtype, op)
    b.q_out(b.op("Relu", b.op("GlobalAveragePool", b.act((1, 64, 5, 5), 0.05, 7 + u, dtype))), 0.01, -128 + u, dtype, "gap_relu")
    return b


@pytest.mark.parametrize("dtype", [np.int8, np.uint8], ids=["s8", "u8"])
def test_quantized_pools(dtype):
    c, stats = _quant_cases(dtype).check(max_lsb=1)
    ops = {n.op for n in c.graph.nodes}
    assert {"QMaxPool", "QAvgPool"} <= ops and not ops & {"MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool"}, ops
    for label, (mx, _, _) in stats.items():
        if label.startswith("MaxPool") and "0.05" in label.split(")")[-1]:
            assert mx == 0, label   # same quantization: the integer max is exact


def test_quantized_pools_sanitizers():
    _quant_cases().check(cc="clang", extra=["-fsanitize=address,undefined", "-fno-omit-frame-pointer"])
