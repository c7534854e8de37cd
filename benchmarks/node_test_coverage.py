"""ONNX backend node-test coverage of tinydeploy: claimed / total per operator, exclusion categories.

    python benchmarks/node_test_coverage.py [--write-exclusions] [--no-c]

Runs every node test case through tests/node_harness.py (golden model for all, then host C for the
golden passes, batched into one executable) and writes benchmarks/results/node_tests.md. A case is
*claimed* when it is not in tests/node_tests_exclusions.txt; with --write-exclusions the file is
regenerated from this run, so that exactly the passing cases are claimed (each exclusion with its
reason, compressed to glob patterns where a prefix covers only excluded cases).
"""
from __future__ import annotations

import argparse
import collections
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import node_harness as h  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "node_tests.md"

# which engineer's module an op belongs to, for the per-family table
FAMILIES = {
    "activation": {"Relu", "LeakyRelu", "PRelu", "Clip", "Sigmoid", "HardSigmoid", "HardSwish", "Tanh", "Erf", "Gelu",
                   "Exp", "Log", "Abs", "Neg", "Floor", "Ceil", "Round", "Reciprocal", "Softplus", "Softsign", "Elu",
                   "Selu", "Celu", "Mish", "Sin", "Cos", "Tan", "Sinh", "Cosh", "Sign", "Shrink", "ThresholdedRelu",
                   "Swish", "IsNaN", "IsInf"},
    "logic": {"Not", "And", "Or", "Xor", "Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual", "BitShift",
              "BitwiseAnd", "BitwiseOr", "BitwiseXor", "BitwiseNot"},
    "data movement": {"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity", "Transpose", "Concat", "Split",
                      "Slice", "Gather", "Pad", "Expand", "Tile", "Where", "Cast", "CastLike", "DepthToSpace",
                      "SpaceToDepth", "Shape", "Size", "ConstantOfShape", "Range", "Dropout", "Constant",
                      "GatherElements", "GatherND", "ScatterElements", "Scatter", "ScatterND", "OneHot", "TopK",
                      "Trilu", "EyeLike", "Compress", "CenterCropPad", "BitCast", "Resize", "Upsample", "ReverseSequence",
                      "ArgMax", "ArgMin", "Hardmax"},
    "quantization": {"QuantizeLinear", "DequantizeLinear", "QLinearMatMul", "QLinearConv", "MatMulInteger",
                     "ConvInteger", "DynamicQuantizeLinear"},
}


def family(op: str) -> str:
    for f, ops in FAMILIES.items():
        if op in ops:
            return f
    return "compute and other"


def _schemas() -> list[str]:
    import onnx.defs
    return sorted({s.name for s in onnx.defs.get_all_schemas_with_history()}, key=len, reverse=True)


def op_of(name: str, model, schemas) -> str:
    """The operator a case tests: a single-op model's op, else the name's longest matching op."""
    nodes = [n.op_type for n in model.graph.node if n.op_type != "Constant"]
    if len(set(nodes)) == 1:
        return nodes[0]
    key = name[len("test_"):].replace("_", "").lower()
    for op in schemas:
        if key.startswith(op.lower()):
            return op
    return nodes[0] if nodes else "Constant"


def category(reason: str) -> str:
    m = re.search(r"operator (?:[\w.]+::)?(\w+) is not supported", reason)
    if m:
        return f"op not supported: {m.group(1)}"
    m = re.search(r"operator (\w+) has no C kernel", reason)
    if m:
        return f"op has no C kernel for run-time inputs: {m.group(1)}"
    return reason


def run(c: bool = True):
    names = h.case_names()
    t0 = time.perf_counter()
    results, verdict, secs = h.run_all(names, c=c)
    status = {}
    for r in results:
        if not r.ok:
            status[r.name] = category(r.reason if r.stage in ("static", "compile") else f"{r.stage} mismatch: {r.reason}")
        elif verdict.get(r.name):
            status[r.name] = category(verdict[r.name])
        else:
            status[r.name] = None
    return names, status, secs, time.perf_counter() - t0


def _glob_groups(names, failing: dict[str, str]) -> list[tuple[str, str]]:
    """(pattern, reason): the shortest `prefix*` (cut at an underscore) whose every case fails for
    the same reason; a case no such prefix covers is listed by name."""
    lines, done = [], set()
    for n in sorted(failing):
        if n in done:
            continue
        why, parts, chosen = failing[n], n.split("_"), n
        for k in range(2, len(parts)):
            pre = "_".join(parts[:k])
            cover = [m for m in names if m.startswith(pre)]
            if all(failing.get(m) == why for m in cover):
                if len(cover) > 1:
                    chosen = pre + "*"
                    done.update(cover)
                break
        done.add(n)
        lines.append((chosen, why))
    return sorted(lines, key=lambda x: (x[1], x[0]))


def write_exclusions(names, status) -> None:
    failing = {n: s for n, s in status.items() if s}
    rules = _glob_groups(names, failing)
    for pat, why in rules:   # a glob must never hide a passing case
        import fnmatch
        assert all(status[m] for m in names if fnmatch.fnmatchcase(m, pat)), pat
    cats = collections.Counter(_broad(s) for s in failing.values())
    head = ["# ONNX backend node tests that tinydeploy does not claim, with the reason (pattern  # reason).",
            "# Generated by benchmarks/node_test_coverage.py --write-exclusions; every other case must pass",
            "# (tests/test_onnx_node_tests.py). Categories: " + "; ".join(f"{k} {v}" for k, v in cats.most_common()),
            ""]
    width = max(len(p) for p, _ in rules) + 2 if rules else 0
    h.EXCLUSIONS.write_text("\n".join(head + [f"{p.ljust(width)}# {w}" for p, w in rules]) + "\n")


def _broad(reason: str) -> str:
    """The category of an exclusion reason, for the summaries."""
    if reason.startswith("training or ML domain op"):
        return "training or ML domain op"
    for prefix, cat in (("op not supported", "op not supported"),
                        ("op has no C kernel", "run-time input where a constant is required"),
                        ("C emission:", "no C kernel for this type or form"),
                        ("host C build", "host C build error"), ("host C:", "host C output mismatch"),
                        ("golden mismatch", "golden output mismatch")):
        if reason.startswith(prefix):
            return cat
    if "training mode" in reason:
        return "training mode"
    if reason.startswith("node "):
        return "unsupported attribute, mode or rank"
    return reason


def report(names, status, secs, total_s) -> str:
    import onnx
    schemas = _schemas()
    rules = h.read_exclusions()
    per_op = collections.defaultdict(lambda: [0, 0])
    per_fam = collections.defaultdict(lambda: [0, 0])
    passed = 0
    for n in names:
        op = op_of(n, h.load_model(n), schemas)
        claimed = h.excluded(n, rules) is None
        ok = status[n] is None
        per_op[op][1] += 1
        per_fam[family(op)][1] += 1
        if claimed and ok:
            per_op[op][0] += 1
            per_fam[family(op)][0] += 1
            passed += 1
    claimed = sum(1 for n in names if h.excluded(n, rules) is None)
    excl = collections.Counter(_broad(h.excluded(n, rules)) for n in names if h.excluded(n, rules))
    out = [f"# ONNX backend node tests (onnx {onnx.__version__})", "",
           f"Claimed {claimed} of {len(names)} cases; {passed} of the claimed pass (golden model and host C, gcc).",
           f"Run time: {total_s:.0f} s (golden {secs.get('golden_s', 0):.0f} s, C build and run "
           f"{secs.get('c_s', 0):.0f} s).", "",
           "Tolerances (tests/node_harness.py): integer and bool outputs exact; float rtol 1e-5 atol 1e-6, "
           "rtol 1e-4 atol 1e-5 for graphs with transcendental functions.", "",
           "Parameter folding (a static compiler needs them constant): a graph input read at a parameter "
           "position (shapes, starts/ends/axes/steps, pads, repeats, k, split sizes, depth, Clip bounds, "
           "Resize roi/scales/sizes, Q/DQ scales and zero points, weights of Conv/PRelu/normalisations; "
           "table PARAMS in tests/node_harness.py, also applied to *_expanded function bodies) becomes an "
           "initializer holding the test's value; data inputs (Gather/Scatter indices, Where's condition, "
           "MatMul operands, …) stay run-time inputs.", "",
           "## Per family", "", "| family | claimed | total |", "| --- | ---: | ---: |"]
    for f, (a, b) in sorted(per_fam.items()):
        out.append(f"| {f} | {a} | {b} |")
    out += ["", "## Exclusions by category", "", "| reason | cases |", "| --- | ---: |"]
    for k, v in excl.most_common():
        out.append(f"| {k} | {v} |")
    out += ["", "## Per operator", "", "| op | family | claimed | total |", "| --- | --- | ---: | ---: |"]
    for op, (a, b) in sorted(per_op.items()):
        out.append(f"| {op} | {family(op)} | {a} | {b} |")
    return "\n".join(out) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--write-exclusions", action="store_true")
    ap.add_argument("--no-c", action="store_true")
    a = ap.parse_args()
    names, status, secs, total_s = run(c=not a.no_c)
    if a.write_exclusions:
        write_exclusions(names, status)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(report(names, status, secs, total_s))
    print(RESULTS.read_text())


if __name__ == "__main__":
    main()
