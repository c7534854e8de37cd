"""Exact memory planning with CP-SAT (OR-Tools).

Model, in units of ``align`` bytes:

* one offset variable per in-place chain (members share it);
* per buffer a fixed-size memory interval at that offset and a fixed time interval
  ``[start, end + 1)``; NoOverlap2D over (time, memory) forbids live-at-once buffers to share
  bytes.  The output of an in-place pair gets ``[start + 1, end + 1)`` instead: at its
  producing step it lies inside its source's bytes (same offset, not larger), so the source's
  rectangle already covers it there and the pair does not clash;
* ``arena >= offset + size`` for every chain, ``lower_bound <= arena <= hint arena``;
  minimise ``arena``.

Reproducibility.  CP-SAT's parallel portfolio is timing-dependent: stopped by a wall-clock
limit, two runs with the same seed can return different plans.  So by default
(``deterministic=True``) one worker runs under a *deterministic* work budget of
``time_limit_s * DTIME_PER_SECOND`` solver units, which returns the same plan on every run;
a wall-clock cap of ``3 * time_limit_s + 1`` s only guards against a stalled machine (if it
fires, that run is not guaranteed reproducible).  ``deterministic=False`` runs the two-worker
portfolio (``num_workers=2``, fixed seed) under a plain wall-clock limit: sometimes faster,
reproducible only when it finishes before the limit.  Measured on the 2-core build machine
under load from other jobs, the single deterministic worker solved more of our random hard
instances per wall second than two interleaved workers (``interleave_search``), which ran at
~15 s per unit.
"""

from __future__ import annotations

import math
from typing import Iterable, Sequence

from ortools.sat.python import cp_model

from tinydeploy.schedule.liveness import Buffer, InPlace, align_up, chains, lower_bound, resolve_inplace, validate
from tinydeploy.schedule.memory import MemoryPlan, check_plan, finish_plan, plan_greedy

NUM_WORKERS = 2  # portfolio mode: the build machine has two cores
SEED = 0
# Solver work units per wall second of one worker, measured 0.08-0.17 on the loaded 2-core
# build machine; 0.12 makes ``time_limit_s`` roughly wall seconds there.
DTIME_PER_SECOND = 0.12


def _usable_hint(buffers, hint, inplace, src_of, align) -> bool:
    """A hint is trusted only if aligned, valid, and sharing offsets along honoured chains.

    Its arena becomes the model's upper bound, so it must be a solution of this very model.
    """
    if hint is None or any(b.name not in hint.offsets or hint.offsets[b.name] % align for b in buffers):
        return False
    if any(hint.offsets[o] != hint.offsets[s] for o, s in src_of.items()):
        return False
    try:
        check_plan(buffers, hint, inplace)
    except AssertionError:
        return False
    return all(hint.offsets[b.name] + align_up(b.size, align) <= hint.arena_bytes for b in buffers)


def plan_exact(
    buffers: Sequence[Buffer],
    inplace: Iterable[InPlace] = (),
    align: int = 16,
    time_limit_s: float = 5.0,
    hint: MemoryPlan | None = None,
    deterministic: bool = True,
) -> MemoryPlan:
    inplace = tuple(inplace)
    by_name = validate(buffers, align)
    src_of = resolve_inplace(by_name, inplace)
    bound = lower_bound(buffers, inplace, align)
    if not _usable_hint(buffers, hint, inplace, src_of, align):
        hint = plan_greedy(buffers, inplace, align)
    if hint.arena_bytes == bound:  # the hint already meets the bound: nothing to search
        return MemoryPlan(dict(hint.offsets), hint.arena_bytes, bound, "exact", True, 0.0)

    q = {n: align_up(b.size, align) // align for n, b in by_name.items()}
    ub = hint.arena_bytes // align
    lb = bound // align
    m = cp_model.CpModel()
    arena = m.new_int_var(lb, ub, "arena")
    xs, ys = [], []
    off_var: dict[str, cp_model.IntVar] = {}
    for chain in chains(by_name, src_of):
        top = max(q[n] for n in chain)
        if top == 0:  # zero-size chain: any offset is fine, keep 0
            continue
        o = m.new_int_var(0, ub - top, f"o_{chain[0]}")
        m.add(o + top <= arena)
        m.add_hint(o, hint.offsets[chain[0]] // align)
        for n in chain:
            off_var[n] = o
            b = by_name[n]
            if q[n] == 0:
                continue
            t0 = b.start + 1 if n in src_of else b.start
            if t0 > b.end:  # live at one step only, inside its source there
                continue
            xs.append(m.new_fixed_size_interval_var(t0, b.end + 1 - t0, f"t_{n}"))
            ys.append(m.new_fixed_size_interval_var(o, q[n], f"m_{n}"))
    m.add_no_overlap_2d(xs, ys)
    m.add_hint(arena, ub)
    m.minimize(arena)

    solver = cp_model.CpSolver()
    p = solver.parameters
    p.random_seed = SEED
    if deterministic:
        p.num_workers = 1
        p.max_deterministic_time = float(time_limit_s) * DTIME_PER_SECOND
        p.max_time_in_seconds = 3.0 * float(time_limit_s) + 1.0
    else:
        p.num_workers = NUM_WORKERS
        p.max_time_in_seconds = float(time_limit_s)
    status = solver.solve(m)

    # The solver's proven bound (in quanta) can only tighten ours.
    proven = max(bound, math.ceil(solver.best_objective_bound - 1e-9) * align)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        # No solution within the budget (not expected: the hint is one): keep the hint's
        # offsets under their own method name, with the gap to what is proven.
        proven = bound if status == cp_model.UNKNOWN else proven
        return MemoryPlan(dict(hint.offsets), hint.arena_bytes, bound, hint.method, None, hint.arena_bytes / proven - 1)
    offsets = {n: (solver.value(off_var[n]) * align if n in off_var else 0) for n in by_name}
    result = finish_plan(by_name, offsets, bound, align, "exact")
    if status == cp_model.OPTIMAL or result.arena_bytes <= proven:
        result.optimal, result.gap = True, 0.0
    else:
        result.optimal, result.gap = None, result.arena_bytes / proven - 1
    return result
