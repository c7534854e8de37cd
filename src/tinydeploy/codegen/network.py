"""Render the C project of one network: network.h, network.c and the runtime headers it needs."""
from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import jinja2
import numpy as np

from .. import __version__
from ..errors import TinydeployError
from ..ir import Graph
from ..ops import registry
from ..ops.kernels import Kernels
from .context import EmitContext
from .ctext import ctype

RUNTIME = Path(__file__).resolve().parent.parent / "runtime"
_ENV = jinja2.Environment(loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
                          trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
                          undefined=jinja2.StrictUndefined)


@dataclass
class CProject:
    dir: Path
    sources: list[Path]        # the network's .c files (no main)
    include_dirs: list[Path]
    prefix: str
    layers: list[dict]         # name, op, macs per emitted layer (in order)
    arena_bytes: int
    offsets: dict[str, int]    # activation tensor → arena offset


@dataclass
class CProgram:
    """A network project plus a generated main, built and run whole by a target (e.g. `generate`).
    Its results are global symbols: a simulator reads them after main returns; a host process built
    with -DTD_HOST writes them, in the order of `results`, to the file named by argv[1]."""
    project: CProject
    main_c: Path
    results: dict[str, tuple[np.dtype, int]]   # symbol → (element type, count)

    def parse_results(self, data: bytes) -> dict[str, np.ndarray]:
        """The host's results file → arrays by symbol."""
        out, pos = {}, 0
        for name, (dtype, count) in self.results.items():
            n = np.dtype(dtype).itemsize * count
            out[name] = np.frombuffer(data[pos:pos + n], dtype).copy()
            pos += n
        return out


def render(template: str, **kw) -> str:
    return _ENV.get_template(template).render(version=__version__, **kw)


def render_from(path: Path, **kw) -> str:
    """Render a template that lives beside its target (e.g. targets/host/main_run.c.j2)."""
    env = _ENV.overlay(loader=jinja2.FileSystemLoader(path.parent))
    return env.get_template(path.name).render(version=__version__, **kw)


def _with_includes(headers: list[str]) -> list[str]:
    """The kernel headers plus those they #include from runtime/kernels (kernels share helpers; a
    target's own headers, e.g. the cluster's td_par.h, are the target's to provide)."""
    todo, seen = list(headers), []
    while todo:
        h = todo.pop()
        if h in seen or not (RUNTIME / "kernels" / h).is_file():
            continue
        seen.append(h)
        todo += re.findall(r'^#include "([^"]+)"', (RUNTIME / "kernels" / h).read_text(), re.M)
    return sorted(seen)


def tensor_offsets(graph: Graph, plan_offsets: dict[str, int], roots: dict[str, str]) -> dict[str, int]:
    return {n: plan_offsets[roots.get(n, n)] for n in list(graph.tensors) if roots.get(n, n) in plan_offsets}


def generate(graph: Graph, offsets: dict[str, int], arena_bytes: int, out_dir: Path, prefix: str = "td_",
             kernels: Kernels | None = None, scratch: dict[int, tuple[int, int]] | None = None,
             regions=(), ctx: EmitContext | None = None, template: Path | None = None) -> CProject:
    """`scratch`: node index → (arena offset, bytes) of the node's planned scratch; `regions`: the row
    blocks as the memory plan sized them (schedule/blocks.py; compiler.Compiled has both). A target
    may hand its own emit context and network.c template (e.g. targets/cluster)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    ctx = ctx or EmitContext(graph, offsets, prefix, kernels or Kernels())
    layers = []
    blocks = {r.index: r for r in regions}
    for k, node in enumerate(graph.nodes):
        op = registry.get(node)
        mark = node.attrs.get("_block")  # [region, rows per block] (passes/row_blocks.py)
        if ctx.block is not None and (mark is None or mark[0] != ctx.block.index):
            layers[-1]["post"] += "}"
            ctx.block = None
        pre = ctx.open_block(blocks[mark[0]]) if mark is not None and ctx.block is None else ""
        if op.alias and not graph.tensors[node.inputs[0]].is_const:
            if op.emit:     # an alias has no code; its emit only checks the node is compilable
                op.emit(node, graph, ctx)
            continue        # (an alias of a constant has its own buffer: its emit copies)
        if op.header:
            ctx.headers.add(op.header)
        ctx.begin_layer(node.name, *(scratch or {}).get(k, (0, 0)))
        code = ctx.emit(node, op)
        if code is None:
            raise TinydeployError(f"node {node.name}: operator {node.op} has no C kernel (only constant "
                                  f"inputs are supported, which fold at compile time)")
        layers.append({"name": node.name, "op": node.op, "code": code, "pre": pre, "post": "", "block": mark is not None,
                       "macs": registry.node_macs(node, graph), **ctx.end_layer(code)})
    if ctx.block is not None:
        layers[-1]["post"] += "}"

    def io(names):
        return [{"name": n, "offset": offsets[n], "bytes": graph.tensors[n].nbytes,
                 "ctype": ctype(graph.tensors[n].dtype), "shape": list(graph.tensors[n].shape)} for n in names]

    kw = dict(name=graph.name, p=prefix, P=prefix.upper(), arena=arena_bytes, inputs=io(graph.inputs),
              outputs=io(graph.outputs), layers=layers, decls=ctx.decls, headers=sorted(ctx.headers),
              **ctx.template_fields())
    (out_dir / f"{prefix}network.h").write_text(render("network.h.j2", **kw))
    src = out_dir / f"{prefix}network.c"
    src.write_text(render_from(template, **kw) if template else render("network.c.j2", **kw))
    # a plain Makefile, so the project builds without tinydeploy: libnetwork.a (lib<prefix>network.a)
    lib = "network" if prefix == "td_" else f"{prefix}network"
    (out_dir / "Makefile").write_text(render("Makefile.j2", name=graph.name, p=prefix, lib=lib, sources=[src.name]))
    rt = out_dir / "runtime"
    rt.mkdir(exist_ok=True)
    for h in _with_includes(sorted(ctx.headers) + ["td_common.h"]):
        shutil.copy(RUNTIME / "kernels" / h, rt / h)
    shutil.copy(RUNTIME / "baremetal" / "hal.h", rt / "hal.h")  # the one HAL interface
    return CProject(out_dir, [src], [out_dir, rt], prefix, [{k: l[k] for k in ("name", "op", "macs")}
                                                             for l in layers], arena_bytes, offsets)
