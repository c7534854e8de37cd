"""What the CLI commands do, as functions the tests call too: compile to a directory, run on a target,
and the REPORT.json contract of BRIEF section 3."""
from __future__ import annotations

import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np

from .compiler import Compiled, Footprint, compile_onnx, emit_c
from .errors import TinydeployError
from .golden import run_graph
from .progress import step

CLOCK_HZ = {"host": None, "golden": None}


def load_inputs(path: Path, graph) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except FileNotFoundError:
        raise TinydeployError(f"cannot read inputs {path}: no such file") from None
    except (OSError, ValueError, zipfile.BadZipFile) as e:
        raise TinydeployError(f"cannot read inputs {path}: not a valid .npz file ({e})") from None
    check_inputs(data, graph)
    return data


def check_inputs(data: dict[str, np.ndarray], graph) -> None:
    missing = [n for n in graph.inputs if n not in data]
    extra = [k for k in data if k not in graph.inputs]
    if missing or extra:
        raise TinydeployError(f"inputs: the graph expects {sorted(graph.inputs)}, the file has {sorted(data)}"
                              + (f" (missing {missing})" if missing else "") + (f" (unknown {extra})" if extra else ""))
    for n in graph.inputs:
        t, v = graph.tensors[n], data[n]
        if v.dtype != t.dtype:
            raise TinydeployError(f"input '{n}': dtype {v.dtype} given, the graph expects {np.dtype(t.dtype)}")
        if tuple(v.shape) != tuple(t.shape):
            raise TinydeployError(f"input '{n}': shape {list(v.shape)} given, the graph expects {list(t.shape)}")
        if v.dtype.kind == "f" and not np.all(np.isfinite(v)):
            raise TinydeployError(f"input '{n}': contains NaN or infinity")


def base_report(c: Compiled, target: str, t_compile: float) -> dict:
    from .ops.registry import node_macs, get
    layers = [{"name": n.name, "op": n.op, "engine": "cpu", "cycles": None, "macs": node_macs(n, c.graph)}
              for n in c.graph.nodes if not get(n).alias]
    level = "host" if target in ("host", "golden") else "SRAM"
    fp = Footprint.of(c)
    return {
        "target": target, "clock_hz": CLOCK_HZ.get(target), "cycles": None,
        "memory": {level: fp.arena, "scratch": fp.scratch, "state": fp.state, "weights": fp.weights},
        "memory_lower_bound": {level: c.plan.lower_bound},
        "memory_plan": {"method": c.plan.method, "optimal": c.plan.optimal, "gap": c.plan.gap,
                        "ratio": round(c.plan.ratio(), 4)},
        "sections": {}, "code_bytes": None, "compile_seconds": round(t_compile, 4),
        "stage_seconds": {k: round(v, 4) for k, v in c.seconds.items()},
        "macs": sum(l["macs"] for l in layers), "layers": layers,
    }


def target_config(target: str, path):
    """The target description (`--target-config FILE`, TOML/JSON); None for targets without one."""
    if target != "rv32":
        if path is not None:
            raise TinydeployError(f"--target-config: target {target} takes no configuration")
        return None
    from .targets.rv32.runner import Rv32Config
    return Rv32Config.load(path)


def compile_to_dir(model: Path, target: str, out_dir: Path, shapes: dict, exact: bool = False,
                   config_path=None) -> dict:
    from .files import Staged
    config = target_config(target, config_path)
    t0 = time.perf_counter()
    with Staged(out_dir, inputs=(model, config_path) if config_path else (model,)) as tmp:  # refuses early
        with step(f"compiling {model.name}"):
            c = compile_onnx(model, shapes, exact)
        if target == "rv32":  # a model that does not fit is a compile-time error
            from .targets.rv32.network_run import check_budget
            check_budget(Footprint.of(c), config)
        emit_c(c, tmp)
    rep = base_report(c, target, time.perf_counter() - t0)
    if config is not None:
        rep["clock_hz"] = config.clock_hz
    return rep


def run_model(model: Path, target: str, inputs_path: Path, shapes: dict, config_path=None) -> tuple[dict, dict]:
    config = target_config(target, config_path)
    t0 = time.perf_counter()
    with step(f"compiling {model.name}"):
        c = compile_onnx(model, shapes)
    t_compile = time.perf_counter() - t0
    inputs = load_inputs(inputs_path, c.graph)
    rep = base_report(c, target, t_compile)
    if target == "golden":
        return run_graph(c.graph, inputs), rep
    with tempfile.TemporaryDirectory(prefix="tinydeploy-") as tmp:
        tmp = Path(tmp)
        proj = emit_c(c, tmp / "c")
        if target == "host":
            from .targets.host import runner
            with step("building and running on the host"):
                return runner.run(proj, c.graph, inputs, tmp), rep
        from .targets.rv32 import network_run
        network_run.check_budget(Footprint.of(c), config)
        with step("building for rv32 and simulating"):
            outs, meas = network_run.run(proj, c.graph, inputs, tmp, config)
        rep.update(clock_hz=config.clock_hz, cycles=meas["cycles"], sections=meas["sections"],
                   code_bytes=meas["code_bytes"], stack_used_bytes=meas["stack_used_bytes"])
        rep["memory"]["SRAM_total"] = meas["sram_used_bytes"]
        for layer, cyc in zip(rep["layers"], meas["layer_cycles"]):
            layer["cycles"] = cyc
        return outs, rep
