"""Batched host C for the node tests: many compiled networks (each with its own symbol prefix) in
one executable, built as a few unity translation units in parallel; one run, outputs compared.
A network that breaks the build is found by building its unit's members alone; one that crashes
at run time fails alone and the run resumes after it."""
from __future__ import annotations

import os
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from tinydeploy.compiler import emit_c
from tinydeploy.errors import TinydeployError


MAIN_C = r"""/* node-test harness: networks run in order; inputs read from argv[1], outputs appended to argv[2] */
#include <stdio.h>
#include <stdlib.h>
%(includes)s

typedef struct {
    int ni, no;
    void *(*input)(int);
    void *(*output)(int);
    size_t (*ib)(int);
    size_t (*ob)(int);
    void (*run)(void);
} net_t;

static const net_t nets[] = {
%(table)s
};

int main(int argc, char **argv)
{
    if (argc < 4) return 2;
    FILE *in = fopen(argv[1], "rb"), *out = fopen(argv[2], "ab");
    if (!in || !out) return 3;
    long first = atol(argv[3]), skip = 0;
    for (size_t k = 0; k < sizeof nets / sizeof nets[0]; k++) {
        const net_t *n = &nets[k];
        for (int i = 0; i < n->ni; i++) {
            if ((long)k < first) { skip += (long)n->ib(i); continue; }
            if (skip) { fseek(in, skip, SEEK_CUR); skip = 0; }
            if (fread(n->input(i), 1, n->ib(i), in) != n->ib(i)) return 4;
        }
        if ((long)k < first) continue;
        %(pre_run)s
        n->run();
        for (int o = 0; o < n->no; o++)
            if (fwrite(n->output(o), 1, n->ob(o), out) != n->ob(o)) return 5;
        fflush(out);
    }
    return fclose(out) ? 6 : 0;
}
"""


def _cc(cc: str) -> list[str]:
    from tinydeploy.targets.host.runner import compilers
    return compilers()[cc]


def run_c_batch(results: list, work: Path, cc: str = "gcc", extra: list[str] | None = None,
                jobs: int | None = None, per_unit: int = 40, pre_run: str = "") -> dict[str, str | None]:
    """Build every compiled case into one executable (unity translation units of `per_unit`
    networks, built in parallel), run it, compare. Returns name → None (pass) or reason.
    `pre_run` is C code run before each network (k is its index): tests use it to inject a crash."""
    from node_harness import compare
    from tinydeploy.targets.host.runner import CFLAGS, HERE as HOST
    src = work / "c"
    src.mkdir(parents=True, exist_ok=True)
    verdict: dict[str, str | None] = {}
    nets = []
    for k, r in enumerate(results):
        prefix = f"n{k}_"
        try:
            emit_c(r.compiled, src, prefix=prefix)
            nets.append((prefix, r))
        except TinydeployError as e:
            verdict[r.name] = f"C emission: {e}"
    flags = CFLAGS + (extra or []) + [f"-I{src}", f"-I{src / 'runtime'}"]

    def build(unit_nets, path):
        lines = []
        for prefix, _ in unit_nets:
            lines += [f'#include "{prefix}network.c"', "#undef TD_MARK"]
        path.write_text("\n".join(lines) + "\n")
        return subprocess.run(_cc(cc) + flags + ["-c", str(path), "-o", str(path.with_suffix(".o"))],
                              capture_output=True, text=True)

    groups = [nets[u:u + per_unit] for u in range(0, len(nets), per_unit)]
    units = [work / f"unit{k}.c" for k in range(len(groups))]
    with ThreadPoolExecutor(jobs or os.cpu_count() or 2) as pool:
        outs = list(pool.map(build, groups, units))
        for k, r in enumerate(outs):
            if not r.returncode:
                continue
            # one network broke its unit: build each alone, drop the failures, rebuild the rest
            alone = list(pool.map(lambda pn: build([pn], work / f"{pn[0]}alone.c"), groups[k]))
            for pn, ra in zip(groups[k], alone):
                if ra.returncode:
                    first = next((ln for ln in ra.stderr.splitlines() if "error:" in ln), ra.stderr[:200])
                    verdict[pn[1].name] = f"host C build: {first.split('error:', 1)[-1].strip()[:200]}"
            groups[k] = [pn for pn in groups[k] if pn[1].name not in verdict]
            r2 = build(groups[k], units[k])
            if r2.returncode:
                raise RuntimeError(f"C build of {units[k].name} failed:\n{r2.stderr[:3000]}")
    nets = [pn for g in groups for pn in g]
    objs = [u.with_suffix(".o") for u in units]
    includes = "\n".join(f'#include "{p}network.h"' for p, _ in nets)
    table = ",\n".join(f"    {{{p.upper()}NUM_INPUTS, {p.upper()}NUM_OUTPUTS, {p}input, {p}output, {p}input_bytes, "
                       f"{p}output_bytes, {p}run}}" for p, _ in nets)
    main = work / "main.c"
    main.write_text(MAIN_C % {"includes": includes, "table": table or "    {0, 0, 0, 0, 0, 0, 0}",
                              "pre_run": pre_run})
    exe = work / "node_tests"
    r = subprocess.run(_cc(cc) + flags + [str(main), *map(str, objs), str(HOST / "hal_host.c"), "-o", str(exe), "-lm"],
                       capture_output=True, text=True)
    if r.returncode:
        raise RuntimeError(f"C link failed:\n{r.stderr[:3000]}")
    blob = b"".join(np.ascontiguousarray(r.feeds[n]).tobytes() for _, r in nets for n in r.compiled.graph.inputs)
    (work / "in.bin").write_bytes(blob)
    outfile = work / "out.bin"
    outfile.write_bytes(b"")
    sizes = [sum(r.compiled.graph.tensors[o].nbytes for o in r.compiled.graph.outputs) for _, r in nets]
    first = 0
    while first < len(nets):   # a crash marks its network failed; the rest run in a fresh process
        p = subprocess.run([str(exe), str(work / "in.bin"), str(outfile), str(first)], capture_output=True,
                           timeout=600)
        if p.returncode == 0:
            break
        crashed = _crashed_index(sizes, outfile.stat().st_size)
        if crashed >= len(nets):
            break
        verdict[nets[crashed][1].name] = f"C run crashed (exit {p.returncode})"
        with open(outfile, "r+b") as f:   # keep earlier outputs; pad the crashed one so offsets hold
            f.truncate(sum(sizes[:crashed]))
            f.seek(0, 2)
            f.write(b"\0" * sizes[crashed])
        first = crashed + 1
    data = outfile.read_bytes()
    pos = 0
    for (prefix, r), size in zip(nets, sizes):
        chunk, pos = data[pos:pos + size], pos + size
        if r.name in verdict:
            continue
        if len(chunk) < size:
            verdict[r.name] = "C run produced no output"
            continue
        off, bad = 0, None
        for o, want in zip(r.compiled.graph.outputs, r.want):
            t = r.compiled.graph.tensors[o]
            got = np.frombuffer(chunk[off:off + t.nbytes], t.dtype).reshape(t.shape)
            off += t.nbytes
            bad = bad or compare(got, want, r.tol)
        verdict[r.name] = bad and f"host C: {bad}"
    return verdict


def _crashed_index(sizes, total) -> int:
    acc = 0
    for k, s in enumerate(sizes):
        if acc + s > total:
            return k
        acc += s
    return len(sizes)
