"""passes/integerize.py: float32 graphs holding integers, given integer input types, computed in
integers exactly where float32 is exact, and equal to the float graph's ONNX result bit for bit."""
import tempfile
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from tinydeploy import targets
from tinydeploy.compiler import compile_onnx
from tinydeploy.errors import TinydeployError
from tinydeploy.golden import run_graph

RNG = np.random.default_rng(3)


def _save(nodes, inputs, outputs, inits, tmp):
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs],
                          [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in outputs],
                          [numpy_helper.from_array(v.astype(np.float32), k) for k, v in inits.items()])
    path = Path(tmp) / "m.onnx"
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), path)
    return path


def _run(path, feeds, ints, target="golden"):
    c = compile_onnx(path, integer_inputs=ints)
    fed = {k: v.astype(c.graph.tensors[k].dtype) for k, v in feeds.items()}
    if target == "golden":
        return c, run_graph(c.graph, fed)
    with tempfile.TemporaryDirectory() as tmp:
        return c, targets.get(target).run(c, fed, Path(tmp))[0]


def test_linear_layer_becomes_integer_and_equals_the_float_graph(tmp_path):
    x = RNG.integers(-128, 128, (1, 4, 16)).astype(np.float32)
    w, b = RNG.integers(-128, 128, (16, 12)), RNG.integers(-1000, 1000, (12,))   # N = 8 + 4
    nodes = [helper.make_node("MatMul", ["x", "w"], ["mm"]), helper.make_node("Add", ["mm", "b"], ["acc"]),
             helper.make_node("Mul", ["acc", "three"], ["m3"]), helper.make_node("Transpose", ["m3"], ["y"], perm=[0, 2, 1]),
             helper.make_node("Sqrt", ["sq_in"], ["sq"]), helper.make_node("Add", ["y", "sq"], ["z"]),
             helper.make_node("Transpose", ["x"], ["xt"], perm=[0, 2, 1]), helper.make_node("MatMul", ["x", "xt"], ["g"])]
    nodes.insert(4, helper.make_node("Abs", ["y"], ["sq_in"]))
    path = _save(nodes, [("x", [1, 4, 16])], [("y", [1, 12, 4]), ("z", [1, 12, 4]), ("g", [1, 4, 4])],
                 {"w": w, "b": b, "three": np.array(3)}, tmp_path)
    c0, want = _run(path, {"x": x}, {})
    c, gold = _run(path, {"x": x}, {"x": np.int8})
    ops = {n.op: n for n in c.graph.nodes}
    assert "MatMul" not in ops and ops["MatMulW"].outputs == ["acc"] and len(ops["MatMulW"].inputs) == 3  # bias in
    mmi = ops["MatMulInteger"]   # activation x activation; the Transpose of B read in place
    assert mmi.inputs == ["x", "x"] and mmi.attrs["tb"] == 1
    assert c.graph.tensors["y"].dtype == np.int32 and c.graph.tensors["z"].dtype == np.float32   # Sqrt stays float
    assert c0.graph.tensors["y"].dtype == np.float32
    for k in want:
        assert np.array_equal(gold[k].astype(np.float32), want[k]), k
    for target in ("host", "rv32", "cluster"):   # td_mmw_s8: portable C, RV32 asm steps, split across cores
        _, out = _run(path, {"x": x}, {"x": np.int8}, target)
        for k in gold:
            assert np.array_equal(out[k], gold[k]), (target, k)


def test_inexact_float_arithmetic_stays_float(tmp_path):
    """int32 inputs near 2^31 (Deeploy's Others/TypeInference): float32 rounds the sum, so the Adds
    stay float; a fractional constant keeps its Mul float."""
    a = np.array([[2**30, -5, 7, 1]], np.float32)
    b = np.array([[3, 2**29 + 1, -9, 2]], np.float32)
    nodes = [helper.make_node("Add", ["a", "b"], ["s"]), helper.make_node("Mul", ["b", "half"], ["h"])]
    path = _save(nodes, [("a", [1, 4]), ("b", [1, 4])], [("s", [1, 4]), ("h", [1, 4])], {"half": np.array(0.5)},
                 tmp_path)
    c, gold = _run(path, {"a": a, "b": b}, {"a": np.int32, "b": np.int32})
    _, want = _run(path, {"a": a, "b": b}, {})
    assert c.graph.tensors["s"].dtype == np.float32 and c.graph.tensors["h"].dtype == np.float32
    assert all(np.array_equal(gold[k], want[k]) for k in want)


def test_integer_inputs_are_checked(tmp_path):
    path = _save([helper.make_node("Relu", ["x"], ["y"])], [("x", [2])], [("y", [2])], {}, tmp_path)
    with pytest.raises(TinydeployError, match="integer input 'nope'"):
        compile_onnx(path, integer_inputs={"nope": np.int8})
    with pytest.raises(TinydeployError, match="integer input 'x'"):
        compile_onnx(path, integer_inputs={"x": np.float32})
