"""Readable dumps of quantized graphs, used to write and check docs/quantized_patterns.md.

`tensor_types` runs the model once with every intermediate exposed, so dtypes
and shapes come from onnxruntime itself, including com.microsoft ops for which
ONNX shape inference knows nothing.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import numpy_helper

from .quant import ort_reference, random_inputs

_QDQ = {"QuantizeLinear", "DequantizeLinear"}
_SHORT = {"float32": "f32", "int8": "i8", "uint8": "u8", "int32": "i32", "int64": "i64"}


def _short(dt) -> str:
    return _SHORT.get(np.dtype(dt).name, np.dtype(dt).name)


def tensor_types(model: onnx.ModelProto, feeds=None) -> dict[str, tuple[str, tuple[int, ...]]]:
    """name -> (short dtype, shape) for initializers and every node output."""
    out = {t.name: (_short(numpy_helper.to_array(t).dtype), tuple(t.dims)) for t in model.graph.initializer}
    feeds = feeds or random_inputs(model, seed=0)[0]
    for n, v in ort_reference(model, feeds, intermediates=True).items():
        out[n] = (_short(v.dtype), tuple(v.shape))
    for n, v in feeds.items():
        out[n] = (_short(v.dtype), tuple(v.shape))
    return out


def _attrs(nd: onnx.NodeProto) -> str:
    keep = []
    for a in nd.attribute:
        v = onnx.helper.get_attribute_value(a)
        keep.append(f"{a.name}={v.decode() if isinstance(v, bytes) else v}")
    return "{" + ", ".join(keep) + "}" if keep else ""


def _tensor(name: str, types, inits, values: bool = True) -> str:
    if not name:
        return "-"
    dt, shape = types.get(name, ("?", ()))
    if values and name in inits and inits[name].size <= 1:
        return f"{dt}={inits[name].ravel().tolist()}"
    return f"{dt}{list(shape)}" + ("(const)" if name in inits else "")


def listing(model: onnx.ModelProto, feeds=None, values: bool = True) -> str:
    """One line per node: op[domain](input types) -> output types {attributes}.
    With `values`, one-element initializers (scales, zero points) show their value."""
    types = tensor_types(model, feeds)
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    lines = []
    for nd in model.graph.node:
        dom = f"[{nd.domain}]" if nd.domain else ""
        ins = ", ".join(_tensor(i, types, inits, values) for i in nd.input)
        outs = ", ".join(_tensor(o, types, inits, values) for o in nd.output)
        lines.append(f"{nd.op_type}{dom}({ins}) -> {outs} {_attrs(nd)}".rstrip())
    return "\n".join(lines)


def qdq_patterns(model: onnx.ModelProto, feeds=None) -> list[str]:
    """For each non-Q/DQ node of a QDQ model, how its inputs and outputs are
    quantized, e.g. `Conv(DQ(i8 act), DQ(i8 w[8,3,3,3] axis=0), DQ(i32 b[8])) -> Q(i8)`."""
    types = tensor_types(model, feeds)
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    producer = {o: nd for nd in model.graph.node for o in nd.output}
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for nd in model.graph.node:
        for i in nd.input:
            consumers.setdefault(i, []).append(nd)
    graph_outputs = {o.name for o in model.graph.output}

    def describe_input(name: str) -> str:
        p = producer.get(name)
        if p is not None and p.op_type == "DequantizeLinear":
            src = p.input[0]
            dt, shape = types[src]
            scale = inits.get(p.input[1])
            axis = [a.i for a in p.attribute if a.name == "axis"]
            per = f" axis={axis[0] if axis else 1}" if scale is not None and scale.size > 1 else ""
            if src in inits:
                return f"DQ({dt} const{list(shape)}{per})"
            return f"DQ({dt})"
        if name in inits:
            return f"const {types[name][0]}{list(types[name][1])}"
        return f"{types.get(name, ('?',))[0]}"

    def describe_output(name: str) -> str:
        cs = consumers.get(name, [])
        qs = [c for c in cs if c.op_type == "QuantizeLinear"]
        if qs and len(qs) == len(cs):
            return f"Q({types[qs[0].output[0]][0]})"
        tail = " (graph output)" if name in graph_outputs else ""
        return "float" + tail if not qs else f"Q({types[qs[0].output[0]][0]}) + float uses"

    result = []
    for nd in model.graph.node:
        if nd.op_type in _QDQ:
            continue
        ins = ", ".join(describe_input(i) for i in nd.input if i)
        outs = ", ".join(describe_output(o) for o in nd.output)
        result.append(f"{nd.op_type}({ins}) -> {outs}")
    return result
