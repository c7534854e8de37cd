"""Run the compiled generation program on a target and assemble the ``generate`` report."""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from ...errors import TinydeployError
from .generate import PREFILL_ROWS, GenResult, Program, build_program, load_model, run_host
from .sampling import SamplerParams

RV32_ROWS = (64, 32, 16, 8, 4, 1)  # prefill rows tried on rv32, largest first, until it fits


def run_rv32(prog: Program, work: Path, config) -> GenResult:
    from ...targets.rv32.runner import build, simulate
    # TD_PROFILE: per-layer cycles summed over the decode steps (td_gen_layer_cycles); it adds one
    # counter read per layer (~10 instructions) to each step
    b = build([prog.main_c] + prog.project.sources, prog.project.include_dirs, work / "rv32", config,
              {"TD_PROFILE": "1"})
    sim = simulate(b, config)
    if sim.exit_code != 0:
        raise TinydeployError(f"rv32 generate program exited with code {sim.exit_code}")
    n = int(sim.read_array("td_gen_ntok", np.int32)[0])
    cycles = sim.read_array("td_gen_cycles", np.uint32)[:max(n, 1)].tolist()
    out = GenResult(sim.read_array("td_gen_tokens", np.int32)[:n].tolist(), sim.console,
                    int(sim.read_array("td_gen_hash", np.uint32)[0]), cycles=cycles)
    out.extra.update(build=b, sim=sim, last_logits=sim.read_array("td_gen_logits", np.int32),
                     layer_cycles=sim.read_array("td_gen_layer_cycles", np.uint32)[:len(prog.project.layers)].tolist())
    return out


ESTIMATE_SLACK = 8 * 1024  # only skip chunks clearly too big; a near miss is left to the linker
CODE_ESTIMATE = 22 * 1024  # .text + small .rodata/.bss of the generate program (measured ~21.5 KB .text)


def image_estimate(prog: Program, config) -> int:
    """SRAM bytes before linking: constants + state + arena + block and attention scratch + tokenizer + sampler
    buffers + stack + a code estimate. Within ~2 KB of the linked image; the linker still decides."""
    g = prog.compiled.graph
    consts = sum(t.nbytes for t in g.tensors.values() if t.is_const)
    state = sum(t.nbytes for t in g.tensors.values() if t.state)
    seq = next(t.shape[1] for t in g.tensors.values() if t.state)
    n_att = sum(1 for n in g.nodes if n.op == "LlamaAttention")
    n_att += sum(1 for n in g.nodes if n.op == "LlamaAttnBlock")
    blk = max((n.attrs["scratch_bytes"] for n in g.nodes if "scratch_bytes" in n.attrs), default=0)
    tok = prog.main_c.stat().st_size // 5  # pieces and offsets as C text: ~5 characters per byte
    return (consts + state + prog.compiled.plan.arena_bytes + blk + 4 * seq * min(n_att, 1) + 6 * prog.vocab + tok
            + config.stack_bytes + CODE_ESTIMATE)


def _prog_rv32(model, tok, ids, steps, temperature, top_p, seed, work, config):
    """The largest prefill chunk whose program fits the SRAM (weights are shared by decode)."""
    last = None
    for rows in RV32_ROWS:
        prog = build_program(model, tok, ids, steps, temperature, top_p, seed, work / f"c{rows}", rows)
        need = image_estimate(prog, config)
        if need - ESTIMATE_SLACK > config.sram_bytes and rows != RV32_ROWS[-1]:
            last = TinydeployError(f"rv32: the generate program needs about {need:,} bytes of SRAM (estimate) "
                                   f"but the target has {config.sram_bytes:,}")
            continue  # skip building (and failing to link) a chunk that cannot fit
        try:
            return prog, run_rv32(prog, work / f"r{rows}", config)
        except TinydeployError as e:
            if "needs" not in str(e):
                raise
            last = e
    raise last


def generate(checkpoint=None, target: str = "host", prompt: str = "", steps: int = 256,
             temperature: float = 0.0, top_p: float = 0.9, seed: int = 0, rv32_config=None,
             work: Path | None = None) -> tuple[str, dict]:
    """Compile and run; returns (printed text, REPORT dict)."""
    t0 = time.perf_counter()
    SamplerParams.from_float(temperature, top_p)  # refuse bad parameters before the calibration
    if target == "rv32":
        from ...targets.rv32.runner import Rv32Config
        config = rv32_config or Rv32Config()
        model, tok = load_model(checkpoint, (config.sram_bytes, "of rv32 SRAM"))
    elif target == "host":
        model, tok = load_model(checkpoint)
    else:
        raise TinydeployError(f"generate supports --target host or rv32, not {target}")
    ids = tok.encode(prompt, bos=True) if prompt else [1]
    if len(ids) > model.seq_len:
        raise TinydeployError(f"prompt is {len(ids)} tokens; the context holds {model.seq_len}")
    if not 1 <= steps <= model.seq_len:
        raise TinydeployError(f"--steps must be in 1..{model.seq_len}, got {steps}")
    with tempfile.TemporaryDirectory(prefix="td-gen-") as tmp:
        work = Path(work or tmp)
        if target == "host":
            prog = build_program(model, tok, ids, steps, temperature, top_p, seed, work / "c", PREFILL_ROWS)
            res = run_host(prog, work)
        else:
            prog, res = _prog_rv32(model, tok, ids, steps, temperature, top_p, seed, work, config)
        rep = report(prog, res, target, ids, tok, time.perf_counter() - t0,
                     config if target == "rv32" else None)
    return res.console, rep


def report(prog: Program, res: GenResult, target: str, ids, tok, seconds: float, config) -> dict:
    n = len(res.tokens)
    plan = prog.compiled.plan
    g = prog.compiled.graph
    state = sum(t.nbytes for t in g.tensors.values() if t.state)
    consts = sum(t.nbytes for t in g.tensors.values() if t.is_const)
    rep = {"target": target, "tokens": n, "text": tok.decode(ids[1:] + res.tokens),
           "token_ids": res.tokens, "prompt_tokens": len(ids), "prefill_rows": prog.rows,
           "layers": _layers(prog, res),
           "compile_seconds": round(sum(prog.seconds.values()), 3), "wall_seconds": round(seconds, 3),
           "memory_plan": {"arena": plan.arena_bytes, "kv_cache": state, "constants": consts},
           "logit_hash": f"{res.logit_hash:08x}"}
    split = {"arena": plan.arena_bytes, "kv_cache": state, "weights": consts}
    if target == "host":
        dec = res.decode_seconds or 0.0
        rep.update(clock_hz=None, cycles=None, memory={"host": plan.arena_bytes + state + consts, **split},
                   memory_lower_bound={"host": plan.lower_bound},
                   sections={}, code_bytes=None,
                   tokens_per_second=round((n - 1) / dec, 1) if n > 1 and dec > 0 else None,
                   cycles_per_token=None, prefill_seconds=res.prefill_seconds, decode_seconds=dec)
        return rep
    b, sim = res.extra["build"], res.extra["sim"]
    cyc = res.cycles
    decode_at = {str(len(ids) + i - 1): int(c) for i, c in enumerate(cyc[1:], start=1)}
    mean = float(np.mean(cyc[1:])) if len(cyc) > 1 else None
    rep.update(clock_hz=config.clock_hz, cycles=int(sim.instructions), memory={"SRAM": b.sram_used_bytes, **split},
               memory_lower_bound={"SRAM": plan.lower_bound}, sections=b.sections, code_bytes=b.code_bytes,
               stack_used_bytes=sim.stack_used_bytes, march=config.march,
               tokens_per_second=round(config.clock_hz / mean, 1) if mean else None,
               cycles_per_token={"prefill": round(cyc[0] / len(ids), 1), "decode": mean, "decode_at": decode_at})
    return rep


def _layers(prog: Program, res: GenResult) -> list[dict]:
    """Per layer: MACs of one decode step ("macs"; attention: 0, run-time dependent) and, on rv32, cycles summed
    over all decode steps ("cycles") and their mean per step; the host measures no cycles."""
    cyc = res.extra.get("layer_cycles")
    steps = max(len(res.cycles or []) - 1, 1)
    g = prog.compiled.graph
    rows = {n.name: g.tensors[n.outputs[0]].shape[0] for n in g.nodes}
    out = []
    for i, l in enumerate(prog.project.layers):
        macs = (l["macs"] or 0) // max(rows.get(l["name"], 1), 1)  # static rows T -> one row (n = 1)
        d = {"name": l["name"], "op": l["op"], "engine": "cpu", "macs": macs,
             "cycles": None, "cycles_per_decode_step": None, "cycles_basis": "sum over decode steps"}
        if cyc is not None:
            d.update(cycles=int(cyc[i]), cycles_per_decode_step=round(cyc[i] / steps, 1))
        out.append(d)
    return out


def summary(rep: dict) -> str:
    if rep["target"] == "host":
        tps = rep["tokens_per_second"]
        return f"{rep['tokens']} tokens, {tps if tps is not None else '-'} tokens/s (host, decode)"
    c = rep["cycles_per_token"]
    return (f"{rep['tokens']} tokens on {rep['march']}: prefill {c['prefill']:,.0f} cycles/prompt token, "
            f"decode {c['decode'] or 0:,.0f} cycles/token ({rep['tokens_per_second']} tokens/s at "
            f"{rep['clock_hz'] / 1e6:.0f} MHz), SRAM {rep['memory']['SRAM']:,} B")
