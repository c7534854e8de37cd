"""Measure the rv32 simulator's speed: `python tests/rv32_speed.py` (prints one line per size).

Runs the naive int8 matmul probe (tests/rv32_c/matmul_speed.c, N=48) for growing repetition
counts; the rate is retired instructions / wall time of simulate() (engine set-up included).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from tinydeploy.targets.rv32 import simulator  # noqa: E402
from tinydeploy.targets.rv32.elf import read_elf  # noqa: E402
from tinydeploy.targets.rv32.runner import Rv32Config, build, simulate  # noqa: E402


def main() -> None:
    config = Rv32Config()
    src = Path(__file__).parent / "rv32_c" / "matmul_speed.c"
    with tempfile.TemporaryDirectory() as tmp:
        for reps in (1, 10, 100, 1000):
            res = build([src], [], Path(tmp) / str(reps), config, {"N": "48", "REPS": str(reps)})
            best = min((simulate(res, config) for _ in range(3)), key=lambda s: s.seconds)
            print(f"C hook       {best.instructions:>13,} instructions  {best.seconds * 1e3:8.1f} ms  "
                  f"{best.instructions / best.seconds / 1e6:6.0f} M instructions/s")
        res = build([src], [], Path(tmp) / "py", config, {"N": "48", "REPS": "10"})
        t = time.perf_counter()
        sim = simulator.run(read_elf(res.elf), config, use_c_hook=False)
        dt = time.perf_counter() - t
        print(f"Python hook  {sim.instructions:>13,} instructions  {dt * 1e3:8.1f} ms  "
              f"{sim.instructions / dt / 1e6:6.0f} M instructions/s")


if __name__ == "__main__":
    main()
