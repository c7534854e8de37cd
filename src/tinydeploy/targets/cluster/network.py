"""The C project of a network for the cluster, and `tinydeploy run --target cluster`.

Placement (whole tensors; the home levels are in `plan.py`): activations, kernel scratch and state
in L1 (the memory plan's arena, `.bss`), every constant in L2. A layer's constants (weights,
biases, requantization tables, lookup tables) are packed into one L2 block, which the DMA moves
into one of two L1 weight buffers one weighted layer ahead: the next layer's weights arrive while
this one computes. Constants outside any layer (none in practice) stay in `.rodata`, the code
region the cores read directly.

Tiling mode (the whole tensors do not fit L1, or ClusterConfig.tiling = "always"): the arena is in
L2 and every node runs as a tile loop through an L1 tile area (tileloop.py).

Cores. Every core runs `td_run()`. A layer whose every statement is a call to a parallel kernel
(runtime/kernels: td_par_lo/hi split the work, td_par_sync ends the call) runs on all cores; any
other layer runs on core 0 with `td_par_team = 1` while the others wait at the layer's barrier.
"""
from __future__ import annotations

import re
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np

from ...codegen.context import EmitContext
from ...codegen.ctext import c_array_body, ctype, scratch_layout
from ...codegen.network import CProject, generate, render_from
from ...errors import BudgetError, TinydeployError
from ...ops.attention import kv_caches
from ..base import Measured
from .config import ClusterConfig
from ..rv32.toolchain import RUNTIME_DIR as RV32_RUNTIME
from .tileloop import RUNTIME as TILE_RUNTIME
from .toolchain import RUNTIME_DIR

HERE = Path(__file__).resolve().parent
ALIGN = 16
RUNTIME_L1 = 512   # L1 bytes of .data/.bss besides the arena and the tile area (runtime, counters)

# Kernels that split their work with td_par_lo/hi and end with td_par_sync (runtime/kernels).
PARALLEL = re.compile(r"td_(pad_s8|conv_\w+|dw3_fast|wino_conv|mm_fast|mmw_s8|matmul_\w+|q(add|sub|max|min|mul)_s8|lut_s8"
                      r"|(max|avg)pool_\w+|quantize_(f32|tab)_\w+|dequantize_(\w+_f32|tab_\w+)|softmax_s8|layernorm_s8|linear_dyn|rope"
                      r"|rmsnorm_dyn|swiglu_dyn|attention_kv(_l2)?|embedding_q8g|add_sat_s16"
                      r"|(add|sub|mul|div|max|min|fmax|fmin|mod|fmod|pow)_(f32|s32|s64)\w*"
                      r"|(rqs|ihswish|mulc|isoftmax|irmsnorm|igelu|inonorm|itamax|ilayernorm|idiv|imean)_[a-z0-9]+_[a-z0-9]+)")
_CALL = re.compile(r"(td_\w+)\(.*\);")


def parallel(code: str) -> bool:
    """Every line of the layer is one call to a parallel kernel."""
    lines = [ln.strip() for ln in code.strip().splitlines()]
    return bool(lines) and all((m := _CALL.fullmatch(ln)) and PARALLEL.fullmatch(m.group(1)) for ln in lines)


class ClusterContext(EmitContext):
    """Constants of a layer go into its L2 block and are read from the L1 weight buffer `wb`.
    With a `tiler` (tiling mode) every node runs as a tile loop (tileloop.py) from the L2 arena."""

    def __init__(self, *args, tiler=None):
        super().__init__(*args)
        self.blocks: list[bytes] = []
        self._block: bytearray | None = None
        self._streamed: dict[str, str] = {}
        self.layer_records: list[dict] = []
        self._region = {n.name: (n.attrs.get("_block") or [None])[0] for n in self.graph.nodes}
        self._kv = kv_caches(self.graph)    # homed in L2, streamed through the window by the kernel
        self.window = 0
        self._early: dict[int, list[str]] = {}   # layer index -> core 0's early transfers there
        self._early_from: dict = {}              # region -> the layer after the last that had some
        self.tiler = tiler
        self.tile_blocks: list[bytes] = []
        self.tile_bytes = 0           # the tile area: two entry slots and the largest node's own buffers
        self.own_bytes, self.entry = 0, [0, 0]
        self.prefetch_macros: list[str] = []
        self.tile_dma_bytes = 0       # bytes the tile loops move
        self.tilings: list = []       # the Tiling each node ran with
        self._tile_ptrs: dict[str, str] | None = None
        self._tile_scratch = 0

    def emit(self, node, op):
        if self.tiler is None or op.emit is None:
            return super().emit(node, op)
        from .tileloop import emit as emit_tiles
        home = lambda n: f"{self.prefix}arena + {self.offsets[n]}"  # noqa: E731
        cap, n = self.tiler.capacity, len(self.tilings)
        entry = n if self.tiler.prefetch else None
        for _ in range(8):   # the kernels' packed weights and scratch may exceed the solver's estimate
            t = self.tiler.solve(node, cap)
            loop = emit_tiles(node, self.graph, t, self, home, parallel, len(self.tile_blocks), self.prefix, entry,
                              self.tiler.capacity // 16)
            slots = self.entry[:]
            if entry is not None:
                slots[n % 2] = max(slots[n % 2], loop.block_bytes)
            need = loop.l1_bytes + sum(slots)
            if need <= self.tiler.capacity:
                break
            cap = min(cap, t.l1_bytes) * self.tiler.capacity // need - 16   # scaled by the excess
        else:
            raise BudgetError(f"node {node.name} ({node.op}): its tiles need {need:,} bytes of L1, "
                                  f"{self.tiler.capacity:,} are available for tile buffers")
        self.tile_blocks += loop.blocks
        self.own_bytes, self.entry = max(self.own_bytes, loop.l1_bytes), slots
        self.tile_bytes = self.own_bytes + sum(self.entry)
        if entry is not None and n:   # the previous tile loop prefetches this one's first constants
            P = self.prefix.upper()
            self.prefetch_macros.append(
                f"#define {P}PF{n - 1}() ((void)td_dma_start_1d({self.prefix}tiles + {P}E{n % 2}, {loop.first_block[0]}, "
                f"{loop.first_block[1]}))" if loop.first_block else f"#define {P}PF{n - 1}() ((void)0)")
        self.tile_dma_bytes += loop.dma_bytes
        self.tilings.append(t)
        name, off, planned, _ = self._layer
        self._layer = (name, off, planned, planned)   # the planned whole-node scratch is not used
        return loop.code

    def _tile_defines(self) -> str:
        """The tile loops' C helpers, the entry slots' and own area's offsets, the prefetch macros."""
        if self.tiler is None:
            return ""
        P, n = self.prefix.upper(), len(self.tilings)
        return "\n".join([TILE_RUNTIME, f"#define {P}E0 0", f"#define {P}E1 {self.entry[0]}",
                          f"#define {P}TB {sum(self.entry)}", *self.prefetch_macros,
                          f"#define {P}PF{n - 1}() ((void)0)"])

    def tile_emit(self, node, graph, op, ptrs):
        """One tile's call (tileloop.py): activations at `ptrs`, constants into a block of their own;
        returns (code, block bytes, scratch bytes)."""
        saved = self.graph, self._block, self._streamed, self.kernels
        self.graph, self._block, self._streamed, self._tile_ptrs, self._tile_scratch = graph, bytearray(), {}, ptrs, 0
        # no Winograd on tiles: its transformed weights (3.6x the bytes) and chunk scratch are not
        # what the TileSpec models, and small tiles would move them again and again
        self.kernels = replace(self.kernels, winograd=False)
        try:
            code = op.emit(node, graph, self)
            return code, bytes(self._block), self._tile_scratch
        finally:
            self.graph, self._block, self._streamed, self.kernels = saved
            self._tile_ptrs = None

    def scratch(self, pieces):
        if self._tile_ptrs is None:
            return super().scratch(pieces)
        offsets, used = scratch_layout(pieces)
        self._tile_scratch = max(self._tile_scratch, used)
        return [f"(({ctype(dt)} *)({self.prefix}tiles + @@scratch@@ + {off}))" for (dt, _), off in zip(pieces, offsets)]

    def ptr(self, name):
        if name in self._kv and name not in self._const_done:
            t = self.graph.tensors[name]
            sym = self._const_done[name] = self.ident("state_" + name)
            self.decls.append(f"TD_L2 {ctype(t.dtype)} {sym}[{max(t.size, 1)}];  /* persistent state in L2 */")
        return self._ptr(name)

    def far(self, name, window_bytes):
        if name not in self._kv:
            return None
        self.window = max(self.window, window_bytes)
        return f"{self.prefix}kv_window", f"{self.prefix}kv_fetched"

    def early(self, code):
        here, reg = len(self.layer_records), self._region[self._layer[0]]
        at = here if reg is None else self._early_from.get(
            reg, next((i for i, r in enumerate(self.layer_records) if r["region"] == reg), here))
        self._early.setdefault(at, []).append(code)
        if reg is not None:
            self._early_from[reg] = here + 1

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

    def _ptr(self, name):
        if self._tile_ptrs is not None and name in self._tile_ptrs:
            return self._tile_ptrs[name]
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
        rec = {"parallel": self.tiler is not None or parallel(code), "wblock": None}   # a tile loop runs on all cores
        if block:
            rec["wblock"] = len(self.blocks)
            self.blocks.append(block)
        self.layer_records.append({"name": self._layer[0], "region": self._region[self._layer[0]], **rec})
        return rec

    def template_fields(self):
        """Weight blocks, their L1 buffers and per emitted layer how its block arrives.
        A block several layers need (RoPE's tables, a tied embedding and classifier) is resident: its
        own buffer, moved once per program by the first layer that needs it. The others stream: each
        such layer, once its own block is in, starts the transfer of the next one's, which arrives
        while it computes; consecutive ones use buffers 0 and 1 in turn. In a row-block loop the next
        one is the loop's first while rows remain, else the first after the loop; a loop with an odd
        number of them would put its last and first in the same buffer, so its first gets buffer 2 of
        its own. A network with state (run again and again, e.g. a language model's decode steps)
        starts its first block at the end of a run for the next run."""
        first_of: dict[bytes, int] = {}
        uses: dict[bytes, int] = {}
        for i, blk in enumerate(self.blocks):
            first_of.setdefault(blk, i)
            uses[blk] = uses.get(blk, 0) + 1
        resident = sorted({first_of[b] for b, n in uses.items() if n > 1})
        recs = [dict(r, block=None, resident=None, prefetch=[], own=False) for r in self.layer_records]
        for r in recs:
            b = r["wblock"]
            if b is not None and uses[self.blocks[b]] > 1:
                r["resident"] = resident.index(first_of[self.blocks[b]])
            else:
                r["block"] = b
        weighted = [r for r in recs if r["block"] is not None]
        for i, r in enumerate(weighted):
            reg = r["region"]
            if reg is not None and (i == 0 or weighted[i - 1]["region"] != reg):
                j = i
                while j < len(weighted) and weighted[j]["region"] == reg:   # a region is one run of nodes
                    j += 1
                r["own"] = (j - i) % 2 == 1
                last = weighted[j - 1]
                last["prefetch"].append(("r_ + b_ < n_", r["block"]))
                if j < len(weighted):
                    last["prefetch"].append(("r_ + b_ >= n_", weighted[j]["block"]))
                    weighted[j]["check"] = True   # not on its way if the loop ran no rows
                last["loop_last"] = True
        for r, nxt in zip(weighted, weighted[1:]):
            if not r.get("loop_last"):
                r["prefetch"].append((None, nxt["block"]))
        buf, k = {}, 0
        for r in weighted:
            buf[r["block"]] = 2 if r["own"] else k % 2
            k += not r["own"]
        size = [0, 0, 0]
        for b, n in buf.items():
            size[n] = max(size[n], -(-len(self.blocks[b]) // ALIGN) * ALIGN)
        used = set(buf) | set(resident)
        first = weighted[0]["block"] if weighted else None
        return {"blocks": [{"n": len(b), "body": c_array_body(np.frombuffer(b, np.uint8)) if i in used else None,
                            "buf": buf.get(i)} for i, b in enumerate(self.blocks)],
                "wbuf": size, "resident": [{"block": b, "n": -(-len(self.blocks[b]) // ALIGN) * ALIGN} for b in resident],
                "fetch": [{"block": r["block"], "resident": r["resident"], "prefetch": r["prefetch"], "check": r.get("check"),
                           "early": self._early.get(i, [])} for i, r in enumerate(recs)],
                "kv_window": self.window,
                "tile_blocks": [{"n": len(b), "body": c_array_body(np.frombuffer(b, np.uint8))} for b in self.tile_blocks],
                "tile_bytes": self.tile_bytes, "tiled": self.tiler is not None, "tile_runtime": self._tile_defines(),
                "first": first, "again": first is not None and any(t.state for t in self.graph.tensors.values())}


def tiled(c, config: ClusterConfig) -> bool:
    """Tiling mode: asked for, or the whole tensors do not fit L1 (ClusterConfig.tiling; the
    placement of ClusterTarget decides)."""
    from . import ClusterTarget
    from ...compiler import Footprint
    return "arena" in ClusterTarget(config).placement(Footprint.of(c))["L2"]


def _without_scratch(c):
    """The compiled network with its arena planned again without the whole-node kernel scratch, which
    tile loops do not use (each tile's scratch is in the tile area)."""
    from ...codegen.network import tensor_offsets
    from ...schedule import plan
    from ...schedule.buffers import graph_buffers
    bufs = [b for b in c.buffers if b.name in c.graph.tensors]
    keep = {b.name for b in bufs}
    mp = plan(bufs, [h for h in c.hints if h.out in keep and h.src in keep], align=16)
    roots = graph_buffers(c.graph, c.kernels)[2]
    return replace(c, plan=mp, offsets=tensor_offsets(c.graph, mp.offsets, roots), scratch={})


def emit(c, out_dir: Path, config: ClusterConfig, prefix: str = "td_") -> tuple[CProject, dict]:
    """The cluster's C project of a compiled network (compiler.Compiled), and what the target
    reports of it: L1 bytes of the two weight buffers, L2 bytes of the weight blocks, serial layers,
    and in tiling mode the tile area and the tilings."""
    from .tileloop import Tiler
    tiler = None
    if tiled(c, config):
        c = _without_scratch(c)
        # L1 holds the tile area, one stack per core and the runtime's own few variables
        capacity = config.l1_bytes - config.cores * config.stack_bytes - RUNTIME_L1 - 4 * len(c.graph.nodes)
        tiler = Tiler(c.graph, c.kernels, config, capacity)
    # an entry slot grown by a later node may leave an earlier one too little: again with the slots as
    # large from the start, then without prefetching
    entry = [0, 0]
    for prefetch in (True, True, False):
        if tiler is not None:
            tiler.prefetch = prefetch
        ctx = ClusterContext(c.graph, c.offsets, prefix, c.kernels, tiler=tiler)
        ctx.entry = entry if prefetch else [0, 0]
        proj = generate(c.graph, c.offsets, c.plan.arena_bytes, out_dir, prefix, c.kernels, c.scratch, c.regions,
                        ctx=ctx, template=HERE / "network.c.j2")
        if tiler is None or ctx.tile_bytes <= tiler.capacity:
            break
        entry = ctx.entry
    for src in (RUNTIME_DIR / "td_cluster.h", RUNTIME_DIR / "td_par.h", RV32_RUNTIME / "td_mmio_rv32.h"):
        shutil.copy(src, out_dir / "runtime" / src.name)   # the project builds with the cluster runtime alone
    fields = ctx.template_fields()
    serial = [l["name"] for l in ctx.layer_records if not l["parallel"]]
    info = {"wbuf": sum(fields["wbuf"]), "weight_blocks": sum(len(b) for b in ctx.blocks), "serial": serial}
    if tiler is not None:
        info["tiling"] = {
            "tile_area_bytes": ctx.tile_bytes, "tile_capacity_bytes": tiler.capacity,
            "arena_level": "L2", "arena_bytes": c.plan.arena_bytes, "arena_lower_bound": c.plan.lower_bound,
            "weight_bytes_l2": sum(len(b) for b in ctx.tile_blocks), "dma_bytes": ctx.tile_dma_bytes,
            "tiles": sum(t.n_tiles for t in ctx.tilings),
            "nodes": {t.node: {"tiles": t.n_tiles, **{d: n for d, n in t.tiles.items() if t.counts[d] > 1}}
                      for t in ctx.tilings if t.n_tiles > 1}}
    return proj, info


def _measured(b, sim, info: dict, config: ClusterConfig, cycles: int, layer_cycles=None, harness: int = 0) -> Measured:
    """REPORT.json fields of one simulated run; every cycle figure is modelled (README.md).
    `harness`: DMA cycles of the run harness's input copy, which core 0 waits for before td_run:
    `run_overlap` is the share of the network's own DMA time hidden behind compute."""
    busy, stall = sim.dma_cycles - harness, sim.dma_stall_cycles - harness
    return Measured(cycles, layer_cycles, {"L1_total": b.l1_used_bytes, "L2_total": b.l2_used_bytes}, {
        "sections": b.sections, "code_bytes": b.code_bytes, "stack_used_bytes": max(sim.stack_used_bytes),
        "cycles_model": "modelled: 1 cycle per instruction per core, plus barrier and DMA waits "
                        "(targets/cluster/README.md)",
        "cluster": {
            "cores": config.cores, "program_cycles": sim.cycles, "instructions": sim.instructions,
            "utilisation": [round(u, 4) for u in sim.utilisation],
            "idle_barrier": sim.idle_barrier, "idle_dma": sim.idle_dma,
            "dma": {"transfers": sim.dma_transfers, "bytes": sim.dma_bytes, "cycles": sim.dma_cycles,
                    "stall_cycles": sim.dma_stall_cycles, "overlap": round(sim.dma_overlap, 4),
                    "run_overlap": round(1 - stall / busy, 4) if busy > 0 else 1.0},
            "weight_buffers_bytes": info["wbuf"], "weight_bytes_l2": info["weight_blocks"],
            "serial_layers": info["serial"], **({"tiling": info["tiling"]} if "tiling" in info else {}),
        }})


def run(c, inputs: dict[str, np.ndarray], work: Path, config: ClusterConfig) -> tuple[dict, Measured]:
    """`tinydeploy run --target cluster`: outputs by name and the measured (modelled) figures."""
    from .runner import build, simulate
    proj, info = emit(c, work / "c", config)
    graph = c.graph
    data = {n: np.ascontiguousarray(inputs[n]).view(np.uint8).ravel() for n in graph.inputs if graph.tensors[n].nbytes}
    # whole tensors: the inputs arrive in L2 and core 0 moves them into the L1 arena; tiling mode:
    # the arena is in L2 and the inputs arrive in it (the first tile loop streams them)
    ins = [{"i": i, "nbytes": 0 if "tiling" in info else graph.tensors[n].nbytes} for i, n in enumerate(graph.inputs)]
    main_c = work / "main_cluster.c"
    main_c.write_text(render_from(HERE / "main_run.c.j2", p=proj.prefix, inputs=ins))
    b = build(proj.sources + [main_c], proj.include_dirs, work / "cluster", config, {"TD_PROFILE": "1"})
    if "tiling" in info:
        arena = np.zeros(max(proj.arena_bytes, 1), np.uint8)
        for n, v in data.items():
            arena[proj.offsets[n]:proj.offsets[n] + len(v)] = v
        feed = {proj.prefix + "arena": arena}
    else:
        feed = {f"td_in{i}": data[n] for i, n in enumerate(graph.inputs) if n in data}
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
    harness = sum(config.dma_latency + -(-a["nbytes"] // config.dma_bytes_per_cycle) for a in ins if a["nbytes"])
    return outs, _measured(b, sim, info, config, cycles, [int(x) for x in layer], harness)


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
