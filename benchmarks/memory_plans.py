"""Arena vs liveness lower bound (BRIEF §5) for the fixed model set, greedy and exact (CP-SAT).

    python benchmarks/memory_plans.py        # writes benchmarks/results/memory_plans.md
"""
from __future__ import annotations

import time
from pathlib import Path

import onnx

from tinydeploy.compiler import compile_graph
from tinydeploy.frontend.onnx_import import import_model
from tinydeploy.testing import BUILDERS, QUANT_CONFIGS, config_name, quantize

OUT = Path(__file__).parent / "results" / "memory_plans.md"


def plans(model: onnx.ModelProto):
    rows = []
    for exact in (False, True):
        t0 = time.perf_counter()
        c = compile_graph(import_model(onnx.ModelProto.FromString(model.SerializeToString())), exact=exact, time_limit_s=5)
        p = c.plan
        rows.append((('exact→' if exact else '') + p.method, p.arena_bytes, p.lower_bound, p.ratio(), p.optimal, p.gap, time.perf_counter() - t0))
    return rows


def main() -> None:
    lines = ["# Memory plans of the fixed model set", "",
             "Arena = activation arena bytes (16-byte aligned); bound = largest total of simultaneously live",
             "activations in the execution order, in-place outputs sharing their input (BRIEF §5).",
             "`exact→…` = asked for CP-SAT (5 s budget, hinted by greedy; skipped when greedy already meets the bound); `optimal` = proven (arena == bound or solver proof).",
             "Rerun: `python benchmarks/memory_plans.py`.", "",
             "| model | variant | planner | arena B | bound B | ratio | optimal | gap | compile s |",
             "| --- | --- | --- | ---: | ---: | ---: | --- | --- | ---: |"]
    for name, build in BUILDERS.items():
        float_model = build()
        variants = [("float", float_model)] + [(config_name(*cfg), quantize(float_model, fmt=cfg[0], activation=cfg[1],
                                                                           weight=cfg[2], per_channel=cfg[3]))
                                                for cfg in QUANT_CONFIGS if cfg[1:] == ("int8", "int8", True) or
                                                cfg == ("qoperator", "uint8", "int8", True)]
        for vname, m in variants:
            for method, arena, bound, ratio, opt, gap, sec in plans(m):
                lines.append(f"| {name} | {vname} | {method} | {arena:,} | {bound:,} | {ratio:.3f} | {opt} | "
                             f"{'' if gap is None else f'{gap:.3f}'} | {sec:.2f} |")
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
