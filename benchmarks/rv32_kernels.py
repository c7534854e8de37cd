"""Instructions per MAC of the int8 kernels on the rv32 simulator (BRIEF section 5 definition).

    python benchmarks/rv32_kernels.py            # writes benchmarks/results/rv32_kernels.md

Each reference layer is a one-op float ONNX model quantized with onnxruntime (QDQ, int8, per-channel
weights), compiled by tinydeploy and run with `network_run.run` (the code `tinydeploy run --target
rv32` uses): the per-layer count is the layer's whole retired instructions (loops, bias, zero points,
requantization, borders). Every run is also checked bit for bit against host C and the golden model.
`TD_FAST=0` in the environment selects the reference kernels (for A/B figures).
"""
from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx

from tinydeploy.compiler import compile_graph, emit_c
from tinydeploy.frontend.onnx_import import import_model
from tinydeploy.golden import run_graph
from tinydeploy.ops.registry import get, node_macs
from tinydeploy.targets.host import runner as host_runner
from tinydeploy.targets.rv32 import network_run
from tinydeploy.targets.rv32.config import Rv32Config
from tinydeploy.testing.graph import GraphBuilder
from tinydeploy.testing.quant import quantize

ROOT = Path(__file__).resolve().parents[1]


def conv_model(c, k, hw, ksize=3, pad=1, group=1, seed=0) -> onnx.ModelProto:
    g = GraphBuilder("conv", seed)
    x = g.input("x", (1, c, hw, hw))
    w = g.weight((k, c // group, ksize, ksize), fan_in=c // group * ksize * ksize)
    g.output(g.op("Conv", x, w, g.bias(k), kernel_shape=[ksize, ksize], pads=[pad] * 4, group=group))
    return g.build()


def matmul_model(m, k, n, gemm=False, seed=0) -> onnx.ModelProto:
    g = GraphBuilder("mm", seed)
    x = g.input("x", (m, k))
    if gemm:
        g.output(g.op("Gemm", x, g.weight((n, k), fan_in=k), g.bias(n), transB=1))
    else:
        g.output(g.op("MatMul", x, g.weight((k, n), fan_in=k)))
    return g.build()


LAYERS = {
    "matmul 64x64 · 64x64": lambda: matmul_model(64, 64, 64),
    "conv 3x3 32→32 16x16 pad 1": lambda: conv_model(32, 32, 16),
    "depthwise 3x3 32ch 16x16 pad 1": lambda: conv_model(32, 32, 16, group=32),
    "conv 1x1 32→32 16x16": lambda: conv_model(32, 32, 16, ksize=1, pad=0),
    "gemm 1x256 · 256x64 (+bias)": lambda: matmul_model(1, 256, 64, gemm=True),
}


def quantized(model: onnx.ModelProto, seed: int = 0):
    shape = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    rng = np.random.default_rng(seed)
    calib = [{"x": rng.standard_normal(shape).astype(np.float32)} for _ in range(4)]
    q = quantize(model, calib, per_channel=True)
    return q, {"x": rng.standard_normal(shape).astype(np.float32)}


def measure(model: onnx.ModelProto, inputs: dict, config: Rv32Config | None = None, host: bool = True) -> dict:
    """Run golden, host C and rv32; assert bit-exactness; return per-layer figures of the main layer."""
    c = compile_graph(import_model(onnx.ModelProto.FromString(model.SerializeToString())))
    gold = run_graph(c.graph, inputs)
    config = config or Rv32Config()
    with tempfile.TemporaryDirectory(prefix="td-bench-") as tmp:
        tmp = Path(tmp)
        proj = emit_c(c, tmp / "c")
        timed = []
        sim = network_run.simulate

        def timed_sim(*a, **kw):   # time the simulation alone (engine set-up included, build excluded)
            t0 = time.perf_counter()
            r = sim(*a, **kw)
            timed.append(time.perf_counter() - t0)
            return r
        network_run.simulate = timed_sim
        try:
            outs, meas = network_run.run(proj, c.graph, inputs, tmp, config)
        finally:
            network_run.simulate = sim
        wall = timed[0]
        hout = host_runner.run(proj, c.graph, inputs, tmp) if host else None
    for name in c.graph.outputs:
        assert np.array_equal(outs[name], gold[name]), f"rv32 != golden for {name}"
        if hout is not None:
            assert np.array_equal(hout[name], gold[name]), f"host != golden for {name}"
    nodes = [n for n in c.graph.nodes if not get(n).alias]
    layers = [(n, node_macs(n, c.graph), cyc) for n, cyc in zip(nodes, meas["layer_cycles"])]
    main, macs, cyc = max(layers, key=lambda t: t[1])
    return {"op": main.op, "macs": macs, "instructions": cyc, "per_mac": cyc / macs,
            "total": meas["total_instructions"], "wall": wall, "code_bytes": meas["code_bytes"]}


def main(argv=None) -> int:
    rows, speed = [], []
    for name, build in LAYERS.items():
        q, inputs = quantized(build())
        res = {}
        for kind, flag in (("reference", "0"), ("fast", "1")):
            os.environ["TD_FAST"] = flag
            res[kind] = r = measure(q, inputs)
            speed.append((r["total"], r["wall"]))
        os.environ.pop("TD_FAST", None)
        rows.append((name, res))
        print(f"{name:34s} {res['reference']['per_mac']:.3f} -> {res['fast']['per_mac']:.3f} instr/MAC", file=sys.stderr)
    total_i, total_t = sum(s[0] for s in speed), sum(s[1] for s in speed)
    lines = ["# rv32 kernels: instructions per MAC", "",
             "Plain RV32IMC (no SIMD, no MAC instruction), `-O2`, unicorn with exact retired-instruction",
             "counts; one instruction = one cycle. Per-layer counts include loops, bias, zero points,",
             "requantization and borders (BRIEF section 5). The reference column is the generic kernel",
             "(`TD_FAST=0`). Every run was checked bit for bit: rv32 == host C == golden.", "",
             "Rerun: `python benchmarks/rv32_kernels.py`", "",
             "| layer | op | MACs | reference kernel instr/MAC | fast direct instructions | fast direct instr/MAC "
             "| Winograd F(2x2,3x3) instr/MAC |", "| --- | --- | ---: | ---: | ---: | ---: | --- |"]
    for name, res in rows:
        r, f = res["reference"], res["fast"]
        wino = "not implemented" if name.startswith("conv 3x3") else "n/a"
        lines.append(f"| {name} | {f['op']} | {f['macs']:,} | {r['per_mac']:.3f} | {f['instructions']:,} "
                     f"| {f['per_mac']:.3f} | {wino} |")
    lines += ["", f"Simulator speed over these runs (build excluded, engine set-up included): "
              f"{total_i / total_t / 1e6:.0f} M instructions/s ({total_i:,} instructions in {total_t:.2f} s)."]
    out = ROOT / "benchmarks" / "results" / "rv32_kernels.md"
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
