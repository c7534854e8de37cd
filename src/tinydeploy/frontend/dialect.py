"""Deeploy's integer dialect (docs/deeploy_dialect.md): the custom ops of pulp-platform/Deeploy's
graphs, admitted in the domains Deeploy's files put them in. Its domains admit only these ops; any
other custom op stays an error naming the node.

ONNX's checker rejects an unknown op of the default domain, so before the checker every dialect node
moves to a private domain (which the checker skips); the importer takes its op_type as the IR op
(ops/deeploy.py and friends give shape rule, golden and kernel). com.microsoft's Gelu is ONNX's
Gelu (exact erf form), which the default domain only has from opset 20.

Deeploy's ops have no typing rule (its code generator infers integer types from values; its files
declare float32 or int32 containers at will), so the element type a file declares for a dialect
node's output is kept as the node's attribute `_dtype` and is that output's type.
"""
from __future__ import annotations

import onnx
from onnx import helper

# op -> the IR op it becomes: the integer ops are their own (ops/deeploy*.py); Deeploy's float RMSNorm
# (Snitch/src/RMSNrom_fp32.c: x / sqrt(mean(x²) + eps) · w, eps 1e-6 by default) is ONNX's
# RMSNormalization with its `eps` as `epsilon`
DEEPLOY_OPS = {op: op for op in (
    "RequantShift", "iSoftmax", "iHardswish", "iRMSNorm", "TrueIntegerDiv", "IntegerMean", "iLayerNorm",
    "iGELU", "ITAMax", "ITAPartialMax", "iNoNorm", "IntegerDiv", "RQIntegerDiv")} | {"RMSNorm": "RMSNormalization"}
FLOAT_OPS = ("Gelu", "RMSNormalization")   # typed by their ONNX rules
DIALECT = {"": DEEPLOY_OPS, "ai.onnx": DEEPLOY_OPS, "ai.onnx.contrib": DEEPLOY_OPS, "PACTOps": DEEPLOY_OPS,
           "com.microsoft": {"Gelu": "Gelu"}}
# newest opset of the dialect's own domains (precheck.py)
DOMAIN_OPSETS = {"ai.onnx.contrib": 1, "PACTOps": 1}
PRIVATE = "tinydeploy.dialect"


def dialect_op(n: onnx.NodeProto) -> str | None:
    """The IR op of a dialect node, None for any other node."""
    return DIALECT.get(n.domain, {}).get(n.op_type)


def hide_dialect(model: onnx.ModelProto) -> onnx.ModelProto:
    """Dialect nodes into the private domain (in place), so ONNX's checker and inference pass over
    them; our own shape inference (passes/complete_types.py) types their outputs."""
    g = model.graph
    declared = {v.name: v.type.tensor_type.elem_type for v in list(g.value_info) + list(g.output)
                if v.type.HasField("tensor_type") and v.type.tensor_type.elem_type}
    moved = False
    for n in g.node:
        op = dialect_op(n)
        if op is None:
            continue
        if n.op_type == "RMSNorm":
            _rmsnorm_attrs(n)
        n.op_type, n.domain, moved = op, PRIVATE, True
        if op not in FLOAT_OPS and n.output and n.output[0] in declared:
            dtype = helper.tensor_dtype_to_np_dtype(declared[n.output[0]])
            n.attribute.append(helper.make_attribute("_dtype", dtype.name))
    if moved and not any(o.domain == PRIVATE for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid(PRIVATE, 1))
    return model


def _rmsnorm_attrs(n: onnx.NodeProto) -> None:
    """Deeploy's RMSNorm attributes (`eps` or `epsilon`, default 1e-6) as RMSNormalization's."""
    a = {x.name: helper.get_attribute_value(x) for x in n.attribute}
    eps = float(a.get("eps", a.get("epsilon", 1e-6)))
    keep = [x for x in n.attribute if x.name not in ("eps", "epsilon")]
    del n.attribute[:]
    n.attribute.extend(keep + [helper.make_attribute("epsilon", eps)])
