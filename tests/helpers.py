"""Shared test plumbing: compile an ONNX model, run golden / host, run ONNX Runtime."""
from __future__ import annotations

import tempfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import onnx

from tinydeploy.compiler import compile_graph, emit_c
from tinydeploy.frontend.onnx_import import import_model
from tinydeploy.golden import run_graph
from tinydeploy.testing import ort_reference


# REPORT.json's fields on every route (BRIEF section 3; driver.base_report), per layer too
REPORT_KEYS = {"target", "clock_hz", "cycles", "memory", "memory_lower_bound", "memory_plan", "sections",
               "code_bytes", "compile_seconds", "macs", "layers"}
LAYER_KEYS = {"name", "op", "engine", "cycles", "macs"}


def check_report_schema(rep: dict) -> None:
    assert REPORT_KEYS <= rep.keys(), REPORT_KEYS - rep.keys()
    assert all(LAYER_KEYS <= layer.keys() for layer in rep["layers"])
    level = next(iter(rep["memory_lower_bound"]))
    assert rep["memory_lower_bound"][level] <= rep["memory"][level]   # the arena, scratch included
    assert rep["memory"]["scratch"] <= rep["memory"][level]
    # quantized graphs: the nodes left in float (absent for a float model), each a layer of the report
    names = {layer["name"] for layer in rep["layers"]}
    assert all(d.keys() == {"name", "op", "macs"} and d["name"] in names for d in rep.get("float_nodes", []))


def ort_run(model: onnx.ModelProto, inputs: dict) -> dict:
    """ONNX Runtime with graph optimizations disabled: the reference of float graphs (quantized graphs
    use tinydeploy.testing.references, BRIEF section 4)."""
    return ort_reference(model, inputs)


def compile_model(model: onnx.ModelProto, shapes: dict | None = None):
    return compile_graph(import_model(onnx.ModelProto.FromString(model.SerializeToString()), shapes))


def golden_and_host(model: onnx.ModelProto, inputs: dict, cc: str = "gcc", extra=None):
    """(compiled, golden outputs, host C outputs)."""
    from tinydeploy.targets.host import runner
    c = compile_model(model)
    gold = run_graph(c.graph, inputs)
    with tempfile.TemporaryDirectory() as tmp:
        proj = emit_c(c, Path(tmp) / "c")
        host = runner.run(proj, c.graph, inputs, Path(tmp), cc=cc, extra=extra)
    return c, gold, host


def lsb_error(out: np.ndarray, ref: np.ndarray, scale: float) -> np.ndarray:
    """Error in units of the output quantization step."""
    return (out.astype(np.float64) - ref.astype(np.float64)) / scale


def random_llama(shared: bool = True, seed: int = 0, **config):
    """A llama2.c model with standard-normal weights: (LlamaConfig, LlamaWeights). Default shapes are
    tiny (dim 16, 2 layers, vocab 32, seq_len 8); ``config`` overrides LlamaConfig fields."""
    from tinydeploy.models.llama.checkpoint import LlamaConfig, LlamaWeights
    cfg = LlamaConfig(**{**dict(dim=16, hidden_dim=24, n_layers=2, n_heads=4, n_kv_heads=2, vocab_size=32,
                                seq_len=8, shared_classifier=shared), **config})
    rng = np.random.default_rng(seed)
    L, d, h, kv, v = cfg.n_layers, cfg.dim, cfg.hidden_dim, cfg.kv_dim, cfg.vocab_size
    r = lambda *s: rng.standard_normal(s).astype(np.float32)  # noqa: E731
    emb = r(v, d)
    w = LlamaWeights(emb, r(L, d), r(L, d, d), r(L, kv, d), r(L, kv, d), r(L, d, d), r(L, d),
                     r(L, h, d), r(L, d, h), r(L, h, d), r(d), emb if shared else r(v, d))
    return cfg, w


def run_host(prog, work: Path, dump_logits: bool = False) -> SimpleNamespace:
    """A generate program (models/llama/generate.py) on the host target: its tokens, console text and,
    with dump_logits, every sampled-from logits vector (the host-only dump, argv[2])."""
    from tinydeploy.models.llama.generate import tokens_of
    from tinydeploy.targets.host import HostTarget
    dump = Path(work) / "logits.bin"
    values, console, _ = HostTarget().run_program(prog, Path(work), argv=(str(dump),) if dump_logits else ())
    logits = np.fromfile(dump, np.int32).reshape(-1, prog.vocab) if dump_logits else None
    return SimpleNamespace(tokens=tokens_of(values), console=console, logits=logits)
