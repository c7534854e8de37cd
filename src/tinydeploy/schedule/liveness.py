"""Buffer lifetimes, in-place chains and the memory lower bound (BRIEF section 5).

Conventions shared by every planner in this package:

* A buffer is live on the closed step range ``[start, end]``; two buffers conflict when
  those ranges intersect and their byte ranges intersect.
* Sizes are rounded up to the alignment before planning, and the lower bound uses the same
  rounded sizes, so ``arena / bound`` compares like with like (a 5-byte tensor costs 16 bytes
  at ``align=16`` in both).
* An in-place hint ``InPlace(out, src)`` is honoured only when it is legal: ``src`` dies at the
  very step that produces ``out`` and ``out`` is not larger than ``src``.  Honoured hints link
  buffers into chains (a -> b -> c) that share one offset.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

from tinydeploy.errors import TinydeployError


@dataclass(frozen=True)
class Buffer:
    name: str
    size: int  # bytes
    start: int  # first step at which it is live (producer step; graph inputs: 0)
    end: int  # last step at which it is live (last consumer step; graph outputs: last step)


@dataclass(frozen=True)
class InPlace:
    """``out`` may reuse ``src``'s memory: out's producer step == src's last use."""

    out: str
    src: str


class MemoryPlanError(TinydeployError, ValueError):
    """Invalid planner input (duplicate names, negative sizes, end before start, bad align)."""


def align_up(n: int, align: int) -> int:
    return -(-n // align) * align


def validate(buffers: Sequence[Buffer], align: int) -> dict[str, Buffer]:
    """Return buffers by name; reject inputs no plan could honour."""
    if not isinstance(align, int) or align < 1:
        raise MemoryPlanError(f"alignment must be a positive integer, got {align!r}")
    by_name: dict[str, Buffer] = {}
    for b in buffers:
        if b.name in by_name:
            raise MemoryPlanError(f"buffer name {b.name!r} appears twice")
        if b.size < 0:
            raise MemoryPlanError(f"buffer {b.name!r} has negative size {b.size}")
        if b.end < b.start:
            raise MemoryPlanError(f"buffer {b.name!r} ends (step {b.end}) before it starts (step {b.start})")
        by_name[b.name] = b
    return by_name


def overlaps(a: Buffer, b: Buffer) -> bool:
    return a.start <= b.end and b.start <= a.end


def resolve_inplace(by_name: dict[str, Buffer], inplace: Iterable[InPlace]) -> dict[str, str]:
    """Honoured hints as ``{out: src}``; illegal or conflicting hints are dropped silently.

    Hints are taken in the given order.  Each buffer is the source of at most one honoured
    hint and the output of at most one, so groups are simple chains.  Linking two chains is
    refused when any pair other than (src, out) would be live at the same time, because all
    members of a chain sit at the same offset (this only bites for degenerate zero-length
    lifetimes, e.g. a -> b -> c all at one step).
    """
    src_of: dict[str, str] = {}
    out_of: dict[str, str] = {}
    for h in inplace:
        out, src = by_name.get(h.out), by_name.get(h.src)
        if out is None or src is None or h.out == h.src:
            continue
        if src.end != out.start or out.size > src.size:
            continue
        if h.out in src_of or h.src in out_of:
            continue
        # Every link ends one lifetime at the step where the next starts, so a chain's members follow
        # each other in time, and a member of src's chain meets one of out's chain only at the step
        # where src ends and out starts. Besides (src, out), only src's predecessor (when src lives
        # at that step alone) and out's successor (when out does) can be live there. This also
        # refuses closing a cycle: out heading src's chain puts all of it on that one step.
        if h.src in src_of and src.start == src.end or h.out in out_of and out.start == out.end:
            continue
        src_of[h.out] = h.src
        out_of[h.src] = h.out
    return src_of


def chains(by_name: dict[str, Buffer], src_of: dict[str, str]) -> list[list[str]]:
    """Partition buffers into in-place chains (singletons included), each listed root first."""
    out_of = {s: o for o, s in src_of.items()}
    groups = []
    for name in by_name:
        if name in src_of:  # not a root: reached from its chain's root
            continue
        chain = [name]
        while chain[-1] in out_of:
            chain.append(out_of[chain[-1]])
        groups.append(chain)
    return groups


def lower_bound(buffers: Sequence[Buffer], inplace: Iterable[InPlace] = (), align: int = 16) -> int:
    """Largest total (aligned) size live at one step, an in-place output sharing its source.

    Sweep over start / end+1 events.  At the step where ``out`` is produced from ``src`` in
    place both are live but occupy only ``max(size) = size(src)``, so ``size(out)`` is taken
    back for that single step.
    """
    by_name = validate(buffers, align)
    src_of = resolve_inplace(by_name, inplace)
    delta: dict[int, int] = {}
    for b in buffers:
        s = align_up(b.size, align)
        if s:
            delta[b.start] = delta.get(b.start, 0) + s
            delta[b.end + 1] = delta.get(b.end + 1, 0) - s
    for out, _src in src_of.items():
        b = by_name[out]
        s = align_up(b.size, align)
        if s:
            delta[b.start] = delta.get(b.start, 0) - s
            delta[b.start + 1] = delta.get(b.start + 1, 0) + s
    best = live = 0
    for t in sorted(delta):
        live += delta[t]
        best = max(best, live)
    return best
