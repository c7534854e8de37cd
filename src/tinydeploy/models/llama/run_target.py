"""Run the compiled generation program on a target and assemble the ``generate`` report."""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from ...errors import TinydeployError
from .generate import PREFILL_ROWS, GenResult, Program, build_program, load_model, run_host

RV32_ROWS = (64, 32, 16, 8, 4, 1)  # prefill rows tried on rv32, largest first, until it fits


def run_rv32(prog: Program, work: Path, config) -> GenResult:
    from ...targets.rv32.runner import build, simulate
    b = build([prog.main_c] + prog.project.sources, prog.project.include_dirs, work / "rv32", config)
    sim = simulate(b, config)
    if sim.exit_code != 0:
        raise TinydeployError(f"rv32 generate program exited with code {sim.exit_code}")
    n = int(sim.read_array("td_gen_ntok", np.int32)[0])
    cycles = sim.read_array("td_gen_cycles", np.uint32)[:max(n, 1)].tolist()
    out = GenResult(sim.read_array("td_gen_tokens", np.int32)[:n].tolist(), sim.console,
                    int(sim.read_array("td_gen_hash", np.uint32)[0]), cycles=cycles)
    out.extra.update(build=b, sim=sim, last_logits=sim.read_array("td_gen_logits", np.int32))
    return out


def _prog_rv32(model, tok, ids, steps, temperature, top_p, seed, work, config):
    """The largest prefill chunk whose program fits the SRAM (weights are shared by decode)."""
    last = None
    for rows in RV32_ROWS:
        prog = build_program(model, tok, ids, steps, temperature, top_p, seed, work / f"c{rows}", rows)
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
    model, tok = load_model(checkpoint)
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
        elif target == "rv32":
            from ...targets.rv32.runner import Rv32Config
            config = rv32_config or Rv32Config()
            prog, res = _prog_rv32(model, tok, ids, steps, temperature, top_p, seed, work, config)
        else:
            raise TinydeployError(f"generate supports --target host or rv32, not {target}")
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
           "layers": [dict(l, engine="cpu", cycles=None) for l in prog.project.layers],
           "compile_seconds": round(sum(prog.seconds.values()), 3), "wall_seconds": round(seconds, 3),
           "memory_plan": {"arena": plan.arena_bytes, "kv_cache": state, "constants": consts},
           "memory_lower_bound": {}, "logit_hash": f"{res.logit_hash:08x}"}
    if target == "host":
        dec = res.decode_seconds or 0.0
        rep.update(clock_hz=None, cycles=None, memory={"host": plan.arena_bytes + state + consts},
                   sections={}, code_bytes=None,
                   tokens_per_second=round((n - 1) / dec, 1) if n > 1 and dec > 0 else None,
                   cycles_per_token=None, prefill_seconds=res.prefill_seconds, decode_seconds=dec)
        return rep
    b, sim = res.extra["build"], res.extra["sim"]
    cyc = res.cycles
    decode_at = {str(len(ids) + i - 1): int(c) for i, c in enumerate(cyc[1:], start=1)}
    mean = float(np.mean(cyc[1:])) if len(cyc) > 1 else None
    rep.update(clock_hz=config.clock_hz, cycles=int(sim.instructions), memory={"SRAM": b.sram_used_bytes},
               memory_lower_bound={"SRAM": None}, sections=b.sections, code_bytes=b.code_bytes,
               stack_used_bytes=sim.stack_used_bytes, march=config.march,
               tokens_per_second=round(config.clock_hz / mean, 1) if mean else None,
               cycles_per_token={"prefill": round(cyc[0] / len(ids), 1), "decode": mean, "decode_at": decode_at})
    return rep


def summary(rep: dict) -> str:
    if rep["target"] == "host":
        tps = rep["tokens_per_second"]
        return f"{rep['tokens']} tokens, {tps if tps is not None else '-'} tokens/s (host, decode)"
    c = rep["cycles_per_token"]
    return (f"{rep['tokens']} tokens on {rep['march']}: prefill {c['prefill']:,.0f} cycles/prompt token, "
            f"decode {c['decode'] or 0:,.0f} cycles/token ({rep['tokens_per_second']} tokens/s at "
            f"{rep['clock_hz'] / 1e6:.0f} MHz), SRAM {rep['memory']['SRAM']:,} B")
