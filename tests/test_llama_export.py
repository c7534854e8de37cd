"""export-llama: the llama2.c model as a float32 ONNX file, run by onnxruntime, agrees with the
float32 numpy reference (top-1 on every position; logits within 1e-4 — measured ~1.4e-5 on the
bundled stories260K, whose smallest top-1/top-2 margin over these 64 positions is ~0.096)."""

import json
import subprocess
import sys

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from tinydeploy.models import bundled_path, default_checkpoint_path
from tinydeploy.models.llama import BOS_ID, FloatLlama, load_default
from tinydeploy.models.llama.export_onnx import build_model

REF = json.loads(bundled_path("reference_tokens.json").read_text())["tokens"]
T = 64


def _session(path_or_bytes) -> ort.InferenceSession:
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(path_or_bytes, so, providers=["CPUExecutionProvider"])


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "tinydeploy.cli", *args],
                          capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def model():
    cfg, w, _ = load_default()
    return cfg, w


def test_onnxruntime_agrees_with_reference(model):
    cfg, w = model
    onx = build_model(cfg, w, T)
    assert onx.opset_import[0].version == 17
    assert [i.name for i in onx.graph.input] == ["tokens"]
    assert [o.name for o in onx.graph.output] == ["logits"]
    tokens = [BOS_ID] + REF[:T - 1]
    got = _session(onx.SerializeToString()).run(None, {"tokens": np.array(tokens, np.int64)})[0]
    want = FloatLlama(cfg, w).forward_many(tokens, 0)
    assert got.shape == want.shape == (T, cfg.vocab_size) and got.dtype == np.float32
    assert np.array_equal(got.argmax(1), want.argmax(1))  # top-1 agreement 100 %
    assert np.abs(got - want).max() < 1e-4
    # and both continue the reference greedy text
    assert got.argmax(1)[:-1].tolist() == REF[:T - 1]


def test_causal_padding_does_not_change_prefix(model):
    cfg, w = model
    sess = _session(build_model(cfg, w, 16).SerializeToString())
    a = [BOS_ID] + REF[:15]
    b = a[:8] + [5] * 8
    la = sess.run(None, {"tokens": np.array(a, np.int64)})[0]
    lb = sess.run(None, {"tokens": np.array(b, np.int64)})[0]
    np.testing.assert_array_equal(la[:8], lb[:8])


def test_cli_writes_model(tmp_path):
    out = tmp_path / "sub" / "llama.onnx"
    r = _cli("export-llama", str(default_checkpoint_path()), "-o", str(out), "--seq", "32")
    assert r.returncode == 0, r.stderr
    m = onnx.load(str(out))
    onnx.checker.check_model(m)
    assert m.graph.input[0].type.tensor_type.shape.dim[0].dim_value == 32
    assert [p.name for p in out.parent.iterdir()] == ["llama.onnx"]  # no temp file left


@pytest.mark.parametrize("args", [["does-not-exist.bin"], [None, "--seq", "0"]])
def test_cli_errors_one_line(tmp_path, args):
    args = [str(default_checkpoint_path()) if a is None else a for a in args]
    if args[0] == "does-not-exist.bin":
        args[0] = str(tmp_path / "does-not-exist.bin")
    out = tmp_path / "m.onnx"
    r = _cli("export-llama", *args, "-o", str(out))
    assert r.returncode == 1
    assert r.stderr.startswith("error: ") and len(r.stderr.strip().splitlines()) == 1
    assert "Traceback" not in r.stderr
    assert not out.exists()
