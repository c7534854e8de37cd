"""The operator coverage table, read from the op registry (what is registered is what compiles).

    python benchmarks/op_coverage.py      # writes docs/op_coverage.md
"""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from tinydeploy.frontend.dialect import DEEPLOY_OPS
from tinydeploy.ops import registry
from tinydeploy.passes.lut import ELEMENTWISE

OUT = Path(__file__).resolve().parent.parent / "docs" / "op_coverage.md"
# integer kernels are named Q* (and the edge conversions, the KV-cache state's ShiftIn, passes/integerize.py's
# MatMulW); everything else is an ONNX operator
INTERNAL = lambda n: n.startswith("Q") or n in ("U8ToS8", "S8ToU8", "ShiftIn", "MatMulW")  # noqa: E731


def int8_path(name: str, op) -> str:
    if op.lower is not None:
        return "integer kernel (QDQ lowering)"
    if name in ELEMENTWISE:
        return "256-entry table when fed by one int8 tensor"
    if op.alias:
        return "no code (alias)"
    return "float between Dequantize/Quantize"


def render() -> str:
    """The text of docs/op_coverage.md (tests/test_generated_docs.py checks the file is current)."""
    registry.load_all()
    families = defaultdict(list)
    for name, op in registry.OPS.items():
        families[op.golden.__module__.rsplit(".", 1)[-1]].append((name, op))
    dialect = sorted(n for n in registry.OPS if n in DEEPLOY_OPS)
    onnx_ops = sorted(n for n in registry.OPS if not INTERNAL(n) and n not in dialect
                      and n not in ("QuantizeLinear", "DequantizeLinear"))
    lines = ["# Operator coverage", "",
             f"{len(onnx_ops)} ONNX operators compile to C (float32, and integer types where ONNX defines them);",
             "in quantized graphs each takes the int8 path shown. Internal integer kernels are listed per family.",
             "QOperator ops (QLinearConv, QLinearMatMul, QGemm, QLinearAdd/Mul, QLinearLeakyRelu, QLinearSigmoid,",
             "QLinearSoftmax, QLinearAveragePool, QLinearGlobalAveragePool, QLinearConcat) are rewritten to QDQ",
             "form by the frontend and then follow the same paths. Regenerate: `python benchmarks/op_coverage.py`.",
             "", "| family | ONNX operator | in quantized graphs |", "| --- | --- | --- |"]
    for fam in sorted(families):
        for name, op in sorted(families[fam]):
            if not INTERNAL(name) and name not in dialect:
                lines.append(f"| {fam} | {name} | {int8_path(name, op)} |")
    lines += ["", "| family | internal integer kernels |", "| --- | --- |"]
    for fam in sorted(families):
        internal = sorted(n for n, _ in families[fam] if INTERNAL(n))
        if internal:
            lines.append(f"| {fam} | {', '.join(internal)} |")
    lines += ["", f"Deeploy's integer dialect (docs/deeploy_dialect.md), {len(dialect)} operators: {', '.join(dialect)}."]
    return "\n".join(lines) + "\n"


def main() -> None:
    OUT.write_text(render())
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
