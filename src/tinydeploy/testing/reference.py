"""The exact reference for quantized graphs (BRIEF §4), and onnxruntime as a second opinion.

`reference(model, feeds)`: QOperator nodes are rewritten to DequantizeLinear → float op →
QuantizeLinear (the frontend's own rewrite), then the graph runs in onnx's ReferenceEvaluator with
every float tensor in float64: DequantizeLinear is exact ((q − z)·s needs 33 bits), QuantizeLinear
divides once in float64 and rounds half to even, MatMulInteger/ConvInteger accumulate exact
integers, and the float ops between them carry ~1e-16 relative error, so a result differs from real
arithmetic only within ~1e-12 LSB of a rounding tie. Same answer on every CPU.

onnxruntime is not exact everywhere: on x86-64 without VNNI its integer kernels multiply uint8 by
int8 with vpmaddubsw, which saturates the int16 sum of each pair. `ort_u8s8_exact()` probes that
once per process; `references()` adds ORT's outputs only for models it computes exactly.
"""

from __future__ import annotations

import functools
import platform
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from .quant import ort_reference

# integer-product ops and the positions of their two operands' zero points (or operands)
_PRODUCTS = {"QLinearConv": (2, 5), "QLinearMatMul": (2, 5), "QGemm": (2, 5), "MatMulInteger": (0, 1),
             "ConvInteger": (0, 1)}
_U8S8 = frozenset((TensorProto.UINT8, TensorProto.INT8))
MS = "com.microsoft"


def _along(v: np.ndarray, ndim: int, axis: int) -> np.ndarray:
    """A scale / zero point broadcast along `axis` of an ndim tensor (scalar if one value)."""
    v = np.asarray(v, np.float64)
    if v.size == 1:
        return v.reshape(())
    shape = [1] * ndim
    shape[axis % ndim] = -1
    return v.reshape(shape)


def _ops():
    from onnx.reference.op_run import OpRun
    from onnx.reference.ops import op_max_pool

    class DequantizeLinear(OpRun):
        op_domain = ""

        def _run(self, x, scale, zero_point=None, axis=1, block_size=0, output_dtype=None):
            if block_size:
                raise NotImplementedError("blocked DequantizeLinear")
            zp = 0.0 if zero_point is None else _along(zero_point, x.ndim, axis)
            return ((x.astype(np.float64) - zp) * _along(scale, x.ndim, axis),)

    class QuantizeLinear(OpRun):
        op_domain = ""

        def _run(self, x, scale, zero_point=None, axis=1, saturate=1, block_size=0, output_dtype=0, precision=0):
            if block_size:
                raise NotImplementedError("blocked QuantizeLinear")
            dt = np.dtype(np.uint8) if zero_point is None else zero_point.dtype
            zp = 0.0 if zero_point is None else _along(zero_point, x.ndim, axis)
            q = np.rint(x.astype(np.float64) / _along(scale, x.ndim, axis)) + zp   # rint: half to even
            return (np.clip(q, np.iinfo(dt).min, np.iinfo(dt).max).astype(dt),)

    class MaxPool(op_max_pool.MaxPool):   # onnx's pads with NaN, which integer tensors cannot hold
        def _run(self, x, auto_pad=None, ceil_mode=None, dilations=None, kernel_shape=None, pads=None,
                 storage_order=None, strides=None):
            res = super()._run(x.astype(np.float64), auto_pad, ceil_mode, dilations, kernel_shape, pads,
                               storage_order, strides)
            return (res[0].astype(x.dtype), *res[1:])

    return [DequantizeLinear, QuantizeLinear, MaxPool]


def _float64(model: onnx.ModelProto) -> None:
    """Every float32 tensor of the graph becomes float64 (in place)."""
    g = model.graph
    for t in g.initializer:
        if t.data_type == TensorProto.FLOAT:
            t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(t).astype(np.float64), t.name))
    for n in g.node:
        for a in n.attribute:
            if a.type == onnx.AttributeProto.TENSOR and a.t.data_type == TensorProto.FLOAT:
                a.t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(a.t).astype(np.float64), a.t.name))
            elif n.op_type == "Cast" and a.name == "to" and a.i == TensorProto.FLOAT:
                a.i = TensorProto.DOUBLE
    for vi in (*g.input, *g.output, *g.value_info):
        if vi.type.tensor_type.elem_type == TensorProto.FLOAT:
            vi.type.tensor_type.elem_type = TensorProto.DOUBLE


def reference(model: onnx.ModelProto, feeds: dict[str, np.ndarray],
              intermediates: bool = False) -> dict[str, np.ndarray]:
    """Exact outputs of a quantized (or any) model by name; with `intermediates`, every node output.
    Float results are returned as float32 (one rounding of the float64 value), as the graph types them."""
    from onnx.reference import ReferenceEvaluator

    from ..frontend.qoperator import normalize_qoperator

    m = onnx.ModelProto()
    m.CopyFrom(model)
    m = normalize_qoperator(m, scale_dtype=np.float64)
    _float64(m)
    f64 = {k: v.astype(np.float64) if v.dtype == np.float32 else v for k, v in feeds.items()}
    ev = ReferenceEvaluator(m, new_ops=_ops())
    names = [o for n in m.graph.node for o in n.output if o] if intermediates else [o.name for o in m.graph.output]
    values = ev.run(None, f64, intermediate=True) if intermediates else dict(zip(names, ev.run(None, f64)))
    declared = {o.name: o.type.tensor_type.elem_type for o in model.graph.output}
    return {k: values[k].astype(np.float32) if values[k].dtype == np.float64 and declared.get(k) != TensorProto.DOUBLE
            else values[k] for k in names}


@functools.cache
def ort_u8s8_exact() -> bool:
    """Whether onnxruntime multiplies uint8 by int8 exactly on this CPU (probed once per process):
    MatMulInteger of uint8 255 × int8 127 over K = 64 is 2,072,640 (saturating int16 pair sums give
    1,048,544)."""
    g = helper.make_graph([helper.make_node("MatMulInteger", ["a", "b"], ["y"])], "probe",
                          [helper.make_tensor_value_info("a", TensorProto.UINT8, [4, 64])],
                          [helper.make_tensor_value_info("y", TensorProto.INT32, [4, 4])],
                          [numpy_helper.from_array(np.full((64, 4), 127, np.int8), "b")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    y = ort_reference(m, {"a": np.full((4, 64), 255, np.uint8)})["y"]
    return bool((y == 255 * 127 * 64).all())


def mixed_sign_products(model: onnx.ModelProto) -> list[str]:
    """Integer-product nodes (QLinearConv, QLinearMatMul, QGemm, MatMulInteger, ConvInteger) that
    multiply uint8 by int8, or whose operand types are unknown here (counted as mixed)."""
    g = model.graph
    types = {vi.name: vi.type.tensor_type.elem_type for vi in (*g.input, *g.value_info)}
    types.update({t.name: t.data_type for t in g.initializer})
    hits = []
    for n in g.node:
        if n.op_type in _PRODUCTS:
            pair = frozenset(types.get(n.input[i]) if i < len(n.input) else None for i in _PRODUCTS[n.op_type])
            if pair == _U8S8 or None in pair:
                hits.append(n.name or n.output[0])
    return hits


def ort_is_exact(model: onnx.ModelProto) -> bool:
    """Whether onnxruntime computes `model` exactly on this CPU."""
    return ort_u8s8_exact() or not mixed_sign_products(model)


def is_quantized(model: onnx.ModelProto) -> bool:
    """Whether the graph has integer semantics to check: Q/DQ, QLinear*, integer products, com.microsoft."""
    return any(n.op_type in _PRODUCTS or n.op_type in ("QuantizeLinear", "DequantizeLinear")
               or n.op_type.startswith("QLinear") or n.domain == MS for n in model.graph.node)


def references(model: onnx.ModelProto, feeds: dict[str, np.ndarray],
               intermediates: bool = False) -> dict[str, dict[str, np.ndarray]]:
    """Reference outputs by label, the primary one first. A quantized model: {"exact reference": …,
    "onnxruntime": …}, onnxruntime only where it is exact for this model on this CPU. A float model
    (float32 semantics): {"onnxruntime": …}."""
    if not is_quantized(model):
        return {"onnxruntime": ort_reference(model, feeds, intermediates)}
    refs = {"exact reference": reference(model, feeds, intermediates)}
    if ort_is_exact(model):
        refs["onnxruntime"] = ort_reference(model, feeds, intermediates)
    return refs


def ort_status() -> str:
    """One line for the test report header: which references the run compares with."""
    import onnxruntime as ort

    flags = Path("/proc/cpuinfo").read_text() if platform.system() == "Linux" else ""
    cpu = "VNNI" if "vnni" in flags else "AVX2" if " avx2" in flags else platform.machine()
    if ort_u8s8_exact():
        return f"onnxruntime {ort.__version__} u8xs8: exact ({cpu}): every quantized model also checked against ORT"
    return (f"onnxruntime {ort.__version__} u8xs8: saturating ({cpu}): ORT comparisons of u8xs8 integer ops "
            f"skipped, exact reference used")
