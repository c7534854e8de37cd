"""The C project of a network for the cluster, and `tinydeploy run --target cluster`.

Placement (whole tensors; the home levels are in `plan.py`): activations, kernel scratch and state
in L1 (the memory plan's arena, `.bss`), every constant in L2. A layer's constants (weights,
biases, requantization tables, lookup tables) are packed into one L2 block, which the DMA moves
into one of two L1 weight buffers one weighted layer ahead: the next layer's weights arrive while
this one computes. Constants outside any layer (none in practice) stay in `.rodata`, the code
region the cores read directly.

Cores. Every core runs `td_run()`. A layer whose every statement is a call to a parallel kernel
(runtime/kernels: td_par_lo/hi split the work, td_par_sync ends the call) runs on all cores; any
other layer runs on core 0 with `td_par_team = 1` while the others wait at the layer's barrier.
"""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np

from ...codegen.context import EmitContext
from ...codegen.ctext import c_array_body, ctype
from ...codegen.network import CProject, generate, render_from
from ...errors import TinydeployError
from ..base import Measured
from .config import ClusterConfig
from ..rv32.toolchain import RUNTIME_DIR as RV32_RUNTIME
from .toolchain import RUNTIME_DIR

HERE = Path(__file__).resolve().parent
ALIGN = 16

# Kernels that split their work with td_par_lo/hi and end with td_par_sync (runtime/kernels).
PARALLEL = re.compile(r"td_(pad_s8|conv_\w+|dw3_fast|wino_conv|mm_fast|mmw_s8|matmul_\w+|q(add|sub|max|min|mul)_s8|lut_s8"
                      r"|(max|avg)pool_\w+|quantize_(f32|tab)_\w+|dequantize_(\w+_f32|tab_\w+)|softmax_s8|layernorm_s8|linear_dyn|rope"
                      r"|(add|sub|mul|div|max|min|fmax|fmin|mod|fmod|pow)_(f32|s32|s64)\w*"
                      r"|(rqs|ihswish|mulc|isoftmax|irmsnorm|igelu|inonorm|itamax|ilayernorm|idiv|imean)_[a-z0-9]+_[a-z0-9]+)")
_CALL = re.compile(r"(td_\w+)\(.*\);")


def parallel(code: str) -> bool:
    """Every line of the layer is one call to a parallel kernel."""
    lines = [ln.strip() for ln in code.strip().splitlines()]
    return bool(lines) and all((m := _CALL.fullmatch(ln)) and PARALLEL.fullmatch(m.group(1)) for ln in lines)


class ClusterContext(EmitContext):
    """Constants of a layer go into its L2 block and are read from the L1 weight buffer `wb`."""

    def __init__(self, *args):
        super().__init__(*args)
        self.blocks: list[bytes] = []
        self._block: bytearray | None = None
        self._streamed: dict[str, str] = {}
        self.layer_records: list[dict] = []
        self._in_region = {n.name: n.attrs.get("_block") is not None for n in self.graph.nodes}

    def begin_layer(self, node, offset=0, nbytes=0):
        super().begin_layer(node, offset, nbytes)
        self._block, self._streamed = bytearray(), {}

    def _stream(self, values: np.ndarray, ctype_: str, key: str | None = None) -> str:
        if key in self._streamed:
            return self._streamed[key]
        off = -(-len(self._block) // ALIGN) * ALIGN
        self._block += bytes(off - len(self._block)) + np.ascontiguousarray(values).tobytes()
        expr = f"((const {ctype_} *)(wb + {off}))"
        if key is not None:
            self._streamed[key] = expr
        return expr

    def ptr(self, name):
        t = self.graph.tensors.get(name) if name else None
        if t is not None and t.is_const and self._block is not None:
            return self._stream(t.data, ctype(t.dtype), name)
        return super().ptr(name)

    def array(self, hint, values, dtype=None):
        values = np.asarray(values, dtype=dtype)
        if self._block is None:
            return super().array(hint, values)
        return self._stream(values, ctype(values.dtype))

    def records(self, hint, ctype_, rows):
        if self._block is None:
            return super().records(hint, ctype_, rows)
        return self._stream(np.asarray(rows, np.int32), ctype_)

    def end_layer(self, code=""):
        super().end_layer(code)
        block, self._block = bytes(self._block), None
        rec = {"parallel": parallel(code), "wblock": None}
        if block:
            rec["wblock"] = len(self.blocks)
            self.blocks.append(block)
        self.layer_records.append({"name": self._layer[0], "region": self._in_region[self._layer[0]], **rec})
        return rec

    def template_fields(self):
        """Weight blocks, the two buffers' sizes (blocks use them in turn) and per emitted layer how
        its block arrives: prefetched by the previous weighted layer, or (inside a row-block loop, which
        runs its layers many times, and just after one) fetched and waited for at the layer itself."""
        weighted = [r for r in self.layer_records if r["wblock"] is not None]
        for prev, r in zip([None] + weighted, weighted):
            r["sync"] = r["region"] or (prev is not None and prev["region"])
        for r, nxt in zip(weighted, weighted[1:] + [None]):
            r["prefetch"] = nxt["wblock"] if nxt is not None and not nxt["sync"] else None
        return {"blocks": [{"n": len(b), "body": c_array_body(np.frombuffer(b, np.uint8))} for b in self.blocks],
                "wbuf": [max((-(-len(b) // ALIGN) * ALIGN for b in self.blocks[i::2]), default=0) for i in (0, 1)],
                "fetch": [{"sync": r.get("sync", False), "prefetch": r.get("prefetch")} for r in self.layer_records],
                "first": weighted[0]["wblock"] if weighted and not weighted[0]["sync"] else None}


def emit(c, out_dir: Path, prefix: str = "td_") -> tuple[CProject, dict]:
    """The cluster's C project of a compiled network (compiler.Compiled), and what the target
    reports of it: L1 bytes of the two weight buffers, L2 bytes of the weight blocks, serial layers."""
    ctx = ClusterContext(c.graph, c.offsets, prefix, c.kernels)
    proj = generate(c.graph, c.offsets, c.plan.arena_bytes, out_dir, prefix, c.kernels, c.scratch, c.regions,
                    ctx=ctx, template=HERE / "network.c.j2")
    for src in (RUNTIME_DIR / "td_cluster.h", RUNTIME_DIR / "td_par.h", RV32_RUNTIME / "td_mmio_rv32.h"):
        shutil.copy(src, out_dir / "runtime" / src.name)   # the project builds with the cluster runtime alone
    fields = ctx.template_fields()
    serial = [l["name"] for l in ctx.layer_records if not l["parallel"]]
    return proj, {"wbuf": sum(fields["wbuf"]), "weight_blocks": sum(len(b) for b in ctx.blocks), "serial": serial}


def _measured(b, sim, info: dict, config: ClusterConfig, cycles: int, layer_cycles=None) -> Measured:
    """REPORT.json fields of one simulated run; every cycle figure is modelled (README.md)."""
    return Measured(cycles, layer_cycles, {"L1_total": b.l1_used_bytes, "L2_total": b.l2_used_bytes}, {
        "sections": b.sections, "code_bytes": b.code_bytes, "stack_used_bytes": max(sim.stack_used_bytes),
        "cycles_model": "modelled: 1 cycle per instruction per core, plus barrier and DMA waits "
                        "(targets/cluster/README.md)",
        "cluster": {
            "cores": config.cores, "program_cycles": sim.cycles, "instructions": sim.instructions,
            "utilisation": [round(u, 4) for u in sim.utilisation],
            "idle_barrier": sim.idle_barrier, "idle_dma": sim.idle_dma,
            "dma": {"transfers": sim.dma_transfers, "bytes": sim.dma_bytes, "cycles": sim.dma_cycles,
                    "stall_cycles": sim.dma_stall_cycles, "overlap": round(sim.dma_overlap, 4)},
            "weight_buffers_bytes": info["wbuf"], "weight_bytes_l2": info["weight_blocks"],
            "serial_layers": info["serial"],
        }})


def run(c, inputs: dict[str, np.ndarray], work: Path, config: ClusterConfig) -> tuple[dict, Measured]:
    """`tinydeploy run --target cluster`: outputs by name and the measured (modelled) figures."""
    from .runner import build, simulate
    proj, info = emit(c, work / "c")
    graph = c.graph
    ins = [{"i": i, "nbytes": graph.tensors[n].nbytes} for i, n in enumerate(graph.inputs)]
    main_c = work / "main_cluster.c"
    main_c.write_text(render_from(HERE / "main_run.c.j2", p=proj.prefix, inputs=ins))
    b = build(proj.sources + [main_c], proj.include_dirs, work / "cluster", config, {"TD_PROFILE": "1"})
    feed = {f"td_in{i}": np.ascontiguousarray(inputs[n]).view(np.uint8).ravel()
            for i, n in enumerate(graph.inputs) if graph.tensors[n].nbytes}
    sim = simulate(b, config, inputs=feed)
    if sim.exit_code != 0:
        raise TinydeployError(f"cluster: program exited with code {sim.exit_code}: {sim.console.strip()[:200]}")
    arena = sim.read(proj.prefix + "arena")
    outs = {}
    for name in graph.outputs:
        t, off = graph.tensors[name], proj.offsets[name]
        outs[name] = np.frombuffer(arena[off:off + t.nbytes], t.dtype).reshape(t.shape).copy()
    layer = sim.read_array(proj.prefix + "layer_cycles", np.uint32)[:len(proj.layers)]
    cycles = int(sim.read_array("td_run_cycles", np.uint64)[0])
    return outs, _measured(b, sim, info, config, cycles, [int(x) for x in layer])


def run_program(prog, work: Path, config: ClusterConfig):
    """A generated main (codegen.network.CProgram) whose project this target emitted: core 0 runs
    the main, all cores every network run; its result symbols, console, measured figures."""
    from .runner import build, simulate
    work.mkdir(parents=True, exist_ok=True)
    shim = work / "main_cluster.c"
    shim.write_text(render_from(HERE / "main_program.c.j2", p=prog.project.prefix, main_c=prog.main_c.resolve()))
    b = build([shim] + prog.project.sources, prog.project.include_dirs, work / "cluster", config, {"TD_PROFILE": "1"})
    sim = simulate(b, config)
    if sim.exit_code != 0:
        raise TinydeployError(f"cluster: the program exited with code {sim.exit_code}: {sim.console.strip()[:200]}")
    values = {name: sim.read_array(name, np.dtype(dt))[:n].copy() for name, (dt, n) in prog.results.items()}
    info = {"wbuf": None, "weight_blocks": None, "serial": None}
    return values, sim.console, _measured(b, sim, info, config, sim.cycles)
