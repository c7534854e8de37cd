"""Long chains of one operator: the graphs that expose compile time growing faster than the graph.

`chain(kind, n)`: x [1, 4] float → n links → y. Kinds: "Identity" (every node a no-op to drop),
"Add" (a float kernel per link, each in place of its input), "qdq_u8_add" (uint8 DequantizeLinear →
Add → QuantizeLinear per link: the int8 rewrite and the QDQ lowering), "qdq_sigmoid" (int8
DequantizeLinear → Sigmoid → QuantizeLinear per link: one lookup table each).
"""
from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from .graph import IR_VERSION, OPSET

KINDS = ("Identity", "Add", "qdq_u8_add", "qdq_sigmoid")


def chain(kind: str, n: int) -> onnx.ModelProto:
    u8 = kind == "qdq_u8_add"
    inits = [numpy_helper.from_array(np.full((1, 4), 0.5, np.float32), "c"),
             numpy_helper.from_array(np.array(0.05, np.float32), "s"),
             numpy_helper.from_array(np.array(128 if u8 else 0, np.uint8 if u8 else np.int8), "z")]
    qdq = kind.startswith("qdq")
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["t0"])] if qdq else \
        [helper.make_node("Identity", ["x"], ["t0"])]
    for k in range(1, n + 1):
        prev, out = f"t{k - 1}", f"t{k}"
        if kind == "Identity":
            nodes.append(helper.make_node("Identity", [prev], [out], name=f"n{k}"))
        elif kind == "Add":
            nodes.append(helper.make_node("Add", [prev, "c"], [out], name=f"n{k}"))
        else:
            op = helper.make_node("Add", [f"d{k}", "c"], [f"a{k}"]) if u8 else \
                helper.make_node("Sigmoid", [f"d{k}"], [f"a{k}"])
            nodes += [helper.make_node("DequantizeLinear", [prev, "s", "z"], [f"d{k}"]), op,
                      helper.make_node("QuantizeLinear", [f"a{k}", "s", "z"], [out])]
    nodes.append(helper.make_node("DequantizeLinear", [f"t{n}", "s", "z"], ["y"]) if qdq else
                 helper.make_node("Relu", [f"t{n}"], ["y"]))
    g = helper.make_graph(nodes, f"{kind}_chain", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", OPSET)])
    m.ir_version = IR_VERSION
    return m
