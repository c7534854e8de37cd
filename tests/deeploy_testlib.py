"""Graphs of Deeploy's dialect ops (frontend/dialect.py) built with onnx's helper API, run by the
golden model, host C and (optionally) rv32, every output compared bit for bit.

    b = Dialect()
    x = b.input((2, 8), values=...)                      # float32 holding integers, as Deeploy's files
    y = b.op("RequantShift", x, b.const(mul), b.const(add), shape=(2, 8), div=..., signed=1, n_levels=256)
    gold, outs = b.run(rv32=True)                        # asserts host (and rv32) == golden
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

from tinydeploy.compiler import compile_graph, emit_c
from tinydeploy.frontend.onnx_import import import_model
from tinydeploy.golden import run_graph
from tinydeploy.targets.host import runner as host_runner

ONNX = {np.dtype(np.float32): onnx.TensorProto.FLOAT, np.dtype(np.int8): onnx.TensorProto.INT8,
        np.dtype(np.uint8): onnx.TensorProto.UINT8, np.dtype(np.int16): onnx.TensorProto.INT16,
        np.dtype(np.int32): onnx.TensorProto.INT32}


class Dialect:
    def __init__(self, opset: int = 13):
        self.opset = opset
        self.nodes, self.inits, self.inputs, self.outputs = [], [], [], []
        self.feeds: dict[str, np.ndarray] = {}
        self.n = 0

    def fresh(self, hint):
        self.n += 1
        return f"{hint}{self.n}"

    def input(self, values) -> str:
        values = np.asarray(values)
        name = self.fresh("in")
        self.feeds[name] = values
        self.inputs.append(helper.make_tensor_value_info(name, ONNX[values.dtype], list(values.shape)))
        return name

    def const(self, values, dtype=np.float32) -> str:
        name = self.fresh("c")
        self.inits.append(numpy_helper.from_array(np.asarray(values, dtype), name))
        return name

    def op(self, op_type, *inputs, shape, dtype=np.float32, domain="", out=True, **attrs) -> str:
        """One node; its output (declared shape and dtype) is a graph output unless out=False."""
        y = self.fresh(op_type.lower())
        self.nodes.append(helper.make_node(op_type, list(inputs), [y], name=self.fresh(op_type + "_"),
                                           domain=domain, **attrs))
        if out:
            self.outputs.append(helper.make_tensor_value_info(y, ONNX[np.dtype(dtype)], list(shape)))
        return y

    def model(self) -> onnx.ModelProto:
        g = helper.make_graph(self.nodes, "dialect", self.inputs, self.outputs, self.inits)
        domains = sorted({n.domain for n in self.nodes} - {""})
        return helper.make_model(g, opset_imports=[helper.make_opsetid("", self.opset)]
                                 + [helper.make_opsetid(d, 1) for d in domains])

    def run(self, rv32: bool = False, cc: str = "gcc", extra=None, float_tol=None):
        """(golden outputs, compiled graph); asserts host C (and rv32) equal golden bit for bit, or
        within float_tol = (rtol, atol) for the float ops (summation order, libm)."""
        c = compile_graph(import_model(self.model()))
        gold = run_graph(c.graph, self.feeds)
        with tempfile.TemporaryDirectory() as tmp:
            proj = emit_c(c, Path(tmp) / "c")
            runs = {"host": host_runner.run(proj, c.graph, self.feeds, Path(tmp), cc=cc, extra=extra)}
            if rv32:
                from tinydeploy.targets.rv32 import network_run
                from tinydeploy.targets.rv32.config import Rv32Config
                runs["rv32"] = network_run.run(proj, c.graph, self.feeds, Path(tmp), Rv32Config())[0]
        for target, outs in runs.items():
            for name in c.graph.outputs:
                assert outs[name].dtype == gold[name].dtype, (target, name)
                if float_tol is not None:
                    np.testing.assert_allclose(outs[name], gold[name], *float_tol, err_msg=f"{target} {name}")
                else:
                    assert np.array_equal(outs[name], gold[name]), f"{target} != golden for {name}"
        return gold, c
