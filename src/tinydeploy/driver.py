"""What the CLI commands do, as functions the tests call too: compile to a directory, run a network or
the generate program on a target (targets/base.py), and the REPORT.json contract of BRIEF section 3."""
from __future__ import annotations

import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np

from . import targets
from .compiler import Compiled, Footprint, compile_onnx
from .errors import BudgetError, TinydeployError
from .progress import step
from .targets.base import Measured, Target


def load_inputs(path: Path, graph) -> dict[str, np.ndarray]:
    try:
        z = np.load(path, allow_pickle=False)
        if not isinstance(z, np.lib.npyio.NpzFile):   # a .npy holds one unnamed array
            raise ValueError("a single array, not named arrays")
        with z:
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


def base_report(c: Compiled, target: Target, t_compile: float, program: dict[str, int] | None = None) -> dict:
    """The fields every route fills from the compiled graph: memory[level] is the arena (scratch
    included; its largest node scratch, the state and the weights beside it), with its lower bound."""
    from .ops.registry import get, node_macs
    from .passes.float_nodes import float_nodes, is_quantized
    layers = [{"name": n.name, "op": n.op, "engine": "cpu", "cycles": None, "macs": node_macs(n, c.graph)}
              for n in c.graph.nodes if not get(n).alias]
    level = target.arena_level(c)
    fp = Footprint.of(c, program)
    return {
        **target.report(), "cycles": None,
        "memory": {level: fp.arena, "scratch": fp.scratch, "state": fp.state, "weights": fp.weights,
                   **({"program": sum(fp.program.values())} if fp.program else {})},
        "memory_lower_bound": {level: c.plan.lower_bound},
        "placement": target.placement(fp),   # level -> {part: bytes} before code (the budget check's view)
        "memory_plan": {"method": c.plan.method, "optimal": c.plan.optimal, "gap": c.plan.gap,
                        "ratio": round(c.plan.ratio(), 4)},
        "sections": {}, "code_bytes": None, "compile_seconds": round(t_compile, 4),
        "stage_seconds": {k: round(v, 4) for k, v in c.seconds.items()},
        "macs": sum(l["macs"] for l in layers), "layers": layers,
        # nodes left in float in a quantized graph ([] when all is integer); absent for a float model
        **({"float_nodes": float_nodes(c.graph)} if is_quantized(c.graph) else {}),
    }


def add_measured(rep: dict, m: Measured) -> dict:
    rep["cycles"] = m.cycles
    rep["memory"].update(m.memory)
    rep.update(m.fields)
    for layer, cyc in zip(rep["layers"], m.layer_cycles or []):
        layer["cycles"] = cyc
    return rep


def compile_to_dir(model: Path, target: str | Target, out_dir: Path, shapes: dict, exact: bool = False,
                   config_path=None, integer_only: bool = False, report: Path | None = None,
                   dialect: str = "onnx") -> dict:
    from .files import Staged
    tgt = targets.get(target, config_path)
    t0 = time.perf_counter()
    with Staged(out_dir, inputs=(model, config_path) if config_path else (model,),
                others={"--report": report}) as tmp:  # refuses early
        with step(f"compiling {model.name}"):
            c = compile_onnx(model, shapes, exact, tgt.kernels, tgt.constant_limit(), integer_only, dialect)
        tgt.check_budget(Footprint.of(c))  # a model that does not fit is a compile-time error
        tgt.emit(c, tmp)
    return base_report(c, tgt, time.perf_counter() - t0)


def run_model(model: Path, target: str | Target, inputs_path: Path, shapes: dict, config_path=None,
              integer_only: bool = False, dialect: str = "onnx") -> tuple[dict, dict]:
    tgt = targets.get(target, config_path)
    t0 = time.perf_counter()
    with step(f"compiling {model.name}"):
        c = compile_onnx(model, shapes, kernels=tgt.kernels, const_limit=tgt.constant_limit(),
                         integer_only=integer_only, dialect=dialect)
    rep = base_report(c, tgt, time.perf_counter() - t0)
    inputs = load_inputs(inputs_path, c.graph)
    tgt.check_budget(Footprint.of(c))
    with tempfile.TemporaryDirectory(prefix="tinydeploy-") as tmp, step(f"running on {tgt.name}"):
        outs, m = tgt.run(c, inputs, Path(tmp))
    return outs, add_measured(rep, m)


def generate(checkpoint=None, target: str | Target = targets.DEFAULT, prompt: str = "", steps: int = 256,
             temperature: float = 0.0, top_p: float = 0.9, seed: int = 0, config_path=None,
             work: Path | None = None, tokenizer=None, context: int | None = None) -> tuple[str, dict]:
    """Compile the llama2.c model with the generation loop as main, run it on the target; returns
    (printed text, REPORT dict: run's fields plus generate's)."""
    from .models.llama.generate import build_program, generate_fields, load_model, prefill_rows
    from .models.llama.sampling import SamplerParams
    tgt = targets.get(target, config_path)
    if not tgt.runs_programs:
        raise TinydeployError(f"target {tgt.name} cannot run the generate program")
    t0 = time.perf_counter()
    SamplerParams.from_float(temperature, top_p)  # refuse bad parameters before the calibration
    sizes = tgt.levels.values()   # all levels together bound the checkpoint's data before anything is built
    size = None if None in sizes else sum(sizes)
    model, tok = load_model(checkpoint, (size, f"of {tgt.name} {'+'.join(tgt.levels)}") if size is not None else None,
                            tokenizer, context)
    ids = tok.encode(prompt, bos=True) if prompt else [1]
    with tempfile.TemporaryDirectory(prefix="td-gen-") as tmp:
        work = Path(work or tmp)
        chunks = prefill_rows(model)
        for rows in chunks:  # the largest prefill chunk whose program fits (decode uses the same graph)
            with step(f"compiling the generate program ({rows} prefill rows)"):
                prog = build_program(model, tok, ids, steps, temperature, top_p, seed, work / f"c{rows}", rows,
                                     tgt.kernels, tgt.emit)
            try:
                tgt.check_budget(Footprint.of(prog.compiled, prog.data))
                with step(f"running on {tgt.name}"):
                    values, console, m = tgt.run_program(prog, work / f"r{rows}")
                break
            except BudgetError:
                if rows == chunks[-1]:
                    raise
    rep = add_measured(base_report(prog.compiled, tgt, sum(prog.seconds.values()), prog.data), m)
    rep.update(generate_fields(prog, values, tok, tgt.counter_hz, tgt.clock_hz is not None))
    rep["wall_seconds"] = round(time.perf_counter() - t0, 3)
    return console, rep
