"""Reductions: float kernels vs ORT (attribute axes at opset 17, input axes at opset 18), integer
QReduce (Mean / Sum / Max / Min) bit-exact with golden and within 1 LSB of ORT."""
import numpy as np
import pytest

from ops_testlib import Cases

FLOAT_OPS = ["ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceSumSquare", "ReduceL1",
             "ReduceL2", "ReduceLogSum", "ReduceLogSumExp"]
AXES = [([1], 1), ([0, 2], 0), ([-1], 1), ([1, 3], 1), (None, 0), ([0, 1, 2, 3], 1)]


def _reduce(b, op, x, axes, keep, opset):
    if axes is None:
        return b.op(op, x, keepdims=keep)
    if opset >= 18 or op == "ReduceSum":
        return b.op(op, x, b._const(np.array(axes, np.int64), "axes"), keepdims=keep)
    return b.op(op, x, axes=axes, keepdims=keep)


@pytest.mark.parametrize("opset", [17, 18])
def test_float_reductions(opset):
    b = Cases(seed=50, opset=opset)
    for op in FLOAT_OPS:
        for axes, keep in AXES:
            x = b.raw_input((2, 3, 4, 5), np.float32)
            if op in ("ReduceLogSum", "ReduceProd"):   # keep the log argument positive and products tame
                x = b.op("Add", b.op("Mul", x, x), b.fconst(np.float32(0.5)))
            b.out(_reduce(b, op, x, axes, keep, opset), label=f"{op}{axes}")
    if opset >= 18:   # noop_with_empty_axes keeps the input as it is
        b.out(b.op("ReduceMean", b.raw_input((2, 3), np.float32), noop_with_empty_axes=1), label="noop")
    b.check(rtol=1e-5, atol=1e-5, cc="clang" if opset == 18 else "gcc",
            extra=["-fsanitize=address,undefined", "-fno-omit-frame-pointer"] if opset == 18 else None)


def _quant_cases(dtype=np.int8):
    b = Cases(seed=51)
    u = 128 if dtype == np.uint8 else 0
    for op in ("ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin"):
        for axes, keep in AXES[:5]:
            x = b.act((2, 6, 4, 8), 0.05, 3 + u, dtype)
            sy = 0.3 if op == "ReduceSum" else 0.04
            b.q_out(_reduce(b, op, x, axes, keep, 17), sy, -4 + u, dtype, f"{op}{axes}")
    return b


@pytest.mark.parametrize("dtype", [np.int8, np.uint8], ids=["s8", "u8"])
def test_quantized_reductions(dtype):
    c, stats = _quant_cases(dtype).check(max_lsb=1)
    assert all(n.op == "QReduce" for n in c.graph.nodes if n.op.startswith("Reduce") or n.op == "QReduce")
    assert sum(n.op == "QReduce" for n in c.graph.nodes) == 20


def test_quantized_reductions_sanitizers():
    _quant_cases().check(cc="clang", extra=["-fsanitize=address,undefined", "-fno-omit-frame-pointer"])
