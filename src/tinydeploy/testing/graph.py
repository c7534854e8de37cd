"""A tiny ONNX graph builder that knows every tensor's type while the graph grows.

Shapes are inferred node by node with ONNX's own per-op inference
(`onnx.shape_inference.infer_node_outputs`), so builders and the random-model
generator can ask `shape(name)` before choosing the next op instead of keeping
a second, hand-written copy of the shape rules.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

# Opset 17: the first with LayerNormalization (transformer block), old enough
# that every tool in the flow (onnxruntime quantizer, checker, Netron) handles it,
# and below 19/21 where QuantizeLinear grew float8/int4/blocked variants that we
# do not want the quantizer to reach for. Per-channel QDQ needs >= 13.
OPSET = 17
# IR 8 is the IR version that shipped with opset 17 (onnx 1.12); writing the
# newest IR (onnx 1.23 default) would gratuitously reject older runtimes.
IR_VERSION = 8


class GraphBuilder:
    """Accumulates nodes/initializers; every value's TypeProto is kept in `types`."""

    def __init__(self, name: str, seed: int):
        self.name = name
        self.rng = np.random.default_rng(seed)
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[TensorProto] = []
        self.inputs: list[onnx.ValueInfoProto] = []
        self.outputs: list[str] = []
        self.types: dict[str, onnx.TypeProto] = {}
        self.consts: dict[str, TensorProto] = {}
        self._count: dict[str, int] = {}

    def fresh(self, hint: str) -> str:
        n = self._count.get(hint, 0)
        self._count[hint] = n + 1
        return f"{hint}{n}"

    def input(self, name: str, shape, dtype=TensorProto.FLOAT) -> str:
        vi = helper.make_tensor_value_info(name, dtype, list(shape))
        self.inputs.append(vi)
        self.types[name] = vi.type
        return name

    def const(self, array, hint: str = "c") -> str:
        """Adds an initializer (never a Constant node: the quantizer only treats
        initializers as weights) and returns its name."""
        name = self.fresh(hint)
        t = numpy_helper.from_array(np.asarray(array), name)
        self.inits.append(t)
        self.consts[name] = t
        self.types[name] = helper.make_tensor_type_proto(t.data_type, list(t.dims))
        return name

    def weight(self, shape, fan_in: int, hint: str = "w") -> str:
        # He-normal keeps activations near unit range through Relu stacks, so
        # calibration ranges are comparable across layers and no layer saturates.
        w = self.rng.normal(0.0, np.sqrt(2.0 / max(fan_in, 1)), size=shape)
        return self.const(w.astype(np.float32), hint)

    def bias(self, n: int, hint: str = "b") -> str:
        return self.const(self.rng.normal(0.0, 0.1, size=(n,)).astype(np.float32), hint)

    def op(self, op_type: str, *inputs: str, n_out: int = 1, **attrs):
        """Appends one node; returns its output name (or list when n_out > 1)."""
        outs = [self.fresh(op_type.lower()) for _ in range(n_out)]
        node = helper.make_node(op_type, list(inputs), outs, name=self.fresh(op_type + "_"), **attrs)
        schema = onnx.defs.get_schema(op_type, OPSET)
        inferred = onnx.shape_inference.infer_node_outputs(
            schema,
            node,
            {k: self.types[k] for k in inputs if k},
            {k: self.consts[k] for k in inputs if k in self.consts},
            opset_imports=[helper.make_opsetid("", OPSET)],
            ir_version=IR_VERSION,
        )
        for o in outs:
            t = inferred[o].tensor_type
            if any(not d.HasField("dim_value") for d in t.shape.dim):
                raise ValueError(f"{op_type}: output shape of {o} not static")
            self.types[o] = inferred[o]
        self.nodes.append(node)
        return outs[0] if n_out == 1 else outs

    def shape(self, name: str) -> tuple[int, ...]:
        return tuple(d.dim_value for d in self.types[name].tensor_type.shape.dim)

    def output(self, name: str) -> str:
        self.outputs.append(name)
        return name

    def build(self, check: bool = True) -> onnx.ModelProto:
        outs = [helper.make_value_info(o, self.types[o]) for o in self.outputs]
        graph = helper.make_graph(self.nodes, self.name, self.inputs, outs, self.inits)
        model = helper.make_model(
            graph,
            opset_imports=[helper.make_opsetid("", OPSET)],
            ir_version=IR_VERSION,
            producer_name="tinydeploy.testing",
        )
        if check:
            onnx.checker.check_model(model, full_check=True)
        return model
