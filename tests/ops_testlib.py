"""Many small op cases in one ONNX model, so one C build checks them all (BRIEF §8).

    b = Cases()
    x = b.act((2, 8), scale=0.05, zp=3)              # int8 graph input -> DequantizeLinear
    w = b.weight(np.int8 array, scale, zp, axis)     # int8 initializer -> DequantizeLinear
    b.q_out(b.op("MatMul", x, w), scale=0.1, zp=-2)  # -> QuantizeLinear -> int8 graph output
    b.check()                                        # golden == host C bit for bit, vs the references in LSB

Integer outputs are compared in LSB directly (the output is the quantized tensor itself).
"""
from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from helpers import golden_and_host
from tinydeploy.testing import references

_ONNX = {np.dtype(np.int8): TensorProto.INT8, np.dtype(np.uint8): TensorProto.UINT8,
         np.dtype(np.float32): TensorProto.FLOAT, np.dtype(np.int32): TensorProto.INT32,
         np.dtype(np.int64): TensorProto.INT64, np.dtype(np.uint32): TensorProto.UINT32,
         np.dtype(np.uint64): TensorProto.UINT64}


SANITIZE = ["-fsanitize=address,undefined", "-fno-omit-frame-pointer"]


def compiler(cc: str) -> dict:
    """check() arguments for "gcc", "clang" or "asan" (clang with ASan + UBSan)."""
    return {"cc": "clang" if cc == "asan" else cc, "extra": SANITIZE if cc == "asan" else None}


class Cases:
    def __init__(self, seed: int = 0, opset: int = 17):
        self.rng = np.random.default_rng(seed)
        self.opset = opset
        self.nodes, self.inits, self.inputs, self.outputs = [], [], [], []
        self.feeds: dict[str, np.ndarray] = {}
        self.kinds: dict[str, str] = {}      # output name -> "q" | "f" | "i"
        self.labels: dict[str, str] = {}
        self.n = 0

    def fresh(self, hint: str) -> str:
        self.n += 1
        return f"{hint}{self.n}"

    def _const(self, value, hint="c") -> str:
        name = self.fresh(hint)
        self.inits.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def raw_input(self, shape, dtype=np.int8, low=None, high=None, values=None) -> str:
        name = self.fresh("in")
        dtype = np.dtype(dtype)
        if values is None:
            if dtype.kind == "f":
                values = self.rng.standard_normal(shape).astype(dtype)
            else:
                info = np.iinfo(dtype)
                values = self.rng.integers(info.min if low is None else low,
                                           (info.max if high is None else high) + 1, shape).astype(dtype)
        self.feeds[name] = np.asarray(values, dtype).reshape(shape)
        self.inputs.append(helper.make_tensor_value_info(name, _ONNX[dtype], list(shape)))
        return name

    def act(self, shape, scale, zp=0, dtype=np.int8, **kw) -> str:
        """A quantized activation: integer graph input -> DequantizeLinear."""
        x = self.raw_input(shape, dtype, **kw)
        return self.dq(x, scale, zp, dtype)

    def dq(self, x, scale, zp, dtype=np.int8, axis=None) -> str:
        out = self.fresh("dq")
        s = self._const(np.asarray(scale, np.float32), "s")
        z = self._const(np.asarray(zp, dtype), "z")
        kw = {} if axis is None else {"axis": axis}
        self.nodes.append(helper.make_node("DequantizeLinear", [x, s, z], [out], **kw))
        return out

    def weight(self, values, scale, zp=0, axis=None) -> str:
        values = np.asarray(values)
        return self.dq(self._const(values, "w"), scale, zp, values.dtype, axis)

    def bias(self, values_i32, scale, axis=None) -> str:
        return self.dq(self._const(np.asarray(values_i32, np.int32), "b"), scale,
                       np.zeros(np.shape(scale), np.int32), np.int32, axis)

    def fconst(self, values) -> str:
        return self._const(np.asarray(values, np.float32), "f")

    def op(self, op_type, *inputs, n_out=1, **attrs):
        outs = [self.fresh(op_type.lower()) for _ in range(n_out)]
        self.nodes.append(helper.make_node(op_type, list(inputs), outs, name=self.fresh(op_type + "_"), **attrs))
        return outs[0] if n_out == 1 else outs

    def q_out(self, x, scale, zp=0, dtype=np.int8, label="") -> str:
        out = self.fresh("y")
        s = self._const(np.asarray(scale, np.float32), "s")
        z = self._const(np.asarray(zp, dtype), "z")
        self.nodes.append(helper.make_node("QuantizeLinear", [x, s, z], [out]))
        self.outputs.append(helper.make_tensor_value_info(out, _ONNX[np.dtype(dtype)], None))
        self.kinds[out], self.labels[out] = "q", label
        return out

    def out(self, x, dtype=np.float32, label="") -> str:
        self.outputs.append(helper.make_tensor_value_info(x, _ONNX[np.dtype(dtype)], None))
        self.kinds[x], self.labels[x] = ("f" if np.dtype(dtype).kind == "f" else "i"), label
        return x

    def model(self) -> onnx.ModelProto:
        g = helper.make_graph(self.nodes, "cases", self.inputs, self.outputs, self.inits)
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", self.opset)])
        m.ir_version = 8 if self.opset <= 17 else 10
        # output shapes from ONNX's own inference (the checker wants them)
        inferred = onnx.shape_inference.infer_shapes(m, strict_mode=True)
        del m.graph.output[:]
        m.graph.output.extend(inferred.graph.output)
        return m

    def run(self, cc="gcc", extra=None):
        """(compiled, golden, host, {reference label: outputs}) (tinydeploy.testing.references)."""
        model = self.model()
        c, gold, host = golden_and_host(model, self.feeds, cc=cc, extra=extra)
        return c, gold, host, references(model, self.feeds)

    def check(self, max_lsb=1, rtol=1e-4, atol=1e-5, cc="gcc", extra=None, mean_lsb=0.25):
        """Asserts host == golden (bitwise for integers) and golden vs each reference; returns per-output
        stats {label or name: (max |LSB|, mean signed LSB, count)} for integer outputs, against the
        first reference (the exact one for quantized graphs)."""
        c, gold, host, refs = self.run(cc, extra)
        stats = {}
        for name, kind in self.kinds.items():
            g, h = gold[name], host[name]
            if kind == "f":
                np.testing.assert_allclose(h, g, rtol=rtol, atol=atol, err_msg=f"{name} {self.labels[name]} host")
            else:
                assert np.array_equal(g, h), f"{name} ({self.labels[name]}): host C differs from golden"
            for ref_label, ref in refs.items():
                r, what = ref[name], f"{name} ({self.labels[name]}) vs {ref_label}"
                assert g.shape == r.shape, (what, g.shape, r.shape)
                if kind == "f":
                    np.testing.assert_allclose(g, r, rtol=rtol, atol=atol, err_msg=what)
                    continue
                d = g.astype(np.int64) - r.astype(np.int64)
                stats.setdefault(self.labels[name] or name,
                                 (int(np.abs(d).max(initial=0)), float(d.mean()) if d.size else 0.0, d.size))
                if kind == "q":
                    assert np.abs(d).max(initial=0) <= max_lsb, f"{what}: {np.abs(d).max()} LSB"
                    if d.size >= 64:
                        assert abs(d.mean()) <= mean_lsb, f"{what}: mean error {d.mean():.3f} LSB"
                else:
                    assert np.array_equal(g, r), f"{what}: integer op differs"
        return c, stats


class IrCases:
    """Ops with no ONNX form (the integer ops with run-time row scales): an ir.Graph built node by
    node, run by the golden model and as host C (one build); ``run`` returns both, every output.

        b = IrCases("rope")
        v = b.input("v", int16 array); p = b.input("pos", np.array([3], np.int32))
        y = b.node("QRoPE", [v, p, "", b.const("cos", c), b.const("sin", s)], (v_shape, np.int16), head_size=8)
        gold, host = b.run()
    """

    def __init__(self, name: str):
        from tinydeploy.ir import Graph
        self.g = Graph(name, {}, [], [], [])
        self.feeds: dict[str, np.ndarray] = {}

    def _tensor(self, name, shape, dtype, data=None, state=False) -> str:
        from tinydeploy.ir import Tensor
        self.g.tensors[name] = Tensor(name, tuple(shape), np.dtype(dtype), data, state=state)
        return name

    def input(self, name: str, value) -> str:
        value = np.asarray(value)
        self.feeds[name] = value
        self.g.inputs.append(name)
        return self._tensor(name, value.shape, value.dtype)

    def const(self, name: str, value) -> str:
        value = np.ascontiguousarray(value)
        return self._tensor(name, value.shape, value.dtype, value)

    def state(self, name: str, shape, dtype) -> str:
        return self._tensor(name, shape, dtype, state=True)

    def node(self, op: str, inputs, *outs, out: bool = True, **attrs):
        """outs: (shape, dtype) per output; every output is a graph output unless out=False."""
        from tinydeploy.ir import Node
        names = [f"{op.lower()}{len(self.g.nodes)}_{k}" for k in range(len(outs))]
        for name, (shape, dtype) in zip(names, outs):
            self._tensor(name, shape, dtype)
        self.g.nodes.append(Node(op, f"{op.lower()}{len(self.g.nodes)}", list(inputs), names, attrs))
        if out:
            self.g.outputs += names
        return names[0] if len(names) == 1 else names

    def run(self, cc: str = "gcc", extra=None):
        import copy
        import tempfile
        from pathlib import Path

        from tinydeploy.compiler import compile_graph, emit_c
        from tinydeploy.golden import run_graph
        from tinydeploy.targets.host import runner
        gold = run_graph(copy.deepcopy(self.g), self.feeds)
        c = compile_graph(copy.deepcopy(self.g))
        with tempfile.TemporaryDirectory() as tmp:
            host = runner.run(emit_c(c, Path(tmp) / "c"), c.graph, self.feeds, Path(tmp), cc=cc, extra=extra)
        return gold, host
