"""benchmarks/deeploy_suite.py: Deeploy's harness conventions (feeding, comparing, classes) on a
synthetic checkout built here, and, when $TINYDEPLOY_DEEPLOY names a Deeploy checkout, a subset of its
own tests on golden and host (the test data stay in that checkout)."""
import os
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import deeploy_suite as suite  # noqa: E402
from tinydeploy.frontend.onnx_import import import_model  # noqa: E402

DEEPLOY = os.environ.get("TINYDEPLOY_DEEPLOY")


def _add_model(dtype=TensorProto.FLOAT, extra_op=None):
    nodes = [helper.make_node("Add", ["a", "b"], ["y"])]
    if extra_op:
        nodes.append(helper.make_node(extra_op, ["y"], ["z"]))
    g = helper.make_graph(nodes, "add", [helper.make_tensor_value_info("a", dtype, [2, 3]),
                                         helper.make_tensor_value_info("b", dtype, [2, 3])],
                          [helper.make_tensor_value_info("z" if extra_op else "y", dtype, None)])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])


def test_feed_maps_arrays_by_position_tiles_and_casts():
    graph = import_model(_add_model(TensorProto.INT8))
    a = np.arange(6, dtype=np.float32).reshape(3, 2) - 2.7   # float holding values, another shape
    b = np.array([1.0, -2.0, 3.0])                            # tiled twice
    feeds = suite.feed([a, b, np.zeros(99)], graph)           # the third array is an extra: skipped
    assert list(feeds) == ["a", "b"] and all(v.dtype == np.int8 and v.shape == (2, 3) for v in feeds.values())
    assert feeds["a"].reshape(-1).tolist() == [-2, -1, 0, 0, 1, 2]   # C's conversion truncates
    assert feeds["b"].reshape(-1).tolist() == [1, -2, 3, 1, -2, 3]
    with pytest.raises(ValueError, match="do not tile"):
        suite.feed([np.zeros(4), b], graph)
    with pytest.raises(ValueError, match="1 arrays for 2 graph inputs"):
        suite.feed([b], graph)


def test_compare_integers_exact_floats_within_atol():
    graph = import_model(_add_model())
    y = np.array([[1, 2, -np.inf], [np.nan, 5, 1e6]], np.float32)
    assert suite.compare([y + 5e-5 * np.isfinite(y)], {"y": y}, graph) is None   # within 1e-4; -inf, NaN equal
    assert "1 of 6 values differ" in suite.compare([y + np.eye(1, 6, 4).reshape(2, 3) * 3e-4], {"y": y}, graph)
    assert "values, expected" in suite.compare([y[:1]], {"y": y}, graph)
    ig = import_model(_add_model(TensorProto.INT32))
    yi = np.array([[2**31 - 1, 0, 1], [2, 3, 4]], np.int32)
    assert suite.compare([yi.astype(np.int64)], {"y": yi}, ig) is None
    # the expected data as stored: float32 of 2^31 - 1 is 2^31, not equal to the int32 result
    assert suite.compare([yi.astype(np.float32)], {"y": yi}, ig) is not None


def _checkout(tmp_path, tests: dict) -> Path:
    """A folder laid out as Deeploy's: DeeployTest/Tests/<name>/{network.onnx, inputs.npz, outputs.npz}."""
    for name, files in tests.items():
        d = tmp_path / "DeeployTest" / "Tests" / name
        d.mkdir(parents=True)
        for f, v in files.items():
            onnx.save(v, d / f) if f.endswith(".onnx") else np.savez(d / f, *v)
    return tmp_path


def test_classes_through_the_worker_subprocess(tmp_path):
    a, b = np.ones((2, 3), np.float32), np.arange(6, dtype=np.float32).reshape(2, 3)
    root = _checkout(tmp_path, {
        "K/Add": {"network.onnx": _add_model(), "inputs.npz": [a, b], "outputs.npz": [a + b]},
        "K/AddOff": {"network.onnx": _add_model(), "inputs.npz": [a, b], "outputs.npz": [a + b + 1]},
        "K/Grad": {"network.onnx": _add_model(extra_op="SoftmaxGrad"), "inputs.npz": [a, b], "outputs.npz": [a]},
        "K/Lfs": {"network.onnx": _add_model()},
        "K/Bf16": {"network.onnx": _add_model(TensorProto.BFLOAT16), "inputs.npz": [a, b], "outputs.npz": [a]},
    })
    assert suite.tests(root) == ["K/Add", "K/AddOff", "K/Bf16", "K/Grad", "K/Lfs"]
    got = {t: suite.run_test(root, t, ["golden", "host"], 120) for t in suite.tests(root)}
    cls = {t: {r["golden"]["class"], r["host"]["class"]} for t, r in got.items()}
    assert cls == {"K/Add": {"PASS"}, "K/AddOff": {"MISMATCH"}, "K/Grad": {"EXCLUDED"}, "K/Lfs": {"NO-DATA"},
                   "K/Bf16": {"UNSUPPORTED"}}
    assert "SoftmaxGrad" in got["K/Grad"]["host"]["reason"] and "inputs.npz" in got["K/Lfs"]["host"]["reason"]
    slow = suite.run_test(root, "K/Add", ["golden", "host"], 0.05)   # a hang cannot stop the suite
    assert {slow["golden"]["class"], slow["host"]["class"]} == {"CRASH"} and "time-out" in slow["host"]["reason"]
    out = tmp_path / "results.md"
    suite.write(got, ["golden", "host"], 1.0, out)
    text = out.read_text()
    assert "| golden | 1 | 1 | 1 | 0 | 1 | 1 |" in text and "- K/Grad: EXCLUDED, training graph" in text
    assert "| K/AddOff | MISMATCH | MISMATCH | output 'y': 6 of 6 values differ" in text


# Deeploy's own tests that pass on golden and host (the six defects of issue 16 among them)
PASSING = ["Kernels/Integer/Add/Regular", "Kernels/FP32/Pad", "Kernels/Integer/MatMul/Regular", "Kernels/FP32/Exp",
           "Kernels/Integer/Concat", "Others/Backtracking"]


@pytest.mark.skipif(not DEEPLOY, reason="set TINYDEPLOY_DEEPLOY to a Deeploy checkout (pulp-platform/Deeploy)")
@pytest.mark.parametrize("test", PASSING)
def test_deeploy_tests_pass(test):
    folder = Path(DEEPLOY) / "DeeployTest" / "Tests" / test
    got = {t: (cls, why) for t, cls, why, _ in suite.run_one(folder, ["golden", "host"])}
    assert got == {"golden": ("PASS", ""), "host": ("PASS", "")}


@pytest.mark.skipif(not DEEPLOY, reason="set TINYDEPLOY_DEEPLOY to a Deeploy checkout (pulp-platform/Deeploy)")
def test_deeploy_training_graphs_excluded_and_departures_listed():
    base = Path(DEEPLOY) / "DeeployTest" / "Tests"
    got = list(suite.run_one(base / "Kernels/FP32/Softmax/Grad", ["host"]))
    assert got[0][1] == "EXCLUDED"
    for test in suite.DEPARTURES:
        assert (base / test).is_dir(), test
        (_, cls, why, _), = suite.run_one(base / test, ["golden"])
        assert cls in ("MISMATCH", "UNSUPPORTED"), (test, cls)


def test_onnx_semantics_where_deeploy_departs():
    """The DEPARTURES of the results file, on graphs built here: ONNX's reading, not Deeploy's."""
    from onnx.reference import ReferenceEvaluator

    from tinydeploy.errors import TinydeployError
    from tinydeploy.golden import run_graph
    from helpers import compile_model

    def model(node, ins, outs, opset=13):
        g = helper.make_graph([node], "g", [helper.make_tensor_value_info(n, t, s) for n, t, s in ins],
                              [helper.make_tensor_value_info(n, t, s) for n, t, s in outs])
        return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])

    f, i32, i64 = TensorProto.FLOAT, TensorProto.INT32, TensorProto.INT64
    # SoftmaxCrossEntropyLoss: output 0 is the loss (a scalar for 'mean'), not log_prob
    sce = helper.make_node("SoftmaxCrossEntropyLoss", ["x", "t"], ["log_prob"], reduction="mean")
    with pytest.raises(TinydeployError, match=r"log_prob.*\[\] float32.*\[4, 10\]"):
        compile_model(model(sce, [("x", f, [4, 10]), ("t", i64, [4])], [("log_prob", f, [4, 10])]))
    c = compile_model(model(sce, [("x", f, [4, 10]), ("t", i64, [4])], [("log_prob", f, None)]))
    assert c.graph.tensors["log_prob"].shape == ()
    # Add: the output has the inputs' type
    add = helper.make_node("Add", ["a", "b"], ["y"])
    with pytest.raises(TinydeployError, match="node .*Add.* float32, but the model declares .* int32"):
        compile_model(model(add, [("a", f, [2]), ("b", f, [2])], [("y", i32, [2])]))
    # ReduceMean: float keeps the fraction; int32 truncates toward zero as ONNX's reference does
    for et, dt in ((f, np.float32), (i32, np.int32)):
        rm = model(helper.make_node("ReduceMean", ["x"], ["y"], axes=[1], keepdims=0), [("x", et, [2, 4])],
                   [("y", et, None)])
        x = np.array([[-5, 0, 0, 0], [7, 2, 0, 0]], dt)
        gold = run_graph(compile_model(rm).graph, {"x": x})["y"]
        assert np.array_equal(gold, ReferenceEvaluator(rm).run(None, {"x": x})[0])
        assert gold.tolist() == ([-1.25, 2.25] if et == f else [-1, 2])


@pytest.mark.skipif(not DEEPLOY, reason="set TINYDEPLOY_DEEPLOY to a Deeploy checkout (pulp-platform/Deeploy)")
@pytest.mark.parametrize("graph, targets", [("microLlama1", ("golden", "host", "rv32")),
                                            ("microLlama2_parallel", ("golden", "host"))])
def test_microllama_bit_exact(graph, targets):
    """Deeploy's microLlama (505 nodes): a decode step and a prefill equal its outputs bit for bit;
    benchmarks/deeploy_microllama.py runs all 16 graphs with cycle counts."""
    import deeploy_microllama as ml
    row = ml.measure(Path(DEEPLOY), graph, targets)
    assert row["classes"] == {t: "bit-exact" for t in targets}
    assert row["nodes"] == 505 and ("rv32" not in targets or row["cycles"]["rv32"] > row["macs"])
