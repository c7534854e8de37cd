"""MLPerf Tiny-shaped networks on the rv32 target: instructions per MAC of a whole network (BRIEF
section 5), per layer kind, with the published cycle counts of issue 13 beside them.

    python benchmarks/mlperf_rv32.py            # writes benchmarks/results/mlperf_rv32.md
    python benchmarks/mlperf_rv32.py resnet8    # a subset (prints, writes nothing)

Networks are built by the repo, not read from MLPerf Tiny's .tflite files: the zoo's float DS-CNN,
MobileNetV1-0.25 96x96 and ResNet-8 quantized by onnxruntime (testing/zoo.py `mlperf_tiny_int8`, the
models benchmarks/cluster.py runs), and the tf2onnx-shaped int8 graphs of testing/exporters.py (FC
autoencoder, DS-CNN). Each runs once on rv32 (default Rv32Config: 512 KiB SRAM, no FPU) with a random
input and must equal the golden model bit for bit.
"""
from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx

from tinydeploy import driver
from tinydeploy.compiler import compile_graph
from tinydeploy.frontend.onnx_import import import_model
from tinydeploy.golden import run_graph
from tinydeploy.targets.rv32 import Rv32Target
from tinydeploy.testing import exporters
from tinydeploy.testing.quant import input_specs
from tinydeploy.testing.zoo import MLPERF_TINY, mlperf_tiny_int8

ROOT = Path(__file__).resolve().parents[1]


def _int8_feed(model: onnx.ModelProto, seed: int = 1) -> dict[str, np.ndarray]:
    """Uniform random values over the input's integer range (the exporters' graphs take int8)."""
    rng = np.random.default_rng(seed)
    return {k: rng.integers(np.iinfo(dt).min, np.iinfo(dt).max + 1, s).astype(dt)
            for k, (s, dt) in input_specs(model).items()}


def _exported(build):
    def make():
        m = build()
        return m, _int8_feed(m)
    return make


# name -> (benchmark it stands for, how it is built, () -> (quantized model, inputs))
NETWORKS = {
    "ds_cnn": ("KWS", "zoo float, ORT QDQ int8", lambda: mlperf_tiny_int8("ds_cnn")),
    "mobilenet_v1": ("VWW", "zoo float, ORT QDQ int8", lambda: mlperf_tiny_int8("mobilenet_v1")),
    "resnet8": ("IC", "zoo float, ORT QDQ int8", lambda: mlperf_tiny_int8("resnet8")),
    "tflite_ds_cnn": ("KWS", "tf2onnx-shaped int8", _exported(lambda: exporters.tflite_ds_cnn(blocks=4))),
    "tflite_fc_autoencoder": ("AD", "tf2onnx-shaped int8", _exported(exporters.tflite_fc_autoencoder)),
}
assert set(MLPERF_TINY) <= set(NETWORKS)

# issue 13, section 3: cycles for one inference of MLPerf Tiny's reference models on other cores
ANCHORS = [
    ("TFLite Micro reference kernels", "Cortex-M4", {"KWS": 21.8e6, "VWW": 72.1e6, "IC": 84.5e6}),
    ("Plumerai (2-MAC SIMD)", "Cortex-M4", {"KWS": 5.7e6, "VWW": 11.9e6, "IC": 20.1e6}),
    ("Bosch (no SIMD)", "Cortex-M0+", {"KWS": 43.5e6, "VWW": 119.6e6, "IC": 106.8e6}),
]
MUST, GOAL = 4.0, 3.0
OTHER = "other (quantize, pool, add, softmax, ...)"


def kind(node, graph) -> str:
    """Convs by kernel, stride and depthwise or not, dense, and the rest: the kinds issue 13 names."""
    if node.op == "QMatMul":
        return "dense"
    if node.op != "QConv":
        return OTHER
    _, c_in, kh, kw = graph.tensors[node.inputs[1]].shape
    dw = node.attrs.get("group", 1) > 1 and c_in == 1
    return f"{'depthwise' if dw else 'conv'} {kh}x{kw} stride {max(node.attrs.get('strides', [1]))}"


def measure(name: str) -> dict:
    bench, how, make = NETWORKS[name]
    q, inputs = make()
    tgt = Rv32Target()
    t0 = time.perf_counter()
    c = compile_graph(import_model(onnx.ModelProto.FromString(q.SerializeToString())), kernels=tgt.kernels)
    rep = driver.base_report(c, tgt, time.perf_counter() - t0)
    gold = run_graph(c.graph, inputs)
    with tempfile.TemporaryDirectory(prefix="td-mlperf-") as tmp:
        outs, m = tgt.run(c, inputs, Path(tmp))
    assert all(np.array_equal(outs[k], gold[k]) for k in gold), f"{name}: rv32 != golden"
    driver.add_measured(rep, m)
    nodes = {n.name: n for n in c.graph.nodes}
    for layer in rep["layers"]:
        node = nodes[layer["name"]]
        layer["kind"], layer["shape"] = kind(node, c.graph), c.graph.tensors[node.outputs[0]].shape
    return {"name": name, "bench": bench, "how": how, "rep": rep}


def _ipm(instr: int, macs: int) -> str:
    return f"{instr / macs:.2f}" if macs else "-"


def table(rows: list[dict]) -> list[str]:
    lines = ["| network | MLPerf Tiny | built as | MACs | rv32 instructions | of which input QuantizeLinear "
             "| instructions/MAC | must | goal ≤ 3.0 | .text bytes | SRAM bytes (image + stack) | float nodes |",
             "| --- | --- | --- | ---: | ---: | ---: | ---: | --- | --- | ---: | ---: | ---: |"]
    for r in rows:
        rep = r["rep"]
        ipm = rep["cycles"] / rep["macs"]
        q_in = sum(l["cycles"] for l in rep["layers"] if l["op"] == "QuantizeLinear")
        # AD's must is "fits 512 KiB, integer, exact" (exact is asserted in measure, fitting by the build)
        must = (f"≤ 4.0: {'yes' if ipm <= MUST else 'no'}" if r["bench"] != "AD" else
                f"fits, integer, exact: {'no' if rep.get('float_nodes') else 'yes'}")
        lines.append(f"| {r['name']} | {r['bench']} | {r['how']} | {rep['macs']:,} | {rep['cycles']:,} | {q_in:,} | "
                     f"{ipm:.2f} | {must} | {'yes' if ipm <= GOAL else 'no'} | "
                     f"{rep['sections'].get('.text', 0):,} | {rep['memory']['SRAM_total']:,} | "
                     f"{len(rep.get('float_nodes', []))} |")
    return lines


def anchors(rows: list[dict]) -> list[str]:
    zoo = {r["bench"]: r for r in rows if r["name"] in MLPERF_TINY}
    benches = [b for b in ("KWS", "VWW", "IC") if b in zoo]
    lines = ["| engine | core | clock | source | " + " | ".join(f"{b} cycles" for b in benches) + " |",
             "| --- | --- | --- | --- | " + " | ".join("---:" for _ in benches) + " |",
             "| tinydeploy (this table, zoo networks) | rv32 RV32IMC, no SIMD, 1 instruction = 1 cycle | 360 MHz "
             "(model) | measured here | " + " | ".join(f"{zoo[b]['rep']['cycles'] / 1e6:.1f} M" for b in benches) + " |"]
    for engine, core, cyc in ANCHORS:
        lines.append(f"| {engine} | {core} | not given in the issue | issue 13, section 3 | "
                     + " | ".join(f"{cyc[b] / 1e6:.1f} M" for b in benches) + " |")
    best = {b: min(cyc[b] for _, core, cyc in ANCHORS if core == "Cortex-M4") for b in benches}
    beats = [b for b in benches if zoo[b]["rep"]["cycles"] < best[b]]
    lines += ["", "Goal's second half (fewer cycles than the best Cortex-M4 engine on at least one network): "
              + (f"met on {', '.join(beats)}." if beats else "not met; rv32 / Plumerai = "
                 + ", ".join(f"{b} {zoo[b]['rep']['cycles'] / best[b]:.2f}x" for b in benches) + ".")]
    return lines


def breakdown(rows: list[dict]) -> list[str]:
    lines = ["| network | layer kind | layers | MACs | instructions | instructions/MAC | share of instructions |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        layers, total = r["rep"]["layers"], sum(l["cycles"] for l in r["rep"]["layers"])
        for k in sorted({l["kind"] for l in layers}, key=lambda k: (k == OTHER, k)):
            ls = [l for l in layers if l["kind"] == k]
            if ls:
                macs, cyc = sum(l["macs"] for l in ls), sum(l["cycles"] for l in ls)
                lines.append(f"| {r['name']} | {k} | {len(ls)} | {macs:,} | {cyc:,} | {_ipm(cyc, macs)} | "
                             f"{cyc / total:.1%} |")
    return lines


def slowest(rows: list[dict], n: int = 12) -> list[str]:
    lines = ["| network | layer | kind | output shape | MACs | instructions | instructions/MAC |",
             "| --- | --- | --- | --- | ---: | ---: | ---: |"]
    layers = [(r, l) for r in rows for l in r["rep"]["layers"] if l["macs"] and l["kind"] != OTHER]
    for r, l in sorted(layers, key=lambda t: -t[1]["cycles"] / t[1]["macs"])[:n]:
        lines.append(f"| {r['name']} | {l['name']} | {l['kind']} | {'x'.join(map(str, l['shape']))} | {l['macs']:,} | "
                     f"{l['cycles']:,} | {_ipm(l['cycles'], l['macs'])} |")
    return lines


def main(argv: list[str]) -> int:
    names = argv or list(NETWORKS)
    rows = []
    for n in names:
        rows.append(measure(n))
        rep = rows[-1]["rep"]
        print(f"{n}: {rep['cycles']:,} instructions, {rep['cycles'] / rep['macs']:.2f}/MAC", file=sys.stderr)
    lines = ["# MLPerf Tiny-shaped networks on rv32: instructions per MAC", "",
             "One inference (`td_run`) on the rv32 target: one RV32IMC core, no SIMD, no MAC instruction, no FPU, "
             "`-O2`, default `Rv32Config` (512 KiB SRAM, 360 MHz), unicorn with exact retired-instruction counts, "
             "1 instruction = 1 cycle. instructions/MAC = the whole network's retired instructions over its MACs "
             "(BRIEF section 5). Each network ran once with a random input (seed 1) and its output equalled the "
             "golden model bit for bit. Kernels are rv32's defaults (`Rv32Target().kernels`).", "",
             "The networks are built by the repo with MLPerf Tiny's shapes, **not** MLPerf Tiny's reference "
             ".tflite files (random weights, quantized by onnxruntime or written in tf2onnx's int8 form): "
             "`ds_cnn`, `mobilenet_v1`, `resnet8` are `testing/zoo.py`'s float builders quantized QDQ int8 "
             "per-channel (`mlperf_tiny_int8`, the models `benchmarks/cluster.py` runs); `tflite_ds_cnn` "
             "(4 blocks) and `tflite_fc_autoencoder` are `testing/exporters.py`'s tf2onnx-shaped int8 graphs "
             "(int8 input drawn uniformly).", "",
             "Rerun: `python benchmarks/mlperf_rv32.py`", "",
             "## Whole networks", "", *table(rows), "",
             "Targets (issue 13, section 3): instructions/MAC ≤ 4.0 (must) and ≤ 3.0 (goal) on each of DS-CNN KWS, "
             "MobileNetV1-0.25 VWW and ResNet-8; the FC autoencoder at 512 KiB: fits, integer, exact, goal ≤ 3.0. "
             "SRAM bytes: the linked image (code, constants, data, arena) plus the configured stack. "
             "float nodes: nodes left in float (`float_nodes` in REPORT.json). The zoo networks take a float input, so "
             "their count includes the input QuantizeLinear in soft-float (its own column; issue 13 part 2 asks to "
             "make it cheap); the tf2onnx-shaped graphs take int8.", "",
             "## Published anchors", "",
             "Cycles for one inference of MLPerf Tiny's reference models, **on other cores**, quoted from issue 13 "
             "(section 3); the issue gives neither clock nor a citation beyond the engine, so none is given here. "
             "Our rv32 figure is retired instructions of the repo-built networks of the same shapes; the models "
             "(weights, quantization, the reference .tflite's exact graph) differ, so the rows are side by side, "
             "not a like-for-like comparison.", "", *anchors(rows), "",
             "## Per layer kind", "",
             "From the per-layer cycle counters rv32's run reports (`layer_cycles`, one counter read per layer, "
             "REPORT.json `layers[].cycles`); a layer's instructions include loops, bias, zero points, "
             "requantization, padding and borders.", "", *breakdown(rows), "",
             "## The slowest layers (instructions/MAC)", "", *slowest(rows)]
    text = "\n".join(lines) + "\n"
    if not argv:
        (ROOT / "benchmarks" / "results" / "mlperf_rv32.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
