"""Networks on the cluster target: 8 cores over 1 core (same target, `cores = 1`), cluster cycles per
MAC, DMA hidden behind compute, bytes moved over the minimum, compile time (all cycles modelled).

    python benchmarks/cluster.py            # writes benchmarks/results/cluster.md (CNNs and llm)
    python benchmarks/cluster.py ds_cnn llm # a subset

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

from tinydeploy.compiler import compile_graph
from tinydeploy.frontend.onnx_import import import_model
from tinydeploy.golden import run_graph
from tinydeploy.ops.registry import get, node_macs
from tinydeploy.targets.cluster import ClusterTarget
from tinydeploy.targets.cluster.config import ClusterConfig
from tinydeploy.testing.zoo import MLPERF_TINY, mlperf_tiny_int8

ROOT = Path(__file__).resolve().parents[1]


def measure(name: str) -> dict:
    q, inputs = mlperf_tiny_int8(name)
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
    # small L1: activations in L2, every node a tile loop (tiling = "auto" decides it by itself)
    row["acts"] = sum(c.graph.tensors[n].nbytes for n in c.graph.inputs) + sum(
        c.graph.tensors[o].nbytes for n in c.graph.nodes if not get(n).alias for o in n.outputs if o)
    for kib in SMALL_L1:
        with tempfile.TemporaryDirectory() as tmp:
            outs, m = ClusterTarget(ClusterConfig(l1_bytes=kib * 1024)).run(c, inputs, Path(tmp))
        assert all(np.array_equal(outs[k], gold[k]) for k in gold), (name, kib)
        row[f"l1_{kib}"] = m
    return row


SMALL_L1 = (32, 64)   # KiB


POS = 33   # issue 15's decode position


def decode_macs(pos: int) -> int:
    """MACs of one decode step at `pos` of the bundled stories260K: every linear layer (classifier
    included) plus attention's q.k and p.v over pos + 1 positions."""
    from tinydeploy.models import default_checkpoint_path
    from tinydeploy.models.llama.checkpoint import read_checkpoint
    c, _ = read_checkpoint(default_checkpoint_path())
    per_layer = 2 * c.dim * c.dim + 2 * c.dim * c.kv_dim + 3 * c.dim * c.hidden_dim + 2 * c.dim * (pos + 1)
    return c.n_layers * per_layer + c.dim * c.vocab_size


def llm() -> dict:
    from tinydeploy import driver
    out = {}
    for cores in (8, 1):
        _, rep = driver.generate(target=ClusterTarget(ClusterConfig(cores=cores)), steps=POS + 1)
        out[cores] = rep
    _, host = driver.generate(target="host", steps=POS + 1)
    assert all(out[k]["tokens"] == host["tokens"] and out[k]["logit_hash"] == host["logit_hash"] for k in out)
    return out


def main() -> None:
    names = [a for a in sys.argv[1:] if a != "llm"] or list(MLPERF_TINY)
    rows = [measure(n) for n in names]
    lm = llm() if "llm" in sys.argv[1:] or len(sys.argv) == 1 else None
    lines = ["# Cluster target: networks on 8 cores", "",
             "All cycle figures are **modelled** (`src/tinydeploy/targets/cluster/README.md`): 1 cycle per retired "
             "instruction per core (plain RV32IMC `-O2`, no Xpulp), barrier and DMA waits added (DMA 20 + ceil(n/8) "
             "cycles per transfer), cluster cycles = critical path of one inference (`td_run`), clock 360 MHz. "
             "Placement: activations, scratch in L1; every constant in L2, moved per layer into one of two L1 "
             "weight buffers one layer ahead. Each output equals the golden model bit for bit.", "",
             "Rerun: `python benchmarks/cluster.py`", "",
             "| model | MACs | 1 core cycles | 8 cores cycles | speed-up | cluster cycles / MAC | DMA hidden: network "
             "(whole program) | DMA bytes / minimum | serial layers | compile s |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |"]
    for r in rows:
        m8, m1 = r[8], r[1]
        cl = m8.fields["cluster"]
        lines.append(f"| {r['model']} | {r['macs']:,} | {m1.cycles:,} | {m8.cycles:,} | {m1.cycles / m8.cycles:.2f}x | "
                     f"{m8.cycles / r['macs']:.3f} | {cl['dma']['run_overlap']:.1%} ({cl['dma']['overlap']:.1%}) | "
                     f"{cl['dma']['bytes'] / (cl['weight_bytes_l2'] + r['input_bytes']):.2f} | "
                     f"{', '.join(cl['serial_layers']) or 'none'} | {r['compile_s']:.2f} |")
    lines += ["", "DMA hidden = 1 - (cycles a core waited on the DMA) / (cycles the DMA was busy). Network: without the "
              "run harness's copy of the input from L2 into the L1 arena before `td_run` (its transfer cycles taken "
              "out of both; for MobileNetV1 that copy is a 110,592-byte float image, 13,844 cycles with nothing to "
              "overlap); whole program: with it. Bytes over minimum: bytes the DMA moved over the weight blocks' "
              "and the inputs' bytes (each moved once).", "",
              "## Small L1: activations in L2, tile loops", "",
              "The same networks with `l1_bytes` = " + " and ".join(f"{k} KiB" for k in SMALL_L1) + " (8 cores; "
              "`tiling = \"auto\"` finds that the whole tensors do not fit): the activations' arena is placed in L2 "
              "(planned without the whole-node scratch; the input arrives there), and every node runs as a tile loop whose tile sizes the CP-SAT tiler chose "
              "(`targets/cluster/tileloop.py`): per tile the DMA brings the input window (halo included) and the "
              "weight slice into L1 buffers, the next tile's transfers start before this one computes, and the output "
              "tile goes back to L2 by DMA while the next computes. Bit-exact to the golden model. Bytes over "
              "minimum: bytes the DMA moved over each weight block, the input and every node's output moved once "
              "(an activation is written once and read at least once, so 2x activations is the floor here).", "",
              "| model | L1 | 8 cores cycles | vs 256 KiB L1 | cluster cycles / MAC | DMA hidden | DMA bytes / minimum "
              "| tiles | tile area bytes | L1 linked bytes | L2 arena (lower bound) |",
              "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        for kib in SMALL_L1:
            m = r[f"l1_{kib}"]
            cl, t = m.fields["cluster"], m.fields["cluster"].get("tiling")
            if t is None:   # the whole tensors fit: the 256 KiB placement, smaller
                lines.append(f"| {r['model']} | {kib} KiB | {m.cycles:,} | {m.cycles / r[8].cycles:.2f}x | "
                             f"{m.cycles / r['macs']:.3f} | {cl['dma']['run_overlap']:.1%} | whole tensors fit L1 "
                             f"| - | - | {m.memory['L1_total']:,} | - |")
                continue
            lines.append(f"| {r['model']} | {kib} KiB | {m.cycles:,} | {m.cycles / r[8].cycles:.2f}x | "
                         f"{m.cycles / r['macs']:.3f} | {cl['dma']['run_overlap']:.1%} | "
                         f"{cl['dma']['bytes'] / (t['weight_bytes_l2'] + r['acts']):.2f} | {t['tiles']} | "
                         f"{t['tile_area_bytes']:,} | {m.memory['L1_total']:,} | {t['arena_bytes']:,} "
                         f"({t['arena_lower_bound']:,}) |")
    if lm:
        m8, m1 = lm[8], lm[1]
        d8, d1 = m8["cycles_per_token"]["decode_at"][str(POS)], m1["cycles_per_token"]["decode_at"][str(POS)]
        macs = decode_macs(POS)
        hz = m8["clock_hz"]
        lines += ["", f"## Language model decode (stories260K, `generate --steps {POS + 1}`, greedy)", "",
                  "Same tokens and logits (hash) as host on 1 and 8 cores. The KV cache and activations are in L1, "
                  "the weights in L2 (moved per layer into the L1 weight buffers: inside the model's row-block loop "
                  "each layer fetches and waits for its own weights, no overlap yet).", "",
                  "| figure | 1 core | 8 cores |", "| --- | ---: | ---: |",
                  f"| decode cycles at position {POS} | {d1:,} | {d8:,} |",
                  f"| speed-up at position {POS} | 1.00x | {d1 / d8:.2f}x |",
                  f"| mean decode cycles / token | {m1['cycles_per_token']['decode']:,.0f} | "
                  f"{m8['cycles_per_token']['decode']:,.0f} |",
                  f"| cluster cycles / MAC at position {POS} ({macs:,} MACs) | {d1 / macs:.2f} | {d8 / macs:.2f} |",
                  f"| tokens/s at {hz / 1e6:.0f} MHz (mean decode) | {m1['tokens_per_second']:,.0f} | "
                  f"{m8['tokens_per_second']:,.0f} |",
                  f"| compile seconds of the generate program | {m1['compile_seconds']:.2f} | {m8['compile_seconds']:.2f} |",
                  f"| layers on core 0 only | - | attention, SwiGLU, norms, embedding, residual adds |", "",
                  "The paper (Deeploy on Siracusa, with its NPU and Xpulp SIMD cores) reports 340 tokens/s for its "
                  "\"microLlama\"; the models differ (ours is stories260K, BRIEF section 6 has the paper's shapes) and "
                  "our cores are plain RV32IMC, so the figures are side by side, not a like-for-like comparison."]
    out = ROOT / "benchmarks" / "results" / "cluster.md"
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
