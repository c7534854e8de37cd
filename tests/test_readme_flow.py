"""The README's user story: make and quantize the test models, `tinydeploy run` reproduces the
exact reference (the *.expected.npz that make_models.py writes)."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("name,config,target", [("cnn", "qdq.u8i8.pc", "host"),
                                                ("transformer_block", "qoperator.u8i8.pc", "rv32")])
def test_make_models_then_run_matches_reference(name, config, target, tmp_path):
    r = subprocess.run([sys.executable, str(ROOT / "examples" / "make_models.py"), str(tmp_path), "--only", name,
                        "--configs", config], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    model = tmp_path / f"{name}.{config}.onnx"
    r = subprocess.run([sys.executable, "-m", "tinydeploy.cli", "run", str(model), "--target", target,
                        "--inputs", str(tmp_path / f"{name}.inputs.npz"), "--outputs", str(tmp_path / "out.npz"),
                        "--report", str(tmp_path / "r.json")], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    out, ref = np.load(tmp_path / "out.npz"), np.load(tmp_path / f"{name}.{config}.expected.npz")
    assert sorted(out.files) == sorted(ref.files)
    for k in ref.files:
        # outputs are dequantized: compare in units of the output step (docs/tolerance.md: ≤ 1 + depth/4 LSB)
        step = np.min(np.diff(np.unique(ref[k]))) if np.unique(ref[k]).size > 1 else 1.0
        assert np.max(np.abs(out[k] - ref[k])) <= 3 * step + 1e-6
    rep = json.loads((tmp_path / "r.json").read_text())
    assert rep["target"] == target and rep["layers"] and rep["memory"]
    assert (rep["cycles"] is None) == (target == "host")
