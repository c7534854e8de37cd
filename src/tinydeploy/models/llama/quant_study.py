"""Integer design study: how close does an all-integer stories260K get to the float32 reference?

Protocol (BRIEF section 7):
- text: the float32 model samples its own stories from BOS (temperature 1, no top-p, the integer
  sampler of ``sampling``); calibration seeds (``CAL_SEEDS``) and evaluation seeds (``EVAL_SEEDS``)
  are disjoint, so calibration never sees the evaluation text;
- calibration: activation ranges of the float model on the calibration text (``intmodel.calibrate``);
- evaluation, teacher-forced: both models read the same evaluation sequences; at every position
  compare the argmax of the integer logits (int32, Q8 units) with the float argmax. Also reported:
  the agreement where the float top-2 gap is >= 0.5 (a real preference, not a near-tie), the
  perplexity of the sampled next tokens under each model and their ratio, and whether greedy
  decoding from BOS reproduces the first 20 reference tokens.
The integer model's arithmetic and formulas: ``intmodel`` and ``ops/intmath.py``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from .checkpoint import LlamaConfig, LlamaWeights
from .intmodel import Design, IntLlama, calibrate
from .reference import FloatLlama

CAL_SEEDS = tuple(range(100, 108))
EVAL_SEEDS = tuple(range(1000, 1012))
SEQ_STEPS = 255  # tokens sampled after BOS per sequence (positions 0..255)

# the designs compared, by name; the first is the chosen one
DESIGNS = {
    "chosen: Q8_0 group scales, per-vector acts, per-channel KV, int16 residual, Q15 softmax":
        Design(),
    "weights requantized per output channel": Design(weight_scales="channel"),
    "KV cache: one scale per head": Design(kv_scales="head"),
    "KV cache: one scale per tensor (per layer)": Design(kv_scales="tensor"),
    "w2 input: static per-tensor int8 scale": Design(static_acts=("w2_in",)),
    "w2 and wo inputs: static per-tensor int8 scales": Design(static_acts=("w2_in", "wo_in")),
    "softmax probabilities in Q7 (8-bit)": Design(softmax_bits=8),
    "int8 residual stream": Design(residual_bits=8),
    "diagnostic: int16 matmul inputs (not deployable as is)": Design(act_bits=16),
}


@dataclass
class Metrics:
    positions: int
    agreement: float  # top-1 agreement, all positions
    gap_positions: int  # positions with float top-2 gap >= 0.5
    gap_agreement: float
    near_tie_fraction: float  # positions with float top-2 gap < 0.25
    ppl_float: float
    ppl_int: float
    mean_abs_logit_error: float
    kl: float  # mean KL(float || int) of the next-token distributions, nats
    greedy20: bool = False
    greedy_first_difference: int = -1  # first index where greedy-from-BOS departs (-1: none)
    seconds: float = 0.0

    @property
    def ppl_ratio(self) -> float:
        return self.ppl_int / self.ppl_float


def sample_sequences(cfg: LlamaConfig, w: LlamaWeights, seeds, steps: int = SEQ_STEPS):
    """[BOS] + the float model's sampled continuation, one per seed (at most ``steps`` tokens, at
    most to the end of the model's context)."""
    steps = min(steps, cfg.seq_len - 1)
    return [[1] + FloatLlama(cfg, w, steps + 1).generate([], steps, temperature=1.0, top_p=1.0, seed=s)
            for s in seeds]


def float_logits(float_model: FloatLlama, sequences) -> np.ndarray:
    """Float logits at positions 0..n-2 of every sequence (each predicts the next token)."""
    return np.concatenate([float_model.forward_many(s, 0)[:-1] for s in sequences]).astype(np.float64)


def _log_softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def teacher_forced(int_model: IntLlama, lf: np.ndarray, sequences) -> Metrics:
    """Compare the integer model with the float logits ``lf`` (from ``float_logits``)."""
    li = np.concatenate([int_model.forward_many(s, 0)[:-1] for s in sequences]) / 256.0
    tg = np.concatenate([np.asarray(s[1:]) for s in sequences])
    pf, pi = _log_softmax(lf), _log_softmax(li)
    nll = lambda lp: -lp[np.arange(len(tg)), tg].mean()  # noqa: E731
    agree = li.argmax(1) == lf.argmax(1)
    top2 = np.sort(lf, axis=1)[:, -2:]
    gap = top2[:, 1] - top2[:, 0]
    big = gap >= 0.5
    return Metrics(len(tg), float(agree.mean()), int(big.sum()), float(agree[big].mean()),
                   float((gap < 0.25).mean()), float(np.exp(nll(pf))), float(np.exp(nll(pi))),
                   float(np.abs(li - lf).mean()), float((np.exp(pf) * (pf - pi)).sum(1).mean()))


def greedy_check(int_model: IntLlama, reference: list[int], steps: int = 64) -> tuple[bool, int]:
    """(first 20 greedy tokens from BOS equal the reference's, first differing index or -1)."""
    out = int_model.generate([], steps=steps, temperature=0.0)
    diff = next((i for i, (a, b) in enumerate(zip(out, reference)) if a != b), -1)
    if diff < 0 and len(out) < min(steps, len(reference)):
        diff = len(out)
    return out[:20] == reference[:20], diff


def run_study(cfg: LlamaConfig, w: LlamaWeights, reference: list[int], designs=None,
              cal_seeds=CAL_SEEDS, eval_seeds=EVAL_SEEDS, steps: int = SEQ_STEPS):
    """Calibrate once, evaluate every design; returns (calibration, {name: Metrics}, text stats)."""
    designs = DESIGNS if designs is None else designs
    assert not set(cal_seeds) & set(eval_seeds), "calibration and evaluation text must differ"
    cal_seqs = sample_sequences(cfg, w, cal_seeds, steps)
    eval_seqs = sample_sequences(cfg, w, eval_seeds, steps)
    calib = calibrate(FloatLlama(cfg, w), cal_seqs)
    lf = float_logits(FloatLlama(cfg, w), eval_seqs)
    results = {}
    for name, design in designs.items():
        t0 = time.perf_counter()
        im = IntLlama(cfg, w, calib, design)
        m = teacher_forced(im, lf, eval_seqs)
        m.greedy20, m.greedy_first_difference = greedy_check(im, reference)
        m.seconds = time.perf_counter() - t0
        results[name] = m
    stats = {"calibration_tokens": sum(len(s) for s in cal_seqs),
             "evaluation_sequences": len(eval_seqs)}
    return calib, results, stats
