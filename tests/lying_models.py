"""Models whose stated shapes lie: x → OP → t → Relu → y, with t (or y) declared smaller than what
OP computes. Trusting the declaration sizes t's buffer too small and the kernel writes past it."""
from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

_R = np.random.default_rng(0)
# op: (x shape, node kwargs, extra initializers, true shape of t, the lie)
CASES = {
    "Conv": ((1, 1, 8, 8), dict(inputs=["x", "W"], pads=[1, 1, 1, 1]),
             {"W": _R.normal(size=(4, 1, 3, 3))}, (1, 4, 8, 8), (1, 4, 2, 2)),
    "Transpose": ((1, 2, 3, 4), dict(perm=[0, 3, 1, 2]), {}, (1, 4, 2, 3), (1, 1, 2, 3)),
    "MaxPool": ((1, 1, 8, 8), dict(kernel_shape=[2, 2]), {}, (1, 1, 7, 7), (1, 1, 2, 2)),
    "MatMul": ((1, 4, 8), dict(inputs=["x", "W"]), {"W": _R.normal(size=(8, 16))}, (1, 4, 16), (1, 4, 2)),
    "Concat": ((1, 4, 8), dict(inputs=["x", "c"], axis=1), {"c": _R.normal(size=(1, 4, 8))}, (1, 8, 8), (1, 4, 8)),
    "Gather": ((4, 8), dict(inputs=["x", "i"], axis=0), {"i": np.array([0, 1, 2, 3, 3, 2], np.int64)},
               (6, 8), (2, 8)),
    "Resize": ((1, 1, 4, 4), dict(inputs=["x", "", "s"], mode="nearest"),
               {"s": np.array([1, 1, 2, 2], np.float32)}, (1, 1, 8, 8), (1, 1, 4, 4)),
    "Slice": ((1, 1, 8, 8), dict(inputs=["x", "st", "en", "ax"]),
              {"st": np.array([0], np.int64), "en": np.array([6], np.int64), "ax": np.array([3], np.int64)},
              (1, 1, 8, 6), (1, 1, 8, 2)),
}


def lying_model(op: str, lie_on: str = "t", x_shape=None) -> onnx.ModelProto:
    """lie_on "t": value_info of the intermediate lies; "y": the graph output's declared shape lies;
    None: no lie (t undeclared)."""
    shape, kw, inits, _, lie = CASES[op]
    kw = dict(kw)
    ins = kw.pop("inputs", ["x"])
    nodes = [helper.make_node(op, ins, ["t"], name=op.lower(), **kw), helper.make_node("Relu", ["t"], ["y"], name="relu")]
    g = helper.make_graph(
        nodes, "lie", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x_shape or shape))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, list(lie) if lie_on == "y" else None)],
        [numpy_helper.from_array(np.asarray(v, np.float32 if np.asarray(v).dtype == np.float64 else None), k)
         for k, v in inits.items()],
        value_info=[helper.make_tensor_value_info("t", TensorProto.FLOAT, list(lie))] if lie_on == "t" else [])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    return m


def x_for(op: str, shape=None) -> np.ndarray:
    return np.random.default_rng(1).normal(size=shape or CASES[op][0]).astype(np.float32)
