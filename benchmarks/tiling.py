"""The tiling solver (schedule/tiling.py) on MLPerf Tiny's networks and the stories260K-shaped language
model: solve time, DMA bytes against the minimum, modelled cycles, at 64 KiB and 256 KiB of L1.

    python benchmarks/tiling.py        # writes benchmarks/results/tiling.md

All cycle figures are modelled (schedule/tiling.py's Cost: 2.45/8 cycles per MAC, 1.5 per element,
150 per tile, DMA 20 + bytes/8 per transfer). CPU seconds are process time (this machine is shared).
"""
from __future__ import annotations

import time
from pathlib import Path

from tinydeploy.schedule import graph_tiling as GT
from tinydeploy.testing import tiling_graphs as TG

OUT = Path(__file__).parent / "results" / "tiling.md"
SIZES = (64 * 1024, 256 * 1024)
KIB = lambda n: f"{n // 1024} KiB"  # noqa: E731


def graphs():
    return [("DS-CNN", TG.ds_cnn()), ("MobileNetV1-0.25 96x96", TG.mobilenet_v1()), ("ResNet-8", TG.resnet8()),
            ("LM decode (1 row)", TG.llm(1)), ("LM prefill (32 rows)", TG.llm(32)),
            ("LM prefill (256 rows)", TG.llm(256))]


def timed(g, homes, l1):
    c, w = time.process_time(), time.perf_counter()
    r = GT.tile_graph(g, homes, l1)
    return r, time.process_time() - c, time.perf_counter() - w


def hidden(r) -> str:
    dma = sum(t.dma_cycles for t in r.tilings)
    return f"{1 - sum(t.exposed_dma_cycles for t in r.tilings) / dma:.0%}" if dma else "-"


def main() -> None:
    t0 = time.perf_counter()
    from ortools.sat.python import cp_model  # noqa: F401
    imp = time.perf_counter() - t0
    lines = ["# Tiling (CP-SAT) on real network shapes", "",
             "Graphs: `tinydeploy.testing.tiling_graphs` (lowered integer ops of the networks' shapes; the",
             "language model is stories260K's shapes from generic ops, attention over the whole 512-entry",
             "cache). Homes: `choose_homes` (weights and KV cache in L2, activations in L1 while those alive",
             "take at most half of L1) or every activation in L2 (each layer streams in and out).",
             "Cycles are modelled (Cost defaults), not simulated. Rerun: `python benchmarks/tiling.py`.", "",
             f"Importing OR-Tools took {imp:.2f} s (wall) once per process, not counted below.", "",
             "## Solve time", "",
             "| graph | L1 | nodes | distinct solves | proven optimal | CPU s | wall s |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: |"]
    table2 = ["", "## DMA bytes against the minimum (each moved operand's bytes moved once)", "",
              "| graph | L1 | homes | DMA bytes | minimum | ratio | modelled cycles | DMA hidden |",
              "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |"]
    for name, g in graphs():
        for l1 in SIZES:
            for label, homes in (("chosen", GT.choose_homes(g, l1)), ("all L2", {})):
                r, cpu, wall = timed(g, homes, l1)
                if label == "chosen":
                    lines.append(f"| {name} | {KIB(l1)} | {len(r.tilings)} | {r.solved} | "
                                 f"{sum(t.optimal for t in r.tilings)} | {cpu:.2f} | {wall:.2f} |")
                table2.append(f"| {name} | {KIB(l1)} | {label} | {r.dma_bytes:,} | {r.min_dma_bytes:,} | "
                              f"{r.dma_bytes / max(1, r.min_dma_bytes):.3f} | {r.cycles:,} | {hidden(r)} |")
    layers = ["", "## Example layers (activations in L2; 16 KiB added to show a tight budget)", "",
              "| layer | L1 | tiles (loop order) | n | L1 bytes | DMA bytes | minimum | ratio | cycles | exposed DMA |",
              "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    picks = [(TG.ds_cnn(), ["conv0", "dw1", "pw1"]), (TG.mobilenet_v1(), ["conv0", "dw0", "pw0", "dw2", "pw12"]),
             (TG.resnet8(), ["conv0", "b1_conv1", "b1_add"]), (TG.llm(32), ["w10", "w20", "scores0", "softmax0",
                                                                             "att_v0", "classifier"])]
    for g, names in picks:
        for l1 in (16 * 1024,) + SIZES:
            r = GT.tile_graph(g, {}, l1)
            for t in r.tilings:
                if t.node in names:
                    tiles = ", ".join(f"{d} {t.tiles[d]}" for d in t.order if t.spec.dim(d).size > 1)
                    layers.append(f"| {g.name}/{t.node} ({t.op}) | {KIB(l1)} | {tiles} | {t.n_tiles} | "
                                  f"{t.l1_bytes:,} | {t.dma_bytes:,} | {t.min_dma_bytes:,} | "
                                  f"{t.dma_bytes / max(1, t.min_dma_bytes):.2f} | {t.cycles:,} | "
                                  f"{t.exposed_dma_cycles:,} |")
    OUT.write_text("\n".join(lines + table2 + layers) + "\n")
    print(OUT.read_text())


if __name__ == "__main__":
    main()
