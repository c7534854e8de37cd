"""`tinydeploy inspect`: the lowered graph, row blocks, the memory plan (table + timeline) and MACs per
layer."""
from __future__ import annotations

from .compiler import Compiled
from .ops.registry import get, node_macs
from .passes.float_nodes import float_nodes, is_quantized
from .schedule import plan_table, timeline_ascii
from .schedule.blocks import node_region, regions
from .schedule.buffers import alias_roots


def describe(c: Compiled, homes: dict[str, str] | None = None) -> str:
    """`homes`: the memory level of each tensor (the target's; a column when there are several)."""
    g, lines = c.graph, []
    lines.append(f"graph {g.name}: {len(g.nodes)} nodes, inputs {g.inputs}, outputs {g.outputs}")
    lines.append("")
    levels = homes if homes and len(set(homes.values())) > 1 else None
    lines.append(f"{'#':>3}  {'node':<32} {'op':<16} {'output':<28} {'shape':<18} {'dtype':<8} {'MACs':>10}  block"
                 + ("  inputs' levels -> output's" if levels else ""))
    total = 0
    for k, n in enumerate(g.nodes):
        t = g.tensors[n.outputs[0]]
        macs = node_macs(n, g)
        total += macs
        kind = " (alias)" if get(n).alias else ""
        mark = node_region(n)
        lines.append(f"{k:>3}  {n.name[:32]:<32} {n.op + kind:<16} {n.outputs[0][:28]:<28} "
                     f"{'x'.join(map(str, t.shape)):<18} {str(t.dtype):<8} {macs:>10,}  "
                     + ("  " if mark is None else f"r{mark[0]}")
                     + (f"  {' '.join(levels[i] for i in n.inputs if i)} -> {levels[n.outputs[0]]}" if levels else ""))
    lines.append(f"total MACs: {total:,}")
    if levels:
        per = {}
        for name, lv in levels.items():
            per[lv] = per.get(lv, 0) + g.tensors[name].nbytes
        lines.append("tensor bytes by home level: " + ", ".join(f"{lv} {b:,}" for lv, b in sorted(per.items())))
    for r in regions(g, alias_roots(g)):
        lines.append(f"row block r{r.index}: nodes {r.steps[0] - 1}-{r.steps[1] - 1} run on {r.block} of "
                     f"{r.count or r.rows} rows at a time; {len(r.internal)} buffers hold {r.block} rows")
    lines.append("")
    lines += _float_section(g)
    lines.append("")
    p = c.plan
    lines.append(f"memory plan ({p.method}): arena {p.arena_bytes:,} bytes, lower bound {p.lower_bound:,}, "
                 f"ratio {p.ratio():.3f}, optimal {p.optimal}" + (f", gap {p.gap:.3f}" if p.gap else ""))
    lines.append(f"{'buffer':<32} {'bytes':>8} {'offset':>8} {'live':>9}")
    for row in plan_table(c.buffers, p):
        name, size, off, start, end = row[:5]
        lines.append(f"{str(name)[:32]:<32} {size:>8,} {off:>8,} {start:>4}-{end:<4}")
    lines.append("")
    lines.append(timeline_ascii(c.buffers, p))
    return "\n".join(lines)


def _float_section(g) -> list[str]:
    if not is_quantized(g):
        return ["float model: every node runs in float"]
    nodes = float_nodes(g)
    if not nodes:
        return ["float nodes: none (all integer)"]
    macs = sum(d["macs"] for d in nodes)
    return [f"float nodes: {len(nodes)} ({macs:,} MACs) run in float"] + \
        [f"     {d['name'][:32]:<32} {d['op']:<16} {d['macs']:>10,}" for d in nodes]
