"""Compiled networks on the rv32 simulator: identical to host, deterministic cycles, budget errors."""
import json
import subprocess
import sys

import numpy as np
import onnx
import pytest

from helpers import check_report_schema
from test_slice_conv import _conv_relu_model, _quantize


@pytest.fixture(scope="module")
def qmodel(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("rv32")
    q = _quantize(_conv_relu_model(), "qdq", "s8", tmp)
    onnx.save(q, tmp / "q.onnx")
    np.savez(tmp / "in.npz", x=np.random.default_rng(3).standard_normal((1, 3, 8, 8)).astype(np.float32))
    return tmp


def _run(tmp, target, tag, *extra):
    cmd = [sys.executable, "-m", "tinydeploy.cli", "run", str(tmp / "q.onnx"), "--target", target,
           "--inputs", str(tmp / "in.npz"), "--outputs", str(tmp / f"{tag}.npz"), "--report", str(tmp / f"{tag}.json"), *extra]
    r = subprocess.run(cmd, capture_output=True, text=True)
    return r, (np.load(tmp / f"{tag}.npz")["y"] if r.returncode == 0 else None)


def test_rv32_matches_host_and_cycles_are_deterministic(qmodel):
    _, host = _run(qmodel, "host", "h")
    r1, a = _run(qmodel, "rv32", "a")
    assert r1.returncode == 0, r1.stderr
    _, b = _run(qmodel, "rv32", "b")
    assert np.array_equal(a, host) and np.array_equal(a, b)
    ra, rb = (json.loads((qmodel / f"{t}.json").read_text()) for t in "ab")
    assert ra["cycles"] == rb["cycles"] and ra["cycles"] > 0
    assert [l["cycles"] for l in ra["layers"]] == [l["cycles"] for l in rb["layers"]]
    # layer counters are read around each layer inside the timed region
    assert 0 < sum(l["cycles"] for l in ra["layers"]) <= ra["cycles"]
    assert ra["code_bytes"] == ra["sections"][".text"] > 0
    assert ra["clock_hz"] == 360_000_000
    check_report_schema(ra)


def test_rv32_model_too_big_is_one_line_error(qmodel, tmp_path):
    from onnx import TensorProto, helper, numpy_helper
    w = np.zeros((600, 1024), np.float32)
    g = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "big",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 600])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1024])],
                          [numpy_helper.from_array(w, "w")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.save(m, tmp_path / "q.onnx")
    np.savez(tmp_path / "in.npz", x=np.zeros((1, 600), np.float32))
    r, _ = _run(tmp_path, "rv32", "big")
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "bytes of SRAM" in lines[0] and "524,288" in lines[0], r.stderr
    assert not (tmp_path / "big.npz").exists()


def test_float_model_on_rv32imfc_matches_host(tmp_path):
    onnx.save(_conv_relu_model(), tmp_path / "q.onnx")
    np.savez(tmp_path / "in.npz", x=np.random.default_rng(5).standard_normal((1, 3, 8, 8)).astype(np.float32))
    (tmp_path / "f.toml").write_text("fpu = true\n")
    _, host = _run(tmp_path, "host", "h")
    r, f = _run(tmp_path, "rv32", "f", "--target-config", str(tmp_path / "f.toml"))
    assert r.returncode == 0, r.stderr
    # float graphs: summation order and FMA contraction differ, so a stated relative tolerance
    assert np.allclose(f, host, rtol=1e-5, atol=1e-6 * np.abs(host).max())
    soft_r, soft = _run(tmp_path, "rv32", "s")
    assert np.allclose(soft, host, rtol=1e-5, atol=1e-6 * np.abs(host).max())
    hard, softc = (json.loads((tmp_path / f"{t}.json").read_text())["cycles"] for t in "fs")
    assert hard < softc / 5, "the F extension must remove the soft-float calls"


def test_compile_for_rv32_refuses_a_model_that_does_not_fit(qmodel, tmp_path):
    (tmp_path / "small.toml").write_text('sram_bytes = "12KiB"\nstack_bytes = 10240\n')
    r = subprocess.run([sys.executable, "-m", "tinydeploy.cli", "compile", str(qmodel / "q.onnx"), "--target", "rv32",
                        "--target-config", str(tmp_path / "small.toml"), "-o", str(tmp_path / "proj")],
                       capture_output=True, text=True)
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "12,288" in r.stderr and "scratch" in r.stderr
    assert not (tmp_path / "proj").exists()


def test_a_graph_without_nodes_runs_on_rv32(tmp_path):
    """Outputs that are the inputs: no layer, so the linker drops the per-layer counters."""
    from onnx import TensorProto, helper
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    onnx.save(helper.make_model(helper.make_graph([], "g", [x], [x]), opset_imports=[helper.make_opsetid("", 17)],
                                ir_version=8), tmp_path / "m.onnx")
    np.savez(tmp_path / "in.npz", x=np.arange(4, dtype=np.float32).reshape(1, 4))
    r = subprocess.run([sys.executable, "-m", "tinydeploy.cli", "run", str(tmp_path / "m.onnx"), "--target", "rv32",
                        "--inputs", str(tmp_path / "in.npz"), "--outputs", str(tmp_path / "o.npz")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert np.array_equal(np.load(tmp_path / "o.npz")["x"], np.arange(4, dtype=np.float32).reshape(1, 4))
