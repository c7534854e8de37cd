"""--dialect deeploy (frontend/lenient.py): an op newer than the file's opset, and Pad's opset-2
attributes at opset >= 11, are read as meant; plain ONNX refuses both, naming the op."""
import subprocess
import sys

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from helpers import ort_run
from tinydeploy.compiler import compile_graph
from tinydeploy.errors import TinydeployError
from tinydeploy.frontend.onnx_import import import_model
from tinydeploy.golden import run_graph

X = np.random.default_rng(0).standard_normal((2, 3, 8)).astype(np.float32)


def _model(node, opset, inits=()):
    """The output's shape is declared, as in Deeploy's files: ONNX's inference does not see through a
    node read leniently."""
    shape = [2, 4, 11] if node.op_type == "Pad" else list(X.shape)
    g = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(X.shape))],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)], list(inits))
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    return m


def _ln_inits():
    return [numpy_helper.from_array(np.linspace(0.5, 1.5, 8, dtype=np.float32), "g"),
            numpy_helper.from_array(np.linspace(-1, 1, 8, dtype=np.float32), "b")]


# (node, opset Deeploy's file states, the opset that defines the node as meant, initializers)
CASES = {
    "LayerNormalization@12": (helper.make_node("LayerNormalization", ["x", "g", "b"], ["y"], axis=-1, epsilon=1e-5),
                              12, 17, _ln_inits()),
    "HardSwish@10": (helper.make_node("HardSwish", ["x"], ["y"]), 10, 14, []),
    "Gelu@19": (helper.make_node("Gelu", ["x"], ["y"]), 19, 20, []),
    "Pad attribute pads@13": (helper.make_node("Pad", ["x"], ["y"], pads=[0, 1, 2, 0, 0, 1], value=-3.0), 13, 10, []),
}


@pytest.mark.parametrize("case", CASES)
def test_plain_onnx_refuses_and_deeploy_dialect_reads_as_meant(case):
    node, stated, meant, inits = CASES[case]
    lenient = _model(node, stated, inits)
    with pytest.raises(TinydeployError, match=node.op_type):
        import_model(onnx.ModelProto.FromString(lenient.SerializeToString()))
    g = import_model(onnx.ModelProto.FromString(lenient.SerializeToString()), dialect="deeploy")
    want = ort_run(_model(node, meant, inits), {"x": X})["y"]
    c = compile_graph(g)
    gold = run_graph(c.graph, {"x": X})["y"]
    np.testing.assert_allclose(gold, want, rtol=1e-5, atol=1e-6)


def test_lenient_node_runs_in_c_and_strict_ops_stay_checked(tmp_path):
    """The host C of a leniently read graph equals its golden; a node of the file's own opset is
    still checked by ONNX (a bad attribute named)."""
    from tinydeploy import targets
    node, stated, _, inits = CASES["LayerNormalization@12"]
    c = compile_graph(import_model(_model(node, stated, inits), dialect="deeploy"))
    host, _ = targets.get("host").run(c, {"x": X}, tmp_path)
    np.testing.assert_allclose(host["y"], run_graph(c.graph, {"x": X})["y"], rtol=1e-5, atol=1e-6)
    bad = _model(helper.make_node("Relu", ["x"], ["y"], alpha=1.0), 12)
    with pytest.raises(TinydeployError, match="alpha"):
        import_model(bad, dialect="deeploy")


def test_cli_dialect_option(tmp_path):
    node, stated, _, inits = CASES["Pad attribute pads@13"]
    onnx.save(_model(node, stated, inits), tmp_path / "m.onnx")
    np.savez(tmp_path / "in.npz", x=X)
    base = [sys.executable, "-m", "tinydeploy.cli"]
    run = base + ["run", str(tmp_path / "m.onnx"), "--target", "golden", "--inputs", str(tmp_path / "in.npz"),
                  "--outputs", str(tmp_path / "out.npz")]
    strict = subprocess.run(run, capture_output=True, text=True)
    assert strict.returncode == 1 and len(strict.stderr.strip().splitlines()) == 1 and "Pad" in strict.stderr
    assert not (tmp_path / "out.npz").exists()
    ok = subprocess.run(run + ["--dialect", "deeploy"], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    y = np.load(tmp_path / "out.npz")["y"]
    assert y.shape == (2, 4, 11) and y[0, 0, 0] == -3.0 and np.array_equal(y[:, 1:, 2:10], X)
    insp = subprocess.run(base + ["inspect", str(tmp_path / "m.onnx"), "--dialect", "deeploy"], capture_output=True,
                          text=True)
    assert insp.returncode == 0 and "Pad" in insp.stdout


def test_empty_kv_cache_input_is_dropped():
    """Deeploy's prefill graphs concatenate an empty past ([1, 16, 0, 4]) with the new keys."""
    g = helper.make_graph([helper.make_node("Concat", ["past", "k"], ["y"], axis=2)], "g",
                          [helper.make_tensor_value_info("past", TensorProto.FLOAT, [1, 2, 0, 4]),
                           helper.make_tensor_value_info("k", TensorProto.FLOAT, [1, 2, 3, 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 3, 4])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    with pytest.raises(TinydeployError, match="size of 0"):
        import_model(onnx.ModelProto.FromString(m.SerializeToString()))
    c = compile_graph(import_model(m, dialect="deeploy"))
    assert c.graph.inputs == ["k"]
    k = np.arange(24, dtype=np.float32).reshape(1, 2, 3, 4)
    assert np.array_equal(run_graph(c.graph, {"k": k})["y"], k)
