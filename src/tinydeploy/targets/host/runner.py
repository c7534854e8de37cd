"""The host target: plain C99 with the host compiler, run natively."""
from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np

from ...codegen.ctext import c_array_body
from ...codegen.network import CProject, render_from
from ...errors import TinydeployError

HERE = Path(__file__).resolve().parent
CFLAGS = ["-std=c99", "-O2", "-Wall", "-Wextra", "-Werror"]


def compilers() -> dict[str, list[str]]:
    """Host compilers we support: gcc (cc) and clang (from the ziglang wheel)."""
    return {"gcc": [os.environ.get("CC", "cc")], "clang": [sys.executable, "-m", "ziglang", "cc"]}


def extra_cflags() -> list[str]:
    """$TINYDEPLOY_HOST_CFLAGS, added to every host build: e.g. "-fsanitize=address,undefined
    -fno-sanitize-recover=all" runs the generated C under the sanitizers (tests/test_sanitizers.py)."""
    return shlex.split(os.environ.get("TINYDEPLOY_HOST_CFLAGS", ""))


def build(project: CProject, main_c: Path, exe: Path, cc: str = "gcc", extra: list[str] | None = None) -> Path:
    cmd = compilers()[cc] + CFLAGS + extra_cflags() + (extra or []) + [f"-I{d}" for d in project.include_dirs] + \
        [str(s) for s in project.sources] + [str(main_c), str(HERE / "hal_host.c"), "-o", str(exe), "-lm"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        first = next((ln for ln in r.stderr.splitlines() if "error" in ln), r.stderr.strip()[:300])
        raise TinydeployError(f"host C build failed ({cc}): {first}  [command: {shlex.join(cmd[:3])} …]")
    return exe


def run(project: CProject, graph, inputs: dict[str, np.ndarray], work: Path, cc: str = "gcc",
        extra: list[str] | None = None) -> dict[str, np.ndarray]:
    """Build a harness with the inputs compiled in, run it, return the outputs by name."""
    ins = []
    for name in graph.inputs:
        raw = np.ascontiguousarray(inputs[name]).tobytes()
        ins.append({"nbytes": len(raw), "body": c_array_body(np.frombuffer(raw, np.uint8))})
    main_c = work / "main_run.c"
    main_c.write_text(render_from(HERE / "main_run.c.j2", p=project.prefix, P=project.prefix.upper(), inputs=ins))
    exe = build(project, main_c, work / "network_run", cc, extra)
    out = work / "outputs.bin"
    r = subprocess.run([str(exe), str(out)], capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        raise TinydeployError(f"host run failed with exit code {r.returncode}: {r.stderr.strip()[:300]}")
    data = out.read_bytes()
    result, pos = {}, 0
    for name in graph.outputs:
        t = graph.tensors[name]
        result[name] = np.frombuffer(data[pos:pos + t.nbytes], t.dtype).reshape(t.shape).copy()
        pos += t.nbytes
    return result
