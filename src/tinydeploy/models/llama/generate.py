"""``tinydeploy generate``: the integer llama compiled to C (graph -> compile_graph -> codegen) plus
a generated main running the whole loop on the target; driver.generate runs it (targets/base.py) and
`generate_fields` turns its results into REPORT.json's generate fields."""
from __future__ import annotations

import hashlib
import os
import tempfile
import time
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

import numpy as np

from ...cache import cache_dir
from ...codegen.ctext import c_array_body
from ...codegen.network import CProgram, render_from
from ...compiler import compile_graph, emit_c
from ...errors import TinydeployError
from ...ops.linear import GROUP
from .budget import HOST_MEMORY_BYTES, check_fits, generate_parts
from .checkpoint import LlamaWeights, QuantizedTensor, read_checkpoint
from .intmodel import Calibration, IntLlama, calibrate
from .qdq_decoder import QdqDecoder
from .reference import FloatLlama
from .sampling import EXP2_Q16, SamplerParams, XorShiftRng
from .tokenizer import BOS_ID, Tokenizer

HERE = Path(__file__).resolve().parent
PREFILL_ROWS = (64, 32, 16, 8, 4, 1)  # prefill chunks tried, largest first, until the program fits
KERNEL_GROUP = GROUP  # the Q8_0 group of the compiled kernels (ops/linear.py)


def _calibration(cfg, w, path: Path) -> Calibration:
    """Activation ranges of the float model on its own samples, cached in cache_dir() per model (its
    config and float weights: a llama2.c checkpoint and its ONNX export share one); a cache file that
    does not load or does not fit the model is rebuilt."""
    arrays = (getattr(w, f.name) for f in fields(LlamaWeights) if isinstance(getattr(w, f.name), np.ndarray))
    digest = hashlib.sha256(repr(cfg).encode() + b"".join(np.ascontiguousarray(a, np.float32).tobytes()
                                                          for a in arrays)).hexdigest()[:16]
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
               memory: tuple[int, str] | None = None,
               tokenizer: str | Path | None = None, context: int | None = None) -> tuple[IntLlama, Tokenizer]:
    """The integer model (calibrated on the float model's own samples, cached) and its tokenizer
    (``tokenizer``, else tok<vocab>.bin or tokenizer.bin beside the checkpoint, else the bundled one);
    ``memory`` (bytes, who holds them; default: generate's host limit) bounds the program's data before
    anything is built; ``context``: the KV cache's positions (default: the checkpoint's seq_len, an ONNX
    decoder's stated context). A QDQ decoder comes back as it is (qdq_decoder.QdqDecoder), not calibrated."""
    from tinydeploy.models import default_checkpoint_path
    path = Path(checkpoint) if checkpoint else default_checkpoint_path()
    if not path.is_file():
        raise TinydeployError(f"checkpoint {path} not found")
    memory = memory or (HOST_MEMORY_BYTES, "generate allows on the host")
    if path.suffix.lower() == ".onnx":   # a decoder with a KV cache (onnx_decoder.py), in Q8_0 groups
        from .onnx_decoder import quantized, read_decoder, read_interface
        model, L, kvh, hs = read_interface(path, memory)
        if quantized(model, path):   # QDQ: compiled as it is, its own scales (qdq_decoder.py)
            from .qdq_decoder import read_qdq_decoder
            dec = read_qdq_decoder(path, model, L, kvh, hs, context)
            return dec, _tokenizer(path, tokenizer, dec.vocab_size)
        cfg, w = read_decoder(path, context, memory)
    else:
        try:
            cfg, w = read_checkpoint(path)
        except (ValueError, OSError) as e:
            raise TinydeployError(f"cannot read checkpoint {path}: {e}") from None
        cfg = replace(cfg, seq_len=context or cfg.seq_len)
    if not w.quantized:
        raise TinydeployError(f"{path}: generate needs a llama2.c version-2 (Q8_0) checkpoint")
    w = _for_kernels(path, w)
    positions = f"--context {context}" if context else f"seq_len {cfg.seq_len}"   # the user's number, if theirs
    check_fits(f"checkpoint {path} ({positions})", generate_parts(cfg, w), *memory)
    return IntLlama(cfg, w, _calibration(cfg, w, path)), _tokenizer(path, tokenizer, cfg.vocab_size)


def _tokenizer(path: Path, tokenizer, vocab: int) -> Tokenizer:
    """``tokenizer``, else tok<vocab>.bin or tokenizer.bin beside the model, else the bundled one."""
    from tinydeploy.models import default_tokenizer_path
    tok_path = Path(tokenizer) if tokenizer else next(
        (p for p in (path.parent / f"tok{vocab}.bin", path.parent / "tokenizer.bin") if p.is_file()),
        default_tokenizer_path())
    if not tok_path.is_file():
        raise TinydeployError(f"tokenizer {tok_path} not found")
    return Tokenizer.load(tok_path, vocab)


def prefill_rows(model) -> tuple[int, ...]:
    """Prefill chunks to try, largest first: a QDQ decoder compiles one static step of 1 token."""
    return (1,) if isinstance(model, QdqDecoder) else PREFILL_ROWS


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
class Program(CProgram):
    prompt: list[int] = field(default_factory=list)
    rows: int = 0
    compiled: object = None
    vocab: int = 0
    data: dict[str, int] = field(default_factory=dict)   # the main's own static data, for the budget check
    seconds: dict = field(default_factory=dict)


def build_program(model: IntLlama | QdqDecoder, tok: Tokenizer, prompt_ids: list[int], steps: int,
                  temperature: float, top_p: float, seed: int, out_dir: Path, rows: int = PREFILL_ROWS[0],
                  kernels=None, emit=emit_c) -> Program:
    """`kernels`, `emit`: the target's kernel description and C emitter (Target.emit). A QDQ decoder
    runs one token per step (rows is 1)."""
    from .graph import build_graph
    qdq = isinstance(model, QdqDecoder)
    rows = 1 if qdq else rows
    if not prompt_ids or prompt_ids[0] != BOS_ID:
        prompt_ids = [BOS_ID] + list(prompt_ids)
    if len(prompt_ids) > model.seq_len:
        raise TinydeployError(f"prompt is {len(prompt_ids)} tokens; the context holds {model.seq_len}")
    if not 1 <= steps <= model.seq_len:
        raise TinydeployError(f"--steps must be in 1..{model.seq_len}, got {steps}")
    if qdq:   # its static step attends over every slot: no more than this run reaches (never fewer than 2)
        model = replace(model, seq_len=min(model.seq_len, max(len(prompt_ids) + steps - 1, 2)))
    t0 = time.perf_counter()
    comp = compile_graph(model.graph() if qdq else build_graph(model, rows), kernels=kernels)
    t1 = time.perf_counter()
    project = emit(comp, out_dir)
    V = model.vocab_size if qdq else model.cfg.vocab_size
    pieces = [tok.piece(0, t) for t in range(V)]
    off = np.concatenate([[0], np.cumsum([len(p) for p in pieces])])
    off = off.astype(np.uint16 if off[-1] <= 0xFFFF else np.uint32)  # uint16 unless the pieces need more
    blob = np.frombuffer(b"".join(pieces) or b"\0", np.uint8)
    sp = SamplerParams.from_float(temperature, top_p)
    # the results the target hands back (the template declares them): tokens, logits hash, cycles per
    # forward ([0]: prefill of the whole prompt, [i]: decode step i), per-layer cycles summed over decode
    results = {"td_gen_ntok": (np.int32, 1), "td_gen_tokens": (np.int32, steps + 1), "td_gen_hash": (np.uint32, 1),
               "td_gen_cycles": (np.uint32, steps + 1), "td_gen_layer_cycles": (np.uint32, len(project.layers))}
    data = {"tokenizer": off.nbytes + blob.nbytes, "prompt": 4 * len(prompt_ids),
            "sampler": EXP2_Q16.size * 4 + 6 * V + 4 * V + 8,   # exp2 table, weights + order, last logits, rng
            "results": sum(np.dtype(d).itemsize * n for d, n in results.values())}
    main_c = out_dir / "main_generate.c"
    main_c.write_text(render_from(
        HERE / "main_generate.c.j2", p=project.prefix, P=project.prefix.upper(), prompt=[int(t) for t in prompt_ids], steps=steps,
        rows=rows, vocab=V, seq=model.seq_len, greedy=int(sp.greedy), inv_temp=sp.inv_temp_q16,
        top_p=sp.top_p_q16, seed_state=XorShiftRng(seed).state, tok_off_type=f"uint{8 * off.itemsize}_t",
        tok_off=c_array_body(off),
        tok_nbytes=blob.size, tok_bytes=c_array_body(blob), exp2=c_array_body(EXP2_Q16.astype(np.uint32)),
        results=list(results), qdq=qdq))
    return Program(project, main_c, results, list(prompt_ids), rows, comp, V, data,
                   {"graph_compile": t1 - t0, "codegen": time.perf_counter() - t1})


def tokens_of(values: dict) -> list[int]:
    return values["td_gen_tokens"][:int(values["td_gen_ntok"][0])].tolist()


def generate_fields(prog: Program, values: dict, tok: Tokenizer, counter_hz: float | None, cycles: bool) -> dict:
    """REPORT.json's generate fields (BRIEF section 3) from the program's results. `counter_hz`: ticks per
    second of the target's td_cycles(); `cycles`: whether those ticks are cycles (simulated targets)."""
    toks, n = tokens_of(values), int(values["td_gen_ntok"][0])
    ticks = values["td_gen_cycles"][:max(n, 1)].astype(np.int64)
    decode = ticks[1:]
    mean = float(decode.mean()) if decode.size else None
    rep = {"tokens": n, "text": tok.decode(prog.prompt[1:] + toks), "token_ids": toks,
           "prompt_tokens": len(prog.prompt), "prefill_rows": prog.rows, "logit_hash": f"{int(values['td_gen_hash'][0]):08x}",
           "layers": _layers(prog, values["td_gen_layer_cycles"].tolist() if cycles else None, max(decode.size, 1)),
           "tokens_per_second": round(counter_hz / mean, 1) if counter_hz and mean else None,
           "prefill_seconds": float(ticks[0]) / counter_hz if counter_hz else None,
           "decode_seconds": float(decode.sum()) / counter_hz if counter_hz else None,
           "cycles_per_token": None}
    rep["macs"] = sum(l["macs"] for l in rep["layers"])
    if cycles:
        p = len(prog.prompt)
        rep["cycles_per_token"] = {"prefill": round(float(ticks[0]) / p, 1), "decode": mean,
                                   "decode_at": {str(p + i - 1): int(c) for i, c in enumerate(decode, start=1)}}
    return rep


def _layers(prog: Program, cyc: list[int] | None, steps: int) -> list[dict]:
    """Per layer: MACs of one decode step ("macs"; attention: 0, run-time dependent) and, where cycles are
    counted, cycles summed over all decode steps ("cycles") and their mean per step."""
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
