#!/usr/bin/env python3
"""Build the test model set: float, QDQ and QOperator int8/uint8 ONNX files plus inputs.

    python examples/make_models.py models/                # cnn, mlp, transformer_block
    python examples/make_models.py models/ --random 5     # ... plus random_0 .. random_4
    python examples/make_models.py models/ --only cnn --configs qdq.u8i8.pc
    python examples/make_models.py --op-table             # markdown table, no files

For every model NAME it writes into OUT_DIR:
    NAME.float.onnx                   the float model
    NAME.inputs.npz                   one input feed (keys = graph input names)
    NAME.<fmt>.<act><wt>.<pt|pc>.onnx the quantized model, e.g. cnn.qdq.u8i8.pc.onnx
    NAME.<config>.expected.npz        its exact reference outputs for NAME.inputs.npz (tinydeploy.testing.reference:
                                      QDQ semantics in float64, the same on every CPU)
    NAME.<config>.txt                 its node listing (dtypes, shapes, scales, zero points)
Then e.g.: tinydeploy run OUT/cnn.qdq.u8i8.pc.onnx --inputs OUT/cnn.inputs.npz --outputs o.npz
Needs onnxruntime (pip install -e '.[test]').
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
import onnx

try:
    import tinydeploy.testing as T
except ImportError:  # running from a checkout without an install
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))
    import tinydeploy.testing as T
from tinydeploy.testing import patterns


def build_set(out: Path, names: list[str], n_random: int, configs, seed: int, n_calib: int) -> None:
    out.mkdir(parents=True, exist_ok=True)
    models = {n: T.BUILDERS[n](seed=seed) for n in names}
    models.update({f"random_{i}": T.random_model(i) for i in range(n_random)})
    for name, model in models.items():
        onnx.save(model, out / f"{name}.float.onnx")
        # Calibration feeds and the test feed use different seeds so tests see
        # values the calibration did not (saturation happens, as it does in use).
        calib = T.random_inputs(model, seed=seed, n=n_calib)
        feeds = T.random_inputs(model, seed=seed + 1000)[0]
        np.savez(out / f"{name}.inputs.npz", **feeds)
        for cfg in configs:
            fmt, act, wt, pc = cfg
            tag = T.config_name(*cfg)
            q = T.quantize(model, calib, fmt=fmt, activation=act, weight=wt, per_channel=pc)
            onnx.save(q, out / f"{name}.{tag}.onnx")
            np.savez(out / f"{name}.{tag}.expected.npz", **T.reference(q, feeds))
            (out / f"{name}.{tag}.txt").write_text(patterns.listing(q, feeds) + "\n")
        print(f"{name}: float + {len(configs)} quantized variants", file=sys.stderr)


def op_table(activation: str = "uint8", weight: str = "int8") -> str:
    """Markdown table: op -> QDQ pattern -> QOperator nodes, from single_op models
    (input -> producer Conv1x1 or MatMul -> op). The whole chain is shown: a
    removed Relu/Clip only shows as the producer's output range."""
    rows = ["| op | QDQ chain (per-channel) | QOperator chain |", "| --- | --- | --- |"]
    for op in T.SUPPORTED_OPS:
        m = T.single_op(op)
        feeds = T.random_inputs(m)[0]
        qdq = T.quantize(m, fmt="qdq", activation=activation, weight=weight, per_channel=True)
        qop = T.quantize(m, fmt="qoperator", activation=activation, weight=weight, per_channel=True)
        pat = patterns.qdq_patterns(qdq, feeds)
        qops = [n.op_type + ("[ms]" if n.domain else "") for n in qop.graph.node]
        rows.append(f"| {op} | `{'; '.join(pat)}` | {' → '.join(qops)} |")
    return "\n".join(rows)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out_dir", nargs="?", type=Path)
    ap.add_argument("--only", action="append", choices=sorted(T.BUILDERS), help="builders to emit (default all)")
    ap.add_argument("--random", type=int, default=0, metavar="N", help="also emit random_model(0..N-1)")
    ap.add_argument("--configs", action="append", metavar="TAG",
                    help="quantized variants, e.g. qdq.u8i8.pc (default: all 12)")  # fmt: skip
    ap.add_argument("--seed", type=int, default=0, help="weights and calibration seed")
    ap.add_argument("--calib", type=int, default=8, help="number of calibration feeds")
    ap.add_argument("--op-table", action="store_true", help="print the per-op pattern table and exit")
    args = ap.parse_args(argv)
    if args.op_table:
        for act, wt in (("uint8", "int8"), ("int8", "int8")):
            print(f"\n### activations {act}, weights {wt}, per-channel\n\n{op_table(act, wt)}")
        return 0
    if args.out_dir is None:
        ap.error("OUT_DIR is required unless --op-table is given")
    by_tag = {T.config_name(*c): c for c in T.QUANT_CONFIGS}
    unknown = [t for t in args.configs or [] if t not in by_tag]
    if unknown:
        ap.error(f"unknown config {unknown[0]!r}; choose from {', '.join(by_tag)}")
    configs = [by_tag[t] for t in args.configs] if args.configs else T.QUANT_CONFIGS
    build_set(args.out_dir, args.only or list(T.BUILDERS), args.random, configs, args.seed, args.calib)
    return 0


if __name__ == "__main__":
    sys.exit(main())
