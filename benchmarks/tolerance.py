#!/usr/bin/env python3
"""Measure the integer kernels' error against the exact reference (tinydeploy.testing.reference: QDQ
semantics in float64, the same on every CPU): per op kind over many random quantization parameters,
per model of the fixed set, and per output depth over random models. Prints the markdown tables of
docs/tolerance.md.

    python benchmarks/tolerance.py [--random 200]      (~2 min)

Errors are in output LSB: golden − reference on the quantized output (golden == host C bit for
bit is what the test suite checks, so the golden model stands for every target).
"""
from __future__ import annotations

import argparse
import collections
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from helpers import compile_model  # noqa: E402
from ops_testlib import Cases  # noqa: E402

from tinydeploy.golden import run_graph  # noqa: E402
from tinydeploy.testing import reference  # noqa: E402


def _ops(b: Cases, kind: str, r):
    """One random instance of an op kind (random scales / zero points / shapes)."""
    s = lambda: float(np.exp(r.uniform(np.log(0.005), np.log(0.3))))  # noqa: E731
    z = lambda: int(r.integers(-40, 40))  # noqa: E731
    w8 = lambda shape: r.integers(-127, 128, shape).astype(np.int8)  # noqa: E731
    if kind == "MatMul (weights)":
        k = int(r.integers(4, 64))
        y = b.op("MatMul", b.act((4, k), s(), z()), b.weight(w8((k, 16)), r.uniform(0.002, 0.02, 16).astype(np.float32),
                                                             np.zeros(16, np.int8), axis=1))
        return y, 0.02 * np.sqrt(k) * 2
    if kind == "MatMul (act x act)":
        return b.op("MatMul", b.act((2, 8, 16), s(), z()), b.act((2, 16, 8), s(), z())), None
    if kind == "Conv":
        y = b.op("Conv", b.act((1, 4, 8, 8), s(), z()), b.weight(w8((8, 4, 3, 3)), 0.01), pads=[1, 1, 1, 1])
        return y, None
    if kind in ("Add", "Sub", "Max"):
        return b.op(kind, b.act((8, 32), s(), z()), b.act((8, 32), s(), z())), None
    if kind == "Mul":
        return b.op(kind, b.act((8, 32), s(), z()), b.act((8, 32), s(), z())), None
    if kind in ("MaxPool", "AveragePool"):
        return b.op(kind, b.act((1, 4, 9, 9), s(), z()), kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]), None
    if kind == "GlobalAveragePool":
        return b.op(kind, b.act((1, 16, 7, 7), s(), z())), None
    if kind == "ReduceMean":
        return b.op(kind, b.act((4, 8, 12), s(), z()), b._const(np.array([-1], np.int64), "axes")), None
    if kind == "Softmax":
        return b.op(kind, b.act((8, int(r.integers(4, 100))), float(r.uniform(0.02, 0.5)), z()), axis=-1), "softmax"
    if kind in ("LayerNormalization", "RMSNormalization"):
        d = int(r.integers(8, 128))
        ins = [b.act((8, d), s(), z()), b.fconst(1 + 0.3 * r.standard_normal(d))]
        if kind == "LayerNormalization":
            ins.append(b.fconst(0.2 * r.standard_normal(d)))
        return b.op(kind, *ins, axis=-1, epsilon=1e-5), "norm"
    if kind == "Sigmoid (table)":
        return b.op("Sigmoid", b.act((8, 32), s() * 10, z())), "sigmoid"
    raise KeyError(kind)


KINDS = ["MatMul (weights)", "MatMul (act x act)", "Conv", "Add", "Sub", "Mul", "Max", "MaxPool", "AveragePool",
         "GlobalAveragePool", "ReduceMean", "Softmax", "LayerNormalization", "RMSNormalization", "Sigmoid (table)"]


def op_table(cases_per_kind: int = 40) -> str:
    r = np.random.default_rng(0)
    rows = ["| op kind | outputs | max abs LSB | mean signed LSB | share off by 1 |", "| --- | --- | --- | --- | --- |"]
    for kind in KINDS:
        b = Cases(seed=1, opset=23)
        outs = []
        for _ in range(cases_per_kind):
            y, hint = _ops(b, kind, r)
            if hint == "softmax":
                outs.append(b.q_out(y, 1 / 256, -128))
            elif hint in ("norm", "sigmoid"):
                outs.append(b.q_out(y, 1 / 40 if hint == "norm" else 1 / 255, 0 if hint == "norm" else -128))
            else:   # an output scale that keeps most values in range
                outs.append(b.q_out(y, float(np.exp(r.uniform(np.log(0.02), np.log(0.3)))), int(r.integers(-20, 20))))
        model = b.model()
        c = compile_model(model)
        gold, ref = run_graph(c.graph, b.feeds), reference(model, b.feeds)
        d = np.concatenate([(gold[o].astype(np.int64) - ref[o].astype(np.int64)).reshape(-1) for o in outs])
        rows.append(f"| {kind} | {d.size} | {np.abs(d).max()} | {d.mean():+.4f} | {np.mean(d != 0):.4f} |")
    return "\n".join(rows)


def model_rows(n_random: int) -> tuple[str, str]:
    import tinydeploy.testing as T
    from model_check import check_model
    fixed = ["| model | config | depth | max abs LSB | mean signed LSB |", "| --- | --- | --- | --- | --- |"]
    for name in T.BUILDERS:
        for cfg in T.QUANT_CONFIGS:
            q = T.quantize(T.BUILDERS[name](), fmt=cfg[0], activation=cfg[1], weight=cfg[2], per_channel=cfg[3])
            _, st = check_model(q, T.random_inputs(q, seed=7)[0], tol=lambda d: 99)
            for t, depth, mx, mean, n, out in st:
                if out:
                    fixed.append(f"| {name} | {T.config_name(*cfg)} | {depth} | {mx:.0f} | {mean:+.4f} |")
    by = collections.defaultdict(list)
    for seed in range(n_random):
        cfg = T.QUANT_CONFIGS[seed % 12]
        q = T.quantize(T.random_model(seed), fmt=cfg[0], activation=cfg[1], weight=cfg[2], per_channel=cfg[3])
        _, st = check_model(q, T.random_inputs(q, seed=seed + 1000)[0], tol=lambda d: 99)
        for t, depth, mx, mean, n, out in st:
            by[(depth, out)].append((mx, mean, n))
    rnd = ["| depth | outputs: n, max abs LSB, share with any error | all quantized tensors: n, max abs LSB | mean signed LSB (all) |",
           "| --- | --- | --- | --- |"]
    for depth in sorted({d for d, _ in by}):
        o, a = by.get((depth, True), []), by.get((depth, True), []) + by.get((depth, False), [])
        n = sum(x[2] for x in a)
        mean = sum(x[1] * x[2] for x in a) / max(n, 1)
        ostr = f"{len(o)}, {max(x[0] for x in o):.0f}, {np.mean([x[0] >= 1 for x in o]):.2f}" if o else "–"
        rnd.append(f"| {depth} | {ostr} | {len(a)}, {max(x[0] for x in a):.0f} | {mean:+.4f} |")
    return "\n".join(fixed), "\n".join(rnd)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--random", type=int, default=200)
    args = ap.parse_args()
    print("## Per op kind\n\n" + op_table())
    fixed, rnd = model_rows(args.random)
    print("\n## Fixed model set (graph outputs)\n\n" + fixed)
    print(f"\n## Random models (seeds 0..{args.random - 1}) by depth\n\n" + rnd)
