"""Whole-model checks for quantized ONNX models: golden vs host C, golden vs the exact reference
(and onnxruntime where it is exact, tinydeploy.testing.references) per quantized tensor, with each
tensor's depth (compute layers on the longest path from an input).

Bit-exactness is required for every output whose computation is integer-only (ancestors are integer
kernels, data movement, and the QuantizeLinear / DequantizeLinear edges, which are exact IEEE
operations in both). Outputs computed through float kernels (a float op that the quantizer left
unquantized) follow the float rule: within 1 output LSB of golden.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from tinydeploy.compiler import emit_c
from tinydeploy.golden import run_graph
from helpers import compile_model
from tinydeploy.testing import references

MOVE = {"Reshape", "Flatten", "Transpose", "Squeeze", "Unsqueeze", "Identity", "QuantizeLinear",
        "DequantizeLinear", "U8ToS8", "S8ToU8", "Concat", "Slice", "Split", "Gather"}

# the depth rule of docs/tolerance.md: max |error| in LSB allowed for a tensor at depth d
def allowed_lsb(depth: int) -> int:
    return 1 + depth // 4


def depths(model: onnx.ModelProto) -> dict[str, int]:
    """Compute layers (not Q/DQ or data movement) on the longest path from a graph input."""
    d: dict[str, int] = {}
    for n in model.graph.node:
        base = max([d.get(i, 0) for i in n.input if i] or [0])
        step = 0 if n.op_type in MOVE or n.op_type.startswith("Dequantize") else 1
        for o in n.output:
            d[o] = base + step
    return d


def output_scales(model: onnx.ModelProto) -> dict[str, float]:
    """Scale of each DequantizeLinear output (float graph outputs are usually one)."""
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    return {n.output[0]: float(inits[n.input[1]].reshape(-1)[0]) for n in model.graph.node
            if n.op_type == "DequantizeLinear" and n.input[1] in inits}


def exact_outputs(graph) -> set[str]:
    """Graph outputs computed by integer kernels and exact edges only."""
    float_ops = {n.outputs[0] for n in graph.nodes if n.op not in MOVE and not n.op.startswith("Q")
                 and graph.tensors[n.outputs[0]].dtype == np.float32}
    prod = {o: n for n in graph.nodes for o in n.outputs}
    res = set()
    for out in graph.outputs:
        stack, seen, ok = [out], set(), True
        while stack and ok:
            t = stack.pop()
            if t in seen:
                continue
            seen.add(t)
            ok = t not in float_ops
            if t in prod:
                stack += [i for i in prod[t].inputs if i]
        if ok:
            res.add(out)
    return res


def check_model(model: onnx.ModelProto, feeds: dict, cc="gcc", extra=None, tol=allowed_lsb):
    """Compile, run golden and host, compare; returns (compiled, stats) with stats a list of
    (tensor, depth, max |LSB|, mean signed LSB, n, is graph output) over every quantized tensor and
    float output. The depth rule `tol` applies to graph outputs; intermediate tensors are reported
    (a high-gain op such as a steep sigmoid table or a LayerNorm of a low-variance row multiplies
    an upstream 1-LSB difference, docs/tolerance.md)."""
    from tinydeploy.targets.host import runner
    c = compile_model(model)
    env = run_graph(c.graph, feeds, keep_all=True)
    with tempfile.TemporaryDirectory() as tmp:
        proj = emit_c(c, Path(tmp) / "c")
        host = runner.run(proj, c.graph, feeds, Path(tmp), cc=cc, extra=extra)
    refs = references(model, feeds, intermediates=True)
    model_outputs = {o.name for o in model.graph.output}
    dep, scales, exact = depths(model), output_scales(model), exact_outputs(c.graph)
    for o in c.graph.outputs:
        if o in exact:
            assert np.array_equal(env[o], host[o]), f"output {o}: host C differs from golden (integer path)"
        else:
            s = scales.get(o)
            err = np.abs(env[o].astype(np.float64) - host[o]) / (s or 1.0)
            assert err.max(initial=0) <= (1.0 + 1e-6 if s else 1e-4 * (1 + np.abs(env[o]).max())), \
                f"output {o}: float path differs from golden by {err.max()}"
    stats = {label: _stats(c, env, ref, dep, scales, model_outputs) for label, ref in refs.items()}
    for label, st in stats.items():
        for name, depth, mx, _, _, is_out in st:
            if is_out:
                assert mx <= tol(depth) + 1e-6, f"output {name} at depth {depth}: {mx} LSB from the {label} " \
                                                f"(allowed {tol(depth)})"
    return c, next(iter(stats.values()))   # against the primary reference


def _stats(c, env, ref, dep, scales, model_outputs):
    """(tensor, depth, max |LSB|, mean signed LSB, n, is graph output) of golden against `ref`."""
    stats = []
    for name, r in ref.items():
        ours, shift = (env.get(name), 0) if name in env and env[name].dtype == r.dtype else (env.get(name + "__s8"), 128)
        if ours is None or ours.shape != r.shape:
            continue
        if r.dtype in (np.int8, np.uint8):
            d = ours.astype(np.int64) + shift - r.astype(np.int64)
        elif r.dtype == np.float32 and name in c.graph.outputs and name in scales:
            d = (ours.astype(np.float64) - r) / scales[name]
        else:
            continue
        stats.append((name, dep.get(name, 0), float(np.abs(d).max(initial=0)), float(d.mean()) if d.size else 0.0,
                      d.size, name in c.graph.outputs or name + "__s8" in c.graph.outputs or name in model_outputs))
    return stats
