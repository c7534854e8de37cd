"""Host decode speed of stories260K: tinydeploy's generated C against onnxruntime running the same
decoder with its KV cache, in one run. Writes benchmarks/results/llama_host.md.
Run: python benchmarks/llama_host_speed.py [--rounds 15] [--optimum decoder_model.onnx]

Every runner decodes the same tokens at the same positions: tinydeploy's program generates STEPS
tokens greedily from BOS (prefill of BOS at position 0, then one forward per token at positions
1..STEPS-1), and each onnxruntime runner prefills BOS and then decodes those tokens at those
positions. A step is what tinydeploy's td_gen_cycles times (setting the inputs and the forward;
sampling excluded); tokens/s = steps / their total time. The configurations run interleaved, in a
rotating order, --rounds times; the table gives medians.

onnxruntime: CPU provider, ORT_ENABLE_ALL, intra_op_num_threads 1 (tinydeploy's C is one thread),
inter_op 1, sequential; the GroupQueryAttention graph once more with 2 intra-op threads.
- (a) optimum's export (tests/data/stories260K_optimum, or ``--optimum``) in ORT's plain run()
  loop, the present outputs (numpy) fed back as past;
- export-llama's decoder (the same layout) in the plain run() loop, and with IO binding (the
  present OrtValues rebound as the next past: no copy through numpy);
- (b) benchmarks/ort_gqa.py: GroupQueryAttention with in-place caches, fused residual+RMSNorm, packed
  projections, IO binding.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

import ort_gqa
from tinydeploy.models.llama import BOS_ID, load_default
from tinydeploy.models.llama.export_onnx import build_model, io_names
from tinydeploy.models.llama.generate import build_program, load_model
from tinydeploy.targets.host import HostTarget
from tinydeploy.targets.host.runner import CFLAGS, build

STEPS = 64
ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "benchmarks" / "results" / "llama_host.md"
OPTIMUM = ROOT / "tests" / "data" / "stories260K_optimum" / "model.onnx"  # the import route's fixture


def session(model, threads: int = 1) -> ort.InferenceSession:
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.intra_op_num_threads, so.inter_op_num_threads = threads, 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])


class PlainDecoder:
    """optimum's layout in the plain run() loop: numpy in, numpy out, present fed back as past."""

    def __init__(self, sess: ort.InferenceSession):
        self.sess = sess
        self.past = {i.name: np.zeros([1 if isinstance(d, str) else d for d in i.shape[:2]] + [0, i.shape[3]],
                                      np.float32) for i in sess.get_inputs()[3:]}
        self.out = None

    def set(self, token: int, pos: int) -> None:
        self.feed = {"input_ids": np.array([[token]], np.int64), "attention_mask": np.ones((1, pos + 1), np.int64),
                     "position_ids": np.array([[pos]], np.int64), **self.past}

    def run(self) -> None:
        self.out = self.sess.run(None, self.feed)
        self.past = dict(zip(self.past, self.out[1:]))

    def last_logits(self) -> np.ndarray:
        return self.out[0][0, -1]


class BoundDecoder(PlainDecoder):
    """The same layout with IO binding: ORT allocates each present; it is bound as the next past."""

    def __init__(self, sess: ort.InferenceSession):
        super().__init__(sess)
        self.io, self.outs = sess.io_binding(), [o.name for o in sess.get_outputs()]
        for name, arr in self.past.items():
            self.io.bind_ortvalue_input(name, ort.OrtValue.ortvalue_from_numpy(arr))
        self._bind_outputs()

    def _bind_outputs(self) -> None:  # fresh ones each step: a bound output keeps its shape
        self.io.clear_binding_outputs()
        for name in self.outs:
            self.io.bind_output(name, "cpu")

    def set(self, token: int, pos: int) -> None:
        self.io.bind_cpu_input("input_ids", np.array([[token]], np.int64))
        self.io.bind_cpu_input("attention_mask", np.ones((1, pos + 1), np.int64))
        self.io.bind_cpu_input("position_ids", np.array([[pos]], np.int64))

    def run(self) -> None:
        self.sess.run_with_iobinding(self.io)
        self.out = self.io.get_outputs()
        for name, value in zip(self.past, self.out[1:]):
            self.io.bind_ortvalue_input(name, value)
        self._bind_outputs()

    def last_logits(self) -> np.ndarray:
        return self.out[0].numpy()[0, -1]


def ort_decode(dec, tokens: list[int]) -> tuple[list[float], list[int]]:
    """Prefill tokens[0] at position 0, decode tokens[p] at position p: (seconds per decode step,
    the argmax after each step)."""
    dec.set(tokens[0], 0)
    dec.run()
    times, top = [], []
    for p in range(1, len(tokens)):
        t0 = time.perf_counter()
        dec.set(tokens[p], p)
        dec.run()
        times.append(time.perf_counter() - t0)
        top.append(int(np.argmax(dec.last_logits())))
    return times, top


def greedy_program(model, tok, work: Path):
    """(the host generate program of STEPS greedy tokens from BOS, built; a function running it that
    returns (seconds per decode step, tokens))."""
    prog = build_program(model, tok, [BOS_ID], STEPS, 0.0, 0.9, 0, work / "c", kernels=HostTarget.kernels,
                         emit=HostTarget().emit)
    exe = build(prog.project, prog.main_c, work / "program", extra=["-DTD_HOST"])

    def run():
        subprocess.run([str(exe), str(work / "results.bin")], capture_output=True, check=True, timeout=600)
        values = prog.parse_results((work / "results.bin").read_bytes())
        n = int(values["td_gen_ntok"][0])
        return (values["td_gen_cycles"][1:n] / 1e9).tolist(), values["td_gen_tokens"][:n].tolist()
    return prog, run


def machine() -> str:
    info = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    model = next((ln.split(":", 1)[1].strip() for ln in info.splitlines() if ln.startswith("model name")),
                 platform.processor())
    flags = next((ln.split(":", 1)[1].split() for ln in info.splitlines() if ln.startswith("flags")), [])
    isa = "/".join(f for f in ("avx2", "avx512f", "avx512_vnni", "avx_vnni") if f in flags) or "-"
    cc = subprocess.run([os.environ.get("CC", "cc"), "--version"], capture_output=True, text=True).stdout.split("\n")[0]
    return (f"{model}, {os.cpu_count()} logical CPUs ({isa}), {platform.system()} {platform.machine()}; "
            f"Python {platform.python_version()}, onnxruntime {ort.__version__}, {cc} {' '.join(CFLAGS)}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--optimum", type=Path, default=OPTIMUM,
                    help="optimum's text-generation-with-past export of stories260K (default: the test fixture)")
    args = ap.parse_args()
    if not args.optimum.is_file():
        args.optimum = None
    t_start, load0 = time.time(), os.getloadavg()
    model, tok = load_model()
    cfg, w, _ = load_default()  # the float32 weights (Q8_0 dequantized) for onnxruntime
    with tempfile.TemporaryDirectory() as td:
        work = Path(td)
        prog, tinydeploy_run = greedy_program(model, tok, work)
        _, generated = tinydeploy_run()  # the tokens every runner decodes
        tokens = [BOS_ID] + generated[:-1]
        gqa = ort_gqa.build(cfg, w, cfg.seq_len).SerializeToString()
        export = build_model(cfg, w).SerializeToString()
        runners = {}
        if args.optimum:
            runners["(a) optimum export, plain run() loop, 1 thread"] = lambda: ort_decode(
                PlainDecoder(session(str(args.optimum))), tokens)
        runners.update({
            "export-llama decoder, plain run() loop, 1 thread": lambda: ort_decode(PlainDecoder(session(export)), tokens),
            "export-llama decoder, IO binding, 1 thread": lambda: ort_decode(BoundDecoder(session(export)), tokens),
            "(b) GroupQueryAttention graph, IO binding, in-place caches, 1 thread": lambda: ort_decode(
                ort_gqa.GqaDecoder(session(gqa), cfg, cfg.seq_len), tokens),
            "(b) GroupQueryAttention graph, IO binding, in-place caches, 2 threads": lambda: ort_decode(
                ort_gqa.GqaDecoder(session(gqa, 2), cfg, cfg.seq_len), tokens),
            "tinydeploy generate --target host (int8 C, one thread)": tinydeploy_run,
        })
        names = list(runners)
        per_round = {n: [] for n in names}
        step_times = {n: [] for n in names}
        tops = {}
        for r in range(args.rounds):
            for n in names[r % len(names):] + names[:r % len(names)]:
                times, top = runners[n]()
                per_round[n].append(len(times) / sum(times))
                step_times[n] += times
                tops[n] = top
            print(f"round {r + 1}/{args.rounds}: " + ", ".join(f"{per_round[n][-1]:,.0f}" for n in names),
                  file=sys.stderr)
    med = {n: float(np.median(step_times[n])) for n in names}
    td_name = names[-1]
    load1 = os.getloadavg()
    lines = [
        "# stories260K host decode speed: tinydeploy C vs onnxruntime with a KV cache",
        "",
        f"Generated by `python benchmarks/llama_host_speed.py --rounds {args.rounds}"
        f"{' --optimum …/' + args.optimum.name if args.optimum not in (None, OPTIMUM) else ''}` on "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(t_start))} in {time.time() - t_start:.0f} s.",
        f"Machine: {machine()}. Shared with other jobs: load average {load0[0]:.1f} at the start, "
        f"{load1[0]:.1f} at the end.",
        "",
        f"What is measured: greedy decoding from BOS, {len(tokens) - 1} decode steps at positions "
        f"1..{len(tokens) - 1}, the same tokens for every runner (those tinydeploy's program generates). A "
        "step is setting the inputs plus the forward (sampling excluded), as tinydeploy's td_gen_cycles "
        "times it. The configurations run interleaved in a rotating order, "
        f"{args.rounds} rounds. tokens/s = 1 / the median step over all rounds (robust to the other jobs "
        "on the machine); the ratio is taken on it. Also the median over rounds of each round's "
        "tokens/s (steps / their total time, hiccups included).",
        "onnxruntime: CPU provider, ORT_ENABLE_ALL, intra_op_num_threads as stated, inter_op 1, "
        "sequential; float32 weights (the Q8_0 checkpoint dequantized). tinydeploy: int8 weights and KV "
        "cache, integer kernels (on x86-64 QLinearDyn and QAttentionKV in SSE2, QLinearDyn's whole-group rows in "
        "AVX2 where the CPU has it: runtime/kernels/td_x86.h, linear_dyn.h, attention.h), one thread, gcc -O2.",
        "",
        "| runner | µs/step (median) | tokens/s | tinydeploy / runner | tokens/s, median round | top-1 = next token |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for n in names:
        agree = "-" if n == td_name else f"{sum(a == b for a, b in zip(tops[n], generated[1:]))}/{len(tops[n])}"
        lines.append(f"| {n} | {med[n] * 1e6:,.1f} | {1 / med[n]:,.0f} | {med[n] / med[td_name]:.2f}x | "
                     f"{np.median(per_round[n]):,.0f} | {agree} |")
    if args.optimum is None:
        lines += ["", f"(a) is missing: no optimum export at {OPTIMUM.relative_to(ROOT)} (see --optimum)."]
    else:
        digest = hashlib.sha256(args.optimum.read_bytes()).hexdigest()
        lines += ["", f"(a) is `{args.optimum.name}` with sha256 {digest[:16]}… (the fixture "
                  f"{OPTIMUM.relative_to(ROOT)} is ec63f8abf194f4d0…)."]
    lines += [
        "",
        "The per-round column is lower than 1 / the median step for every runner because other jobs "
        "preempt it; the longer a runner's 63 steps take, the more often: the median step is the "
        "figure to compare.",
        "",
        "top-1 = next token: steps whose argmax is the token tinydeploy's int8 program generated next "
        "(onnxruntime runs the float model, so a few differ where the float top-2 margin is small).",
    ]
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
