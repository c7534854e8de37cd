"""Networks on the cluster target: 8 cores over 1 core (same target, `cores = 1`), cluster cycles per
MAC, DMA hidden behind compute, bytes moved over the minimum, compile time (all cycles modelled).

    python benchmarks/cluster.py            # writes benchmarks/results/cluster.md (CNNs and llm)
    python benchmarks/cluster.py ds_cnn llm # a subset (llm alone: only the language model section changes)

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


PROMPT = "Once upon a time, there was a little girl named Lily. She loved to play outside in the park."
KINDS = {"QLinearDyn": "linear", "QAttentionKV": "attention", "QSwiGLU": "SwiGLU", "QRMSNormDyn": "RMSNorm",
         "QRoPE": "RoPE", "QAddSat": "residual add", "QEmbedding": "embedding"}


def llm() -> dict:
    """generate --steps 34 (greedy, BOS only) on rv32 and on the cluster with 8 and 1 cores (each
    bit for bit the host's story), and a prompt's prefill on the cluster."""
    from tinydeploy import driver
    from tinydeploy.targets.rv32 import Rv32Target
    _, host = driver.generate(target="host", steps=POS + 1)
    out = {"rv32": driver.generate(target=Rv32Target(), steps=POS + 1)[1]}
    for cores in (8, 1):
        out[cores] = driver.generate(target=ClusterTarget(ClusterConfig(cores=cores)), steps=POS + 1)[1]
        out[f"prefill{cores}"] = driver.generate(target=ClusterTarget(ClusterConfig(cores=cores)), prompt=PROMPT,
                                                 steps=2)[1]
    _, host_p = driver.generate(target="host", prompt=PROMPT, steps=2)
    for k, rep in out.items():
        ref = host_p if str(k).startswith("prefill") else host
        assert rep["tokens"] == ref["tokens"] and rep["logit_hash"] == ref["logit_hash"], k
    return out


def kinds(rep: dict, att_macs: float) -> dict:
    """cycles per decode step (mean over its positions) and MACs per layer kind"""
    out = {}
    for l in rep["layers"]:
        k = KINDS.get(l["op"], "other")
        c, m = out.get(k, (0.0, 0))
        out[k] = (c + l["cycles_per_decode_step"], m + l["macs"])
    c, _ = out["attention"]
    out["attention"] = (c, att_macs)
    return out


def llm_lines(lm: dict) -> list[str]:
    from tinydeploy.models import default_checkpoint_path
    from tinydeploy.models.llama.checkpoint import read_checkpoint
    cfg, _ = read_checkpoint(default_checkpoint_path())
    m8, m1, rv = lm[8], lm[1], lm["rv32"]
    d8, d1 = m8["cycles_per_token"]["decode_at"][str(POS)], m1["cycles_per_token"]["decode_at"][str(POS)]
    macs, hz = decode_macs(POS), m8["clock_hz"]
    steps = [int(p) for p in m8["cycles_per_token"]["decode_at"]]
    att = 2 * cfg.dim * cfg.n_layers * sum(p + 1 for p in steps) / len(steps)   # q.k and p.v MACs, mean step
    p8, p1 = lm["prefill8"], lm["prefill1"]
    n = p8["prompt_tokens"]
    lines = ["", f"## Language model (stories260K, `generate --steps {POS + 1}`, greedy)", "",
             "Same tokens and logits (hash) as host on rv32 and on the cluster with 1 and 8 cores. Weights in L2, "
             "each layer's block moved by DMA into an L1 buffer while the layer before computes (also across the "
             "row-block loop, and from the end of one decode step into the next); blocks several layers share "
             "(RoPE's tables, the tied embedding/classifier) resident in L1, moved once. KV cache in L2: one "
             "layer's rows moved into an L1 window right after the previous layer's attention, new rows sent "
             "back while attention computes. Every layer splits across the cores (heads, rows or channels; "
             "cross-core reductions for a decode step's single row). All cycles **modelled**.", "",
             "| figure | 1 core | 8 cores |", "| --- | ---: | ---: |",
             f"| decode cycles at position {POS} | {d1:,} | {d8:,} |",
             f"| speed-up at position {POS} | 1.00x | {d1 / d8:.2f}x |",
             f"| cluster cycles / MAC at position {POS} ({macs:,} MACs) | {d1 / macs:.2f} | {d8 / macs:.3f} |",
             f"| mean decode cycles / token (positions 1-{POS + 1}) | {m1['cycles_per_token']['decode']:,.0f} | "
             f"{m8['cycles_per_token']['decode']:,.0f} |",
             f"| tokens/s at {hz / 1e6:.0f} MHz (mean decode) | {m1['tokens_per_second']:,.0f} | "
             f"{m8['tokens_per_second']:,.0f} |",
             f"| prefill of a {n}-token prompt, cycles (per token) | {p1['cycles_per_token']['prefill'] * n:,.0f} "
             f"({p1['cycles_per_token']['prefill']:,.0f}) | {p8['cycles_per_token']['prefill'] * n:,.0f} "
             f"({p8['cycles_per_token']['prefill']:,.0f}) |",
             f"| DMA time hidden behind compute (whole program) | {m1['cluster']['dma']['overlap']:.1%} | "
             f"{m8['cluster']['dma']['overlap']:.1%} |",
             f"| L1 / L2 bytes used | {m1['memory']['L1_total']:,} / {m1['memory']['L2_total']:,} | "
             f"{m8['memory']['L1_total']:,} / {m8['memory']['L2_total']:,} |",
             f"| compile seconds of the generate program | {m1['compile_seconds']:.2f} | {m8['compile_seconds']:.2f} |",
             "", "The paper (Deeploy on Siracusa, with its NPU and Xpulp SIMD cores) reports **340 tokens/s** for its "
             "\"microLlama\" (8 layers, d_model 64, 16 heads of 4, FFN 256: BRIEF section 6); ours is stories260K "
             f"(5 layers, d_model 64, 8 heads of 8 over 4 KV heads, FFN 172, vocabulary 512) on plain RV32IMC cores "
             f"at the same assumed 360 MHz: {m8['tokens_per_second']:,.0f} tokens/s on 8 cores. The models and the "
             "cores differ, so the figures stand side by side, not as a like-for-like comparison.",
             "", "Per layer kind, per decode step (mean over positions 1-34; every layer of a kind summed; attention's "
             "MACs are q.k and p.v over the positions attended). rv32: instructions (= cycles) of the rv32 target; "
             "cluster: cluster cycles between layer barriers, weight waits included.", "",
             "| layer kind | MACs | rv32 instr | rv32 instr / MAC | 1 core cycles | 8 cores cycles | 8 cores speed-up |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    kr, k1, k8 = kinds(rv, att), kinds(m1, att), kinds(m8, att)
    for k in sorted(k1, key=lambda k: -k1[k][0]):
        (cr, mm), (c1, _), (c8, _) = kr[k], k1[k], k8[k]
        lines.append(f"| {k} | {mm:,.0f} | {cr:,.0f} | {cr / mm:.2f} | {c1:,.0f} | {c8:,.0f} | {c1 / c8:.2f}x |"
                     if mm else f"| {k} | - | {cr:,.0f} | - | {c1:,.0f} | {c8:,.0f} | {c1 / c8:.2f}x |")
    return lines


def main() -> None:
    names = [a for a in sys.argv[1:] if a != "llm"] or ([] if sys.argv[1:] == ["llm"] else list(MLPERF_TINY))
    out = ROOT / "benchmarks" / "results" / "cluster.md"
    old = out.read_text() if out.exists() else ""
    cut = old.find("\n## Language model")
    if names:
        rows = [measure(n) for n in names]
        lines = ["# Cluster target: networks on 8 cores", "",
                 "All cycle figures are **modelled** (`src/tinydeploy/targets/cluster/README.md`): 1 cycle per retired "
                 "instruction per core (plain RV32IMC `-O2`, no Xpulp), barrier and DMA waits added (DMA 20 + ceil(n/8) "
                 "cycles per transfer), cluster cycles = critical path of one inference (`td_run`), clock 360 MHz. "
                 "Placement: activations, scratch in L1; every constant in L2, moved per layer into one of two L1 "
                 "weight buffers one layer ahead. Each output equals the golden model bit for bit.", "",
                 "Rerun: `python benchmarks/cluster.py` (`python benchmarks/cluster.py llm`: the language model alone)", "",
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
        head = "\n".join(lines) + "\n"
    else:
        head = old[:cut + 1] if cut >= 0 else old
    tail = "\n".join(llm_lines(llm())[1:]) + "\n" if "llm" in sys.argv[1:] or len(sys.argv) == 1 else old[cut + 1:]
    out.write_text(head + tail)
    print(head + tail)


if __name__ == "__main__":
    main()
