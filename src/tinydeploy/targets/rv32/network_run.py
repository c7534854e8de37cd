"""`tinydeploy run --target rv32`: build the network with a harness, simulate, read outputs back."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ...codegen.ctext import c_array_body
from ...codegen.network import CProject, render_from
from ...errors import TinydeployError
from .runner import Rv32Config, build, simulate

HERE = Path(__file__).resolve().parent


def run(project: CProject, graph, inputs: dict[str, np.ndarray], work: Path, config: Rv32Config) -> tuple[dict, dict]:
    """(outputs by name, measurements: cycles, layer cycles, sections, code bytes, stack)."""
    ins = []
    for name in graph.inputs:
        raw = np.ascontiguousarray(inputs[name]).tobytes()
        ins.append({"nbytes": len(raw), "body": c_array_body(np.frombuffer(raw, np.uint8))})
    main_c = work / "main_rv32.c"
    main_c.write_text(render_from(HERE / "main_run.c.j2", p=project.prefix, inputs=ins))
    res = build(project.sources + [main_c], project.include_dirs, work / "rv32", config, {"TD_PROFILE": "1"})
    sim = simulate(res, config)
    if sim.exit_code != 0:
        raise TinydeployError(f"rv32: program exited with code {sim.exit_code}: {sim.console.strip()[:200]}")
    arena = sim.read(project.prefix + "arena")
    outs = {}
    for name in graph.outputs:
        t = graph.tensors[name]
        off = project.offsets[name]
        outs[name] = np.frombuffer(arena[off:off + t.nbytes], t.dtype).reshape(t.shape).copy()
    # a graph without nodes (outputs are inputs) has no layer: the linker drops the unused counters
    layer = np.frombuffer(sim.read(project.prefix + "layer_cycles"), np.uint32)[:len(project.layers)] \
        if project.layers else []
    meas = {"cycles": int(np.frombuffer(sim.read("td_run_cycles"), np.uint64)[0]),
            "total_instructions": sim.instructions, "layer_cycles": [int(c) for c in layer],
            "sections": res.sections, "code_bytes": res.code_bytes, "stack_used_bytes": sim.stack_used_bytes,
            "sram_used_bytes": res.sram_used_bytes}
    return outs, meas
