"""Compile time of long chains (tinydeploy.testing.chains), per stage, at 100k nodes.

    python benchmarks/compile_scaling.py      # writes benchmarks/results/compile_scaling.md

tests/test_compile_scaling.py checks the growth is linear on small chains; this records the size
the issue asked for (a 100k-node graph compiled to C in under 10 s).
"""
from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import onnx

from tinydeploy.compiler import compile_onnx, emit_c
from tinydeploy.testing.chains import chain

OUT = Path(__file__).parent / "results" / "compile_scaling.md"
RUNS = [("Identity", 100_000), ("Add", 100_000), ("qdq_u8_add", 33_333), ("qdq_sigmoid", 33_333)]


def measure(kind: str, n: int, tmp: Path) -> list:
    path = tmp / f"{kind}.onnx"
    m = chain(kind, n)
    onnx.save(m, path)
    cpu, wall = time.process_time(), time.perf_counter()
    c = compile_onnx(path)
    t = time.perf_counter()
    emit_c(c, tmp / kind)
    emit = time.perf_counter() - t
    s = c.seconds
    return [kind, len(m.graph.node), s["frontend"], s["passes"], s["memory_plan"], emit,
            time.perf_counter() - wall, time.process_time() - cpu]


def main() -> None:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for kind, n in RUNS:
            rows.append(measure(kind, n, Path(tmp)))
            print(*rows[-1], flush=True)
    lines = ["# Compile time of 100k-node chains", "",
             f"Whole compile (ONNX file → C project), seconds; load average {os.getloadavg()[0]:.1f} on "
             f"{os.cpu_count()} cores while measuring. Regenerate: `python benchmarks/compile_scaling.py`.", "",
             "| chain | nodes | frontend | passes | memory plan | C | total (wall) | total (CPU) |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    lines += [f"| {r[0]} | {r[1]:,} | " + " | ".join(f"{v:.1f}" for v in r[2:]) + " |" for r in rows]
    OUT.write_text("\n".join(lines) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
