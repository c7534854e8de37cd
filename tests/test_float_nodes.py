"""Nothing runs in float silently: REPORT.json's float_nodes (absent for a float model, [] when all is
integer), the one-line warning of compile / run, inspect's listing, and --integer-only's error."""
import json
import subprocess
import sys

import numpy as np
import onnx
import pytest

from helpers import check_report_schema
from tinydeploy.driver import compile_to_dir
from tinydeploy.ops.registry import node_macs
from tinydeploy.testing import cnn
from tinydeploy.testing import exporters as E


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    d = tmp_path_factory.mktemp("float_nodes")
    for name, m in {"qat": E.torch_cnn(mode="qat"), "ptq": E.torch_cnn(mode="ptq"), "float": cnn()}.items():
        onnx.save(m, d / f"{name}.onnx")
    np.savez(d / "in.npz", x=np.random.default_rng(0).standard_normal((1, 3, 16, 16)).astype(np.float32))
    np.savez(d / "in_float.npz", input=np.random.default_rng(0).standard_normal((1, 3, 16, 16)).astype(np.float32))
    return d


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "tinydeploy.cli", *map(str, args)], capture_output=True, text=True)


def test_report_lists_the_float_island_with_macs(models, tmp_path):
    from tinydeploy.compiler import compile_onnx
    rep = compile_to_dir(models / "qat.onnx", "host", tmp_path / "out", {})
    check_report_schema(rep)
    ops = [d["op"] for d in rep["float_nodes"]]
    assert "GlobalAveragePool" in ops and "Gemm" in ops
    # the interface conversions (Q of the float input, DQ of the float output) are not islands
    c = compile_onnx(models / "qat.onnx")
    first_q = next(n for n in c.graph.nodes if n.op == "QuantizeLinear")
    assert first_q.inputs[0] == "x" and first_q.name not in {d["name"] for d in rep["float_nodes"]}
    macs = {n.name: node_macs(n, c.graph) for n in c.graph.nodes}
    assert all(d["macs"] == macs[d["name"]] for d in rep["float_nodes"])
    assert next(d for d in rep["float_nodes"] if d["op"] == "Gemm")["macs"] == 16 * 10


def test_integer_graph_reports_an_empty_list_and_float_model_none(models, tmp_path):
    assert compile_to_dir(models / "ptq.onnx", "host", tmp_path / "p", {})["float_nodes"] == []
    assert "float_nodes" not in compile_to_dir(models / "float.onnx", "host", tmp_path / "f", {})


def test_run_warns_in_one_line_and_report_has_the_list(models, tmp_path):
    r = _cli("run", models / "qat.onnx", "--inputs", models / "in.npz", "--outputs", tmp_path / "o.npz",
             "--report", tmp_path / "r.json")
    assert r.returncode == 0, r.stderr
    warn = [line for line in r.stderr.splitlines() if line.startswith("warning:")]
    n = len(json.loads((tmp_path / "r.json").read_text())["float_nodes"])
    assert len(warn) == 1 and f"{n} nodes" in warn[0] and "MACs" in warn[0] and "GlobalAveragePool" in warn[0]
    r = _cli("compile", models / "ptq.onnx", "-o", tmp_path / "c", "--integer-only")
    assert r.returncode == 0 and "warning" not in r.stderr, r.stderr


@pytest.mark.parametrize("cmd", ["compile", "run", "inspect"])
def test_integer_only_refuses_a_float_island_naming_its_nodes(models, tmp_path, cmd):
    extra = {"compile": ["-o", tmp_path / "out", "--report", tmp_path / "r.json"],
             "run": ["--inputs", models / "in.npz", "--outputs", tmp_path / "o.npz"], "inspect": []}[cmd]
    r = _cli(cmd, models / "qat.onnx", *extra, "--integer-only")
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 1 and len(lines) == 1, r.stderr
    assert lines[0].startswith("error: --integer-only:") and "GlobalAveragePool" in lines[0] and "Gemm" in lines[0]
    assert not any(tmp_path.iterdir())   # no partial output


def test_integer_only_on_a_float_model_says_so(models, tmp_path):
    r = _cli("compile", models / "float.onnx", "-o", tmp_path / "out", "--integer-only")
    assert r.returncode == 1 and "not quantized" in r.stderr and "Conv" in r.stderr


def test_inspect_lists_float_nodes(models):
    out = _cli("inspect", models / "qat.onnx").stdout
    assert "float nodes:" in out and "GlobalAveragePool" in out.split("float nodes:")[1]
    assert "float nodes: none (all integer)" in _cli("inspect", models / "ptq.onnx").stdout
    assert "float model" in _cli("inspect", models / "float.onnx").stdout
