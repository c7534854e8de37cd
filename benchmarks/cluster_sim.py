"""Cluster simulator figures: 8-core speed-up, DMA overlap, simulator speed (all cycles modelled).

    python benchmarks/cluster_sim.py       # writes benchmarks/results/cluster_sim.md

Workload: the hand-written parallel int8 linear layer of the tests (tests/cluster_c/linear_db.c:
per-core output-channel slices, weights streamed L2 -> L1 by per-core double-buffered DMA), checked
bit for bit against numpy on every run. Cycles follow the timing model in
src/tinydeploy/targets/cluster/README.md; host speed is wall time of simulate() without the build.
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from tinydeploy.targets.cluster.runner import ClusterConfig, build, simulate

ROOT = Path(__file__).resolve().parents[1]
KERNEL = ROOT / "tests" / "cluster_c" / "linear_db.c"
MULT, SHIFT = 1_518_500_250, 39
SHAPES = [(1, 512, 256), (4, 256, 128), (1, 2048, 512), (16, 512, 256)]  # M, N, K
DMA = {"20 + n/8 (default)": {}, "20 + n/1 (slow)": {"dma_bytes_per_cycle": 1},
       "ideal (0 + n/2^30)": {"dma_latency": 0, "dma_bytes_per_cycle": 1 << 30}}


def run(art, shape, config, **options):
    m, n, k = shape
    rng = np.random.default_rng(0)
    x = rng.integers(-128, 128, (m, k), dtype=np.int8)
    w = rng.integers(-128, 128, (n, k), dtype=np.int8)
    b = rng.integers(-5000, 5000, n, dtype=np.int32)
    res = simulate(art, config, inputs=dict(x_l2=x, w_l2=w, b_l2=b, params=np.array([MULT, SHIFT, 0, 0], np.int32)),
                   **options)
    acc = x.astype(np.int64) @ w.astype(np.int64).T + b
    ref = np.clip((acc * MULT + (1 << (SHIFT - 1))) >> SHIFT, -128, 127).astype(np.int8)
    assert np.array_equal(res.read_array("y_l2", np.int8).reshape(m, n), ref), (shape, config)
    return res


def main() -> None:
    lines = ["# Cluster simulator: speed-up, DMA overlap, simulator speed", "",
             "Workload: `tests/cluster_c/linear_db.c`, y[M][N] = requant(x[M][K] · w[N][K]^T + b), int8, plain "
             "RV32IMC `-O2`; each core owns N/cores output channels and streams its weight rows L2 -> L1 in "
             "tiles of 8 rows with its own double-buffered DMA transfers. Every run equals numpy bit for bit.",
             "All cycle figures are **modelled** (`src/tinydeploy/targets/cluster/README.md`): 1 cycle per "
             "retired instruction per core, barrier and DMA waits added, cluster cycles = critical path; "
             "DMA 20 + ceil(n/8) cycles per transfer unless stated.", "",
             "Rerun: `python benchmarks/cluster_sim.py`", "",
             "| M x N x K | MACs | 1-core cycles (modelled) | 8-core cycles (modelled) | speed-up | instr/MAC | "
             "DMA overlap 1 core | DMA overlap 8 cores | DMA bytes |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    with tempfile.TemporaryDirectory() as tmp:
        arts = {}
        for shape in SHAPES:
            m, n, k = shape
            arts[shape] = build([KERNEL], [], Path(tmp) / f"{m}x{n}x{k}", ClusterConfig(),
                                {"M": str(m), "N": str(n), "K": str(k)})
            one, eight = run(arts[shape], shape, ClusterConfig(cores=1)), run(arts[shape], shape, ClusterConfig())
            macs = m * n * k
            lines.append(f"| {m} x {n} x {k} | {macs:,} | {one.cycles:,} | {eight.cycles:,} | "
                         f"{one.cycles / eight.cycles:.2f} | {eight.total_instructions / macs:.2f} | "
                         f"{one.dma_overlap:.3f} | {eight.dma_overlap:.3f} | {eight.dma_bytes:,} |")
            print(lines[-1], flush=True)

        shape = (1, 2048, 512)
        lines += ["", f"DMA model variants, {shape[0]} x {shape[1]} x {shape[2]} (modelled cycles; overlap = "
                  "share of the DMA's busy time during which no core waited on it):", "",
                  "| DMA | 1-core cycles | 8-core cycles | speed-up | overlap 1 core | overlap 8 cores | "
                  "8-core DMA stall cycles (any core waiting) |", "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for name, dma in DMA.items():
            one = run(arts[shape], shape, ClusterConfig(cores=1, **dma))
            eight = run(arts[shape], shape, ClusterConfig(**dma))
            lines.append(f"| {name} | {one.cycles:,} | {eight.cycles:,} | {one.cycles / eight.cycles:.2f} | "
                         f"{one.dma_overlap:.3f} | {eight.dma_overlap:.3f} | {eight.dma_stall_cycles:,} |")
            print(lines[-1], flush=True)

        shape = (16, 512, 256)
        lines += ["", f"Simulator speed, {shape[0]} x {shape[1]} x {shape[2]} on 8 cores, by scheduling quantum "
                  "(counts are identical in every row; best of 3; host wall time without engine set-up):", "",
                  "| quantum | instructions | wall ms | M instructions/s |", "| ---: | ---: | ---: | ---: |"]
        signature = None
        for quantum in (512, 2_000, 50_000, 10**9):
            best = min((run(arts[shape], shape, ClusterConfig(), quantum=quantum) for _ in range(3)),
                       key=lambda r: r.seconds)
            sig = (best.instructions, best.idle_barrier, best.idle_dma, best.cycles)
            assert signature in (None, sig), "counts differ across quanta"
            signature = sig
            lines.append(f"| {quantum:,} | {best.total_instructions:,} | {best.seconds * 1e3:.0f} | "
                         f"{best.instructions_per_second / 1e6:.0f} |")
            print(lines[-1], flush=True)
        t = time.perf_counter()
        run(arts[shape], shape, ClusterConfig())
        lines += ["", f"The same simulate() call including loading and the set-up of 8 engines: "
                  f"{(time.perf_counter() - t) * 1e3:.0f} ms. Short runs are dominated by a fixed cost per run "
                  "(engine set-up, and each engine translating the code for itself) and by ~17 us per stop "
                  "(quantum end or timed access). Host figures vary with machine load (2 shared cores here)."]
    out = ROOT / "benchmarks" / "results" / "cluster_sim.md"
    out.write_text("\n".join(lines) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
