"""``tinydeploy generate``: the integer llama compiled to C (graph -> compile_graph -> codegen) plus
a generated main running the whole loop on the target (host or simulated rv32)."""
from __future__ import annotations

import hashlib
import os
import subprocess
import tempfile
import time
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

import numpy as np

from ...cache import cache_dir
from ...codegen.context import c_array_body
from ...codegen.network import CProject, render_from
from ...compiler import compile_graph, emit_c
from ...errors import TinydeployError
from .budget import HOST_MEMORY_BYTES, check_fits, generate_parts
from .checkpoint import LlamaWeights, QuantizedTensor, read_checkpoint
from .intmodel import Calibration, IntLlama, calibrate
from .reference import FloatLlama
from .sampling import EXP2_Q16, SamplerParams, XorShiftRng
from .tokenizer import BOS_ID, Tokenizer

HERE = Path(__file__).resolve().parent
PREFILL_ROWS = 64
KERNEL_GROUP = 32  # the Q8_0 group of the compiled kernels (runtime/kernels/llama.h, intops.effective_weight)


def _calibration(cfg, w, path: Path) -> Calibration:
    """Activation ranges of the float model on its own samples, cached per checkpoint in
    cache_dir(); a cache file that does not load or does not fit the model is rebuilt."""
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    f = cache_dir() / f"llama-calib-{digest}.npz"
    try:
        with np.load(f) as z:
            arrs = {k: z[k] for k in z.files}
    except Exception:  # noqa: BLE001 - missing or unreadable, whatever the damage: rebuild it
        arrs = {}
    if arrs and _calibration_problem(arrs, cfg) is None:
        return Calibration(**{k: (float(a) if k == "x" else a) for k, a in arrs.items()})
    from .quant_study import CAL_SEEDS, sample_sequences  # the design study's calibration text
    with np.errstate(all="ignore"):  # a float model that overflows is reported below, in one line
        seqs = sample_sequences(cfg, w, CAL_SEEDS)
        calib = calibrate(FloatLlama(cfg, w, max(map(len, seqs))), seqs)
    problem = _calibration_problem(calib.__dict__, cfg)
    if problem:
        raise TinydeployError(f"checkpoint {path}: on the calibration text, {problem}")
    _save_calibration(f, calib)
    return calib


def _calibration_problem(arrs: dict, cfg) -> str | None:
    """Why these ranges cannot calibrate the integer model of ``cfg`` (None: they can). A per-layer
    range must be positive (the integer model derives its scales from it), a per-channel one may be 0."""
    if set(arrs) != {f.name for f in fields(Calibration)}:
        return f"calibration has fields {sorted(arrs)}"
    for k, a in arrs.items():
        a = np.asarray(a)
        shape = () if k == "x" else (cfg.n_layers, cfg.kv_dim) if k.endswith("_ch") else (cfg.n_layers,)
        if a.shape != shape or a.dtype.kind != "f":
            return f"calibration {k} has shape {a.shape}, dtype {a.dtype}"
        ok = (a < np.inf) & ((a >= 0) if k.endswith("_ch") else (a > 0))
        if not ok.all():
            at = f" (layer {np.argwhere(~ok)[0][0]})" if a.ndim else ""
            return f"the float model's {k} range{at} is {a[~ok].flat[0]}; it must be finite and positive"
    return None


def _save_calibration(f: Path, calib: Calibration) -> None:
    """Written under a unique name, then renamed: a reader never sees a partial file."""
    tmp = None
    try:
        f.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{f.stem}-", suffix=".tmp", dir=f.parent)
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **calib.__dict__)
        os.replace(tmp, f)
    except OSError:  # a cache that cannot be written only costs time
        if tmp:
            Path(tmp).unlink(missing_ok=True)


def load_model(checkpoint: str | Path | None = None,
               memory: tuple[int, str] = (HOST_MEMORY_BYTES, "generate allows on the host")) -> tuple[IntLlama, Tokenizer]:
    """The integer model (calibrated on the float model's own samples, cached) and its tokenizer;
    ``memory`` (bytes, who holds them) bounds the program's data before anything is built."""
    from tinydeploy.models import default_checkpoint_path, default_tokenizer_path
    path = Path(checkpoint) if checkpoint else default_checkpoint_path()
    if not path.is_file():
        raise TinydeployError(f"checkpoint {path} not found")
    try:
        cfg, w = read_checkpoint(path)
    except (ValueError, OSError) as e:
        raise TinydeployError(f"cannot read checkpoint {path}: {e}") from None
    if not w.quantized:
        raise TinydeployError(f"{path}: generate needs a llama2.c version-2 (Q8_0) checkpoint")
    w = _for_kernels(path, w)
    check_fits(f"checkpoint {path} (seq_len {cfg.seq_len})", generate_parts(cfg, w), *memory)
    tok_path = next((p for p in (path.parent / f"tok{cfg.vocab_size}.bin", path.parent / "tokenizer.bin")
                     if p.is_file()), default_tokenizer_path())
    tok = Tokenizer.load(tok_path, cfg.vocab_size)
    return IntLlama(cfg, w, _calibration(cfg, w, path)), tok


def _for_kernels(path: Path, w: LlamaWeights) -> LlamaWeights:
    """The Q8_0 weights in the kernels' groups of 32: a group of a multiple of 32 splits exactly (its parts
    share its scale). The integer model takes every scale from the data: an all-zero tensor has none."""
    gs = w.group_size
    if gs % KERNEL_GROUP:
        raise TinydeployError(f"checkpoint {path}: Q8_0 group size {gs}; generate takes groups of {KERNEL_GROUP} "
                              f"or a multiple of {KERNEL_GROUP}")
    q = {k: QuantizedTensor(t.q, np.repeat(t.scales, gs // KERNEL_GROUP, axis=-1), KERNEL_GROUP)
         for k, t in w.quantized.items()}
    gains = {"rms_att": w.rms_att, "rms_ffn": w.rms_ffn, "rms_final": w.rms_final}
    for k, a in {**{k: t.scales for k, t in q.items()}, **gains}.items():
        zero = np.flatnonzero(~np.atleast_2d(a).any(axis=1))
        if zero.size:
            raise TinydeployError(f"checkpoint {path}: {k}{f' of layer {zero[0]}' if a.ndim == 2 else ''} is all "
                                  f"zeros; the integer model cannot scale it")
    return replace(w, quantized=q, group_size=KERNEL_GROUP)


@dataclass
class Program:
    project: CProject
    main_c: Path
    prompt: list[int]
    rows: int
    compiled: object
    vocab: int
    seconds: dict = field(default_factory=dict)


def build_program(model: IntLlama, tok: Tokenizer, prompt_ids: list[int], steps: int, temperature: float,
                  top_p: float, seed: int, out_dir: Path, rows: int = PREFILL_ROWS) -> Program:
    from .graph import build_graph
    cfg = model.cfg
    if not prompt_ids or prompt_ids[0] != BOS_ID:
        prompt_ids = [BOS_ID] + list(prompt_ids)
    if len(prompt_ids) > model.seq_len:
        raise TinydeployError(f"prompt is {len(prompt_ids)} tokens; the context holds {model.seq_len}")
    if not 1 <= steps <= model.seq_len:
        raise TinydeployError(f"--steps must be in 1..{model.seq_len}, got {steps}")
    t0 = time.perf_counter()
    comp = compile_graph(build_graph(model, rows))
    t1 = time.perf_counter()
    project = emit_c(comp, out_dir)
    pieces = [tok.piece(0, t) for t in range(cfg.vocab_size)]
    off = np.concatenate([[0], np.cumsum([len(p) for p in pieces])])
    off = off.astype(np.uint16 if off[-1] <= 0xFFFF else np.uint32)  # uint16 unless the pieces need more
    blob = np.frombuffer(b"".join(pieces) or b"\0", np.uint8)
    sp = SamplerParams.from_float(temperature, top_p)
    main_c = out_dir / "main_generate.c"
    main_c.write_text(render_from(
        HERE / "main_generate.c.j2", p=project.prefix, P=project.prefix.upper(), prompt=[int(t) for t in prompt_ids], steps=steps,
        rows=rows, vocab=cfg.vocab_size, seq=model.seq_len, greedy=int(sp.greedy), inv_temp=sp.inv_temp_q16,
        top_p=sp.top_p_q16, seed_state=XorShiftRng(seed).state, tok_off_type=f"uint{8 * off.itemsize}_t",
        tok_off=c_array_body(off),
        tok_nbytes=blob.size, tok_bytes=c_array_body(blob), exp2=c_array_body(EXP2_Q16.astype(np.uint32))))
    return Program(project, main_c, list(prompt_ids), rows, comp, cfg.vocab_size,
                   {"graph_compile": t1 - t0, "codegen": time.perf_counter() - t1})


@dataclass
class GenResult:
    tokens: list[int]
    console: str
    logit_hash: int
    prefill_seconds: float | None = None
    decode_seconds: float | None = None
    cycles: list[int] | None = None  # [0] prefill, [i] decode step i
    extra: dict = field(default_factory=dict)


def run_host(prog: Program, work: Path, dump_logits: bool = False) -> GenResult:
    from ...targets.host.runner import build
    exe = build(prog.project, prog.main_c, work / "generate", extra=["-DTD_HOST"])
    res, dump = work / "gen.bin", work / "logits.bin"
    args = [str(exe), str(res)] + ([str(dump)] if dump_logits else [])
    r = subprocess.run(args, capture_output=True, timeout=600)
    if r.returncode != 0:
        raise TinydeployError(f"host generate program failed with exit code {r.returncode}")
    data = res.read_bytes()
    n = int(np.frombuffer(data[:4], np.int32)[0])
    toks = np.frombuffer(data[4:4 + 4 * n], np.int32).tolist()
    h = int(np.frombuffer(data[4 + 4 * n:8 + 4 * n], np.uint32)[0])
    sec = np.frombuffer(data[8 + 4 * n:24 + 4 * n], np.float64)
    out = GenResult(toks, r.stdout.decode("utf-8", "replace"), h, float(sec[0]), float(sec[1]))
    if dump_logits:
        out.extra["logits"] = np.fromfile(dump, np.int32).reshape(-1, prog.vocab)
    return out
