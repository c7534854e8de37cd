"""The five stages in one place: frontend → passes → schedule → codegen (→ targets build/run)."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .codegen.network import CProject, generate, tensor_offsets
from .errors import TinydeployError
from .frontend import load_onnx
from .ir import Graph
from .limits import ConstLimit
from .ops.attention import kv_caches, window_bytes
from .ops.kernels import Kernels, debug_overrides
from .passes import lower
from .passes.float_nodes import require_integer
from .schedule import MemoryPlan, plan
from .schedule.blocks import regions
from .schedule.buffers import graph_buffers


@dataclass
class Compiled:
    graph: Graph                 # lowered graph
    plan: MemoryPlan             # activation arena plan (alias groups merged)
    buffers: list                # planner input (activations and scratch), kept for inspect / checks
    hints: list                  # in-place hints the planner was given
    offsets: dict[str, int]      # every activation tensor → arena offset
    scratch: dict[int, tuple[int, int]]  # node index → (arena offset, bytes) of its scratch
    kernels: Kernels             # the target's kernel variants (debug overrides applied)
    regions: list                # row blocks (schedule/blocks.py), as the plan sized their buffers
    seconds: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Footprint:
    """Data bytes known before linking, what a target's budget check weighs against its memory levels."""
    weights: int            # constant tensors
    state: int              # persistent tensors (KV caches)
    arena: int              # planned activations and scratch
    scratch: int            # the largest node scratch (inside the arena; live one node at a time)
    program: dict[str, int] = field(default_factory=dict)  # a generated main's own data, by name
    node_weights: tuple[int, ...] = ()  # constant bytes each node reading some reads, in order (for
                                        # a target streaming them layer by layer)
    kv_state: int = 0       # state a kernel can stream from a far memory (KV caches: ops/attention.py)
    kv_window: int = 0      # the near bytes streaming them takes (one layer's K and V rows)

    @classmethod
    def of(cls, c: "Compiled", program: dict[str, int] | None = None) -> "Footprint":
        ts = c.graph.tensors.values()
        per_node = (sum(c.graph.tensors[n].nbytes for n in set(node.inputs) if n and c.graph.tensors[n].is_const)
                    for node in c.graph.nodes)
        kv = kv_caches(c.graph)
        window = max((window_bytes(n, c.graph) for n in c.graph.nodes if n.op == "QAttentionKV" and n.inputs[5] in kv),
                     default=0)
        return cls(sum(t.nbytes for t in ts if t.is_const), sum(t.nbytes for t in ts if t.state),
                   c.plan.arena_bytes, max((b for _, b in c.scratch.values()), default=0), dict(program or {}),
                   tuple(b for b in per_node if b), sum(c.graph.tensors[n].nbytes for n in kv), window)


def compile_graph(graph: Graph, exact: bool = False, time_limit_s: float = 5.0,
                  kernels: Kernels | None = None, integer_only: bool = False) -> Compiled:
    """Lower and plan for a target's kernel description (default: every kernel variant allowed);
    `integer_only`: a node left in float is an error naming it."""
    kernels = debug_overrides(kernels or Kernels())
    t0 = time.perf_counter()
    graph = lower(graph)
    if integer_only:
        require_integer(graph)
    t1 = time.perf_counter()
    buffers, hints, roots, scratch = graph_buffers(graph, kernels)
    mp = plan(buffers, hints, align=16, exact=exact, time_limit_s=time_limit_s)
    t2 = time.perf_counter()
    size = {b.name: b.size for b in buffers}
    return Compiled(graph, mp, buffers, hints, tensor_offsets(graph, mp.offsets, roots),
                    {k: (mp.offsets[b], size[b]) for k, b in scratch.items()}, kernels, regions(graph, roots),
                    {"passes": t1 - t0, "memory_plan": t2 - t1})


def compile_onnx(path: str | Path, shapes: dict | None = None, exact: bool = False,
                 kernels: Kernels | None = None, const_limit: ConstLimit | None = None,
                 integer_only: bool = False, dialect: str = "onnx", integer_inputs: dict | None = None) -> Compiled:
    """const_limit: bytes of constants the target holds (Target.constant_limit; default
    limits.HOST_CONST): constant folding stops there with an error. dialect: frontend/lenient.py.
    integer_inputs: float32 inputs that hold integers of a type (passes/integerize.py)."""
    t0 = time.perf_counter()
    graph = load_onnx(path, shapes, dialect)
    graph.const_limit = const_limit
    graph.integer_inputs = check_integer_inputs(graph, integer_inputs or {})
    t1 = time.perf_counter()
    c = compile_graph(graph, exact, kernels=kernels, integer_only=integer_only)
    c.seconds["frontend"] = t1 - t0
    return c


def check_integer_inputs(graph: Graph, types: dict) -> dict:
    for name, dt in types.items():
        if name not in graph.inputs or graph.tensors[name].dtype != np.float32 or np.dtype(dt).kind not in "iu":
            raise TinydeployError(f"integer input '{name}': must be a float32 graph input given an integer type")
    return {k: np.dtype(v) for k, v in types.items()}


def emit_c(c: Compiled, out_dir: Path, prefix: str = "td_") -> CProject:
    return generate(c.graph, c.offsets, c.plan.arena_bytes, out_dir, prefix, c.kernels, c.scratch, c.regions)
