"""QOperator → QDQ: rewrite each QLinear*/com.microsoft Q* node as DequantizeLinear → float op →
QuantizeLinear, so one lowering path (passes/lower_qdq.py) serves both formats.

A quantized bias (int32, scale = x_scale * w_scale, zero point 0) is dequantized with a scale
initializer computed here, exactly as the QDQ quantizer writes it.
"""
from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

from ..errors import TinydeployError

MS = "com.microsoft"


class _Rewriter:
    def __init__(self, g: onnx.GraphProto, scale_dtype):
        self.g = g
        self.scale_dtype = scale_dtype
        self.inits = {i.name: i for i in g.initializer}
        self.new: list[onnx.NodeProto] = []
        self.count = 0
        self.name = ""   # the node being rewritten: its float op keeps the name, so errors name it

    def fresh(self, base: str) -> str:
        self.count += 1
        return f"{base}__qop{self.count}"

    def dq(self, x: str, s: str, zp: str, axis: int | None = None) -> str:
        out = self.fresh(x + "_dq")
        kw = {"axis": axis} if axis is not None else {}
        self.new.append(helper.make_node("DequantizeLinear", [x, s, zp] if zp else [x, s], [out], **kw))
        return out

    def q(self, xf: str, s: str, zp: str, out: str) -> None:
        self.new.append(helper.make_node("QuantizeLinear", [xf, s, zp] if zp else [xf, s], [out]))

    def op(self, op_type: str, inputs: list[str], attrs: dict, out: str | None = None) -> str:
        out = out or self.fresh(op_type.lower())
        self.new.append(helper.make_node(op_type, inputs, [out], name=self.name or None, **attrs))
        return out

    def bias_scale(self, node: onnx.NodeProto, xs: str, ws: str) -> str:
        a, b = (self.value(node, xs), self.value(node, ws))
        name = self.fresh("bias_scale")
        self.g.initializer.append(numpy_helper.from_array(a.astype(self.scale_dtype) * b, name))
        return name

    def value(self, node: onnx.NodeProto, name: str) -> np.ndarray:
        if name not in self.inits:
            raise TinydeployError(f"node {node.name or node.op_type} ({node.op_type}): "
                                  f"'{name}' must be a constant initializer")
        return numpy_helper.to_array(self.inits[name])


def _axis_for(rw: _Rewriter, node, scale: str, axis: int) -> int | None:
    return axis if rw.value(node, scale).size > 1 else None


def _rewrite(rw: _Rewriter, n: onnx.NodeProto) -> bool:
    """Append the QDQ form of n to rw.new; False if n is not a QOperator node."""
    a = {x.name: helper.get_attribute_value(x) for x in n.attribute}
    i = list(n.input) + [""] * 12
    t, y = n.op_type, n.output[0]
    if t == "QLinearConv" and n.domain in ("", "ai.onnx"):
        x = rw.dq(i[0], i[1], i[2])
        w = rw.dq(i[3], i[4], i[5], _axis_for(rw, n, i[4], 0))
        ins = [x, w] + ([rw.dq(i[8], rw.bias_scale(n, i[1], i[4]), "", 0 if rw.value(n, i[4]).size > 1 else None)]
                        if i[8] else [])
        rw.q(rw.op("Conv", ins, a), i[6], i[7], y)
    elif t == "QLinearMatMul" and n.domain in ("", "ai.onnx"):
        am, bm = rw.dq(i[0], i[1], i[2]), rw.dq(i[3], i[4], i[5], _axis_for(rw, n, i[4], -1))
        rw.q(rw.op("MatMul", [am, bm], {}), i[6], i[7], y)
    elif n.domain != MS:
        return False
    elif t == "QGemm":
        # per-output-channel B scales: the channel axis of B follows transB
        b_axis = _axis_for(rw, n, i[4], 0 if a.get("transB") else 1)
        am, bm = rw.dq(i[0], i[1], i[2]), rw.dq(i[3], i[4], i[5], b_axis)
        ins = [am, bm]
        if i[6]:
            ins.append(rw.dq(i[6], rw.bias_scale(n, i[1], i[4]), "", 0 if rw.value(n, i[4]).size > 1 else None))
        if i[7]:
            rw.q(rw.op("Gemm", ins, a), i[7], i[8], y)
        else:
            rw.op("Gemm", ins, a, out=y)
    elif t in ("QLinearAdd", "QLinearMul"):
        am, bm = rw.dq(i[0], i[1], i[2]), rw.dq(i[3], i[4], i[5])
        rw.q(rw.op(t[7:], [am, bm], {}), i[6], i[7], y)
    elif t in ("QLinearLeakyRelu", "QLinearSigmoid", "QLinearSoftmax", "QLinearAveragePool",
               "QLinearGlobalAveragePool"):
        attrs = {k: v for k, v in a.items() if k not in ("opset", "channels_last")}
        if a.get("channels_last"):
            raise TinydeployError(f"node {n.name or t} ({t}): channels_last=1 is not supported")
        if t == "QLinearSoftmax" and a.get("opset", 13) < 13:
            raise TinydeployError(f"node {n.name or t} ({t}): opset<13 softmax semantics are not supported")
        rw.q(rw.op(t[7:], [rw.dq(i[0], i[1], i[2])], attrs), i[3], i[4], y)
    elif t == "QLinearConcat":
        ins = [rw.dq(n.input[k], n.input[k + 1], n.input[k + 2]) for k in range(2, len(n.input), 3)]
        rw.q(rw.op("Concat", ins, a), i[0], i[1], y)
    else:
        raise TinydeployError(f"node {n.name or t}: operator {MS}::{t} is not supported")
    return True


def normalize_qoperator(model: onnx.ModelProto, scale_dtype=np.float32) -> onnx.ModelProto:
    """The QDQ form of `model` (in place). Bias scales are x_scale · w_scale rounded to `scale_dtype`:
    float32 as a QDQ file holds them; float64 keeps the product exact (the testing reference)."""
    g = model.graph
    if not any(n.op_type.startswith("QLinear") or n.op_type == "QGemm" for n in g.node):
        return model
    rw = _Rewriter(g, scale_dtype)
    for n in g.node:
        rw.name = n.name
        if not _rewrite(rw, n):
            rw.new.append(n)
    del g.node[:]
    g.node.extend(rw.new)
    # com.microsoft ops are gone; keep only the default domain so the checker is happy.
    keep = [o for o in model.opset_import if o.domain != MS]
    del model.opset_import[:]
    model.opset_import.extend(keep)
    if not any(o.domain in ("", "ai.onnx") for o in keep):
        model.opset_import.append(helper.make_opsetid("", 17))
    return model
