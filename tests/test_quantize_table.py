"""Per-tensor 8-bit QuantizeLinear / DequantizeLinear by table (td_quantize_tab, td_dequantize_tab):
no float arithmetic on the target, yet bit for bit the golden (and onnxruntime) on ties, near-ties,
saturation, ±0, subnormals and ±inf, on the host and on the soft-float RV32IMC."""
import tempfile
from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from helpers import compile_model, golden_and_host, ort_run
from tinydeploy.compiler import emit_c
from tinydeploy.golden import run_graph
from tinydeploy.ops.quantize_linear import key_to_f32

_TP = {np.dtype(np.int8): TensorProto.INT8, np.dtype(np.uint8): TensorProto.UINT8}


def _roundtrip(scale, zp, dtype, n):
    """x (float) -> QuantizeLinear -> q (graph output) -> DequantizeLinear -> y (graph output)."""
    inits = [numpy_helper.from_array(np.float32(scale), "s"), numpy_helper.from_array(np.array(zp, dtype), "z")]
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"]),
             helper.make_node("DequantizeLinear", ["q", "s", "z"], ["y"])]
    g = helper.make_graph(nodes, "qdq", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [n])],
                          [helper.make_tensor_value_info("q", _TP[np.dtype(dtype)], [n]),
                           helper.make_tensor_value_info("y", TensorProto.FLOAT, [n])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    return m


def _hard_values(scale, zp, seed=0):
    """Exact ties (k + 0.5)·s and their float32 neighbours, the saturation edges, random values at
    several magnitudes, ±0, subnormals, huge values, ±inf and NaNs of both signs."""
    s = np.float32(scale)
    k = np.arange(-300, 300, dtype=np.float32)
    ties = (k + np.float32(0.5)) * s
    near = np.concatenate([ties, np.nextafter(ties, np.float32(np.inf)), np.nextafter(ties, np.float32(-np.inf))])
    rng = np.random.default_rng(seed)
    rand = np.concatenate([rng.standard_normal(200) * s * m for m in (1, 30, 300)]).astype(np.float32)
    special = np.array([0.0, -0.0, 1e-45, -1e-45, 1e-38, -1e-38, 3e38, -3e38, np.inf, -np.inf], np.float32)
    nans = np.array([0x7FC00000, 0xFFC00000, 0x7F800001, 0xFFFFFFFF], np.uint32).view(np.float32)
    return np.concatenate([near, rand, special, nans]).astype(np.float32)


CASES = [(0.1, 0, np.int8), (2.0 ** -7, -128, np.int8), (3.0, 5, np.int8), (1e-3, 127, np.int8),
         (0.0473, 128, np.uint8), (0.25, 0, np.uint8)]


@pytest.mark.parametrize("scale,zp,dtype", CASES, ids=[f"{np.dtype(c[2]).name}-s{c[0]:g}-z{c[1]}" for c in CASES])
def test_table_quantize_equals_golden_and_onnxruntime(scale, zp, dtype):
    x = _hard_values(scale, zp)
    m = _roundtrip(scale, zp, dtype, x.size)
    c, gold, host = golden_and_host(m, {"x": x})
    with tempfile.TemporaryDirectory() as tmp:
        code = "".join(f.read_text() for f in emit_c(c, Path(tmp)).sources if f.suffix == ".c")
    assert "td_quantize_tab_" in code and "td_dequantize_tab_" in code
    ref = ort_run(m, {"x": x})
    assert np.array_equal(gold["q"], ref["q"]), "golden QuantizeLinear differs from onnxruntime"
    assert np.array_equal(gold["q"], host["q"])
    assert np.array_equal(gold["y"].view(np.uint32), host["y"].view(np.uint32))
    assert (host["q"][np.isnan(x)] == np.iinfo(dtype).min).all()   # NaN → the lowest value, either sign


def test_thresholds_are_the_exact_level_boundaries():
    """Each threshold key maps to its level and the float just below it to the level below."""
    from tinydeploy.ops.quantize_linear import quantize_thresholds
    c = compile_model(_roundtrip(0.0731, -3, np.int8, 4))
    q = next(n for n in c.graph.nodes if n.op == "QuantizeLinear")
    t = quantize_thresholds(q, c.graph, -128).astype(np.int64)
    assert np.all(np.diff(t[1:]) > 0)
    sub = lambda x: run_graph(type(c.graph)("t", c.graph.tensors, [q], [q.inputs[0]], [q.outputs[0]]),  # noqa: E731
                              {q.inputs[0]: x})[q.outputs[0]].astype(np.int64)
    levels = np.arange(-127, 128)
    x_at, x_below = key_to_f32(t[1:]), key_to_f32(t[1:] - 1)
    c.graph.tensors[q.inputs[0]].shape = (255,)
    assert np.array_equal(sub(x_at), levels) and np.array_equal(sub(x_below), levels - 1)


def test_table_quantize_on_rv32_soft_float():
    from tinydeploy.targets.rv32 import network_run
    from tinydeploy.targets.rv32.runner import Rv32Config
    x = _hard_values(0.0473, -7)
    c = compile_model(_roundtrip(0.0473, -7, np.int8, x.size))
    gold = run_graph(c.graph, {"x": x})
    with tempfile.TemporaryDirectory() as tmp:
        proj = emit_c(c, Path(tmp) / "c")
        rv, meas = network_run.run(proj, c.graph, {"x": x}, Path(tmp), Rv32Config())
    assert np.array_equal(gold["q"], rv["q"])
    assert np.array_equal(gold["y"].view(np.uint32), rv["y"].view(np.uint32))
    # integer compares only: no soft-float division left in the program
    assert meas["layer_cycles"][0] < 60 * x.size
