"""Networks on the cluster target: 8 cores over 1 core (same target, `cores = 1`), cluster cycles per
MAC, DMA hidden behind compute, bytes moved over the minimum, compile time (all cycles modelled).

    python benchmarks/cluster.py            # writes benchmarks/results/cluster.md

Models: the MLPerf Tiny CNN shapes (testing/zoo.py: DS-CNN, MobileNetV1-0.25 at 96x96, ResNet-8),
float builders quantized by onnxruntime (QDQ, int8, per-channel); every cluster run is checked bit for
bit against the golden model (== host C). Cycles follow src/tinydeploy/targets/cluster/README.md.
"""
from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx

import tinydeploy.testing as T
from tinydeploy.compiler import compile_graph
from tinydeploy.frontend.onnx_import import import_model
from tinydeploy.golden import run_graph
from tinydeploy.ops.registry import node_macs
from tinydeploy.targets.cluster import ClusterTarget
from tinydeploy.targets.cluster.config import ClusterConfig
from tinydeploy.testing.zoo import MLPERF_TINY

ROOT = Path(__file__).resolve().parents[1]


def measure(name: str) -> dict:
    q = T.quantize(MLPERF_TINY[name](), fmt="qdq", activation="int8", weight="int8", per_channel=True)
    inputs = T.random_inputs(q, seed=1)[0]
    eight = ClusterTarget(ClusterConfig())
    t0 = time.perf_counter()
    c = compile_graph(import_model(onnx.ModelProto.FromString(q.SerializeToString())), kernels=eight.kernels)
    compile_s = time.perf_counter() - t0
    gold = run_graph(c.graph, inputs)
    row = {"model": name, "compile_s": compile_s}
    for cores in (8, 1):
        with tempfile.TemporaryDirectory() as tmp:
            outs, m = ClusterTarget(ClusterConfig(cores=cores)).run(c, inputs, Path(tmp))
        assert all(np.array_equal(outs[k], gold[k]) for k in gold), (name, cores)
        row[cores] = m
    row["macs"] = sum(node_macs(n, c.graph) for n in c.graph.nodes)
    row["input_bytes"] = sum(v.nbytes for v in inputs.values())
    return row


def main() -> None:
    rows = [measure(n) for n in (sys.argv[1:] or MLPERF_TINY)]
    lines = ["# Cluster target: networks on 8 cores", "",
             "All cycle figures are **modelled** (`src/tinydeploy/targets/cluster/README.md`): 1 cycle per retired "
             "instruction per core (plain RV32IMC `-O2`, no Xpulp), barrier and DMA waits added (DMA 20 + ceil(n/8) "
             "cycles per transfer), cluster cycles = critical path of one inference (`td_run`), clock 360 MHz. "
             "Placement: activations, scratch in L1; every constant in L2, moved per layer into one of two L1 "
             "weight buffers one layer ahead. Each output equals the golden model bit for bit.", "",
             "Rerun: `python benchmarks/cluster.py`", "",
             "| model | MACs | 1 core cycles | 8 cores cycles | speed-up | cluster cycles / MAC | DMA hidden | "
             "DMA bytes / minimum | serial layers | compile s |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |"]
    for r in rows:
        m8, m1 = r[8], r[1]
        cl = m8.fields["cluster"]
        lines.append(f"| {r['model']} | {r['macs']:,} | {m1.cycles:,} | {m8.cycles:,} | {m1.cycles / m8.cycles:.2f}x | "
                     f"{m8.cycles / r['macs']:.3f} | {cl['dma']['overlap']:.1%} | "
                     f"{cl['dma']['bytes'] / (cl['weight_bytes_l2'] + r['input_bytes']):.2f} | "
                     f"{', '.join(cl['serial_layers']) or 'none'} | {r['compile_s']:.2f} |")
    lines += ["", "DMA hidden = 1 - (cycles a core waited on the DMA) / (cycles the DMA was busy). Bytes over minimum: "
              "bytes the DMA moved over the weight blocks' and the inputs' bytes (each moved once). Per-layer kernels and "
              "where the cycles go: `benchmarks/results/cluster.md` notes below the table."]
    out = ROOT / "benchmarks" / "results" / "cluster.md"
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
