"""Quantized graphs shaped as real exporters write them, built with onnx's helper API (no
TensorFlow or PyTorch needed): the shapes of MLPerf Tiny's reference networks, the node patterns of
tf2onnx (from TFLite int8) and of torch.onnx.export (PyTorch QAT / PTQ).

    tflite_fc_autoencoder()   MLPerf Tiny AD: 640→128→128→128→128→8→128→128→128→128→640
    tflite_ds_cnn()           MLPerf Tiny KWS: conv 10×4 s2, depthwise-separable blocks, pool, FC, softmax
    torch_cnn(mode)           a small CNN as torch.onnx.export writes PyTorch PTQ ("ptq") or QAT ("qat")

tf2onnx (checked against `python -m tf2onnx.convert --tflite ad01_int8.tflite --opset 17`, tf2onnx
1.16.1): int8 graph input and output; every layer `DQ(x), DQ(int8 W), DQ(int32 b, zero point 0) →
op → [Relu | Clip(0, 6)] → Q(int8)`; a fully connected layer is `MatMul(DQ(x), DQ(W[K, N])) →
Add(DQ(int32 bias)) → [Relu] → Q`; conv weights per output channel (axis 0, zero points an int8
array of zeros), FC weights per tensor; Reshape / Transpose run on the int8 tensors (Q → Reshape → DQ);
AveragePool keeps its input's quantization; the classifier ends `DQ → Softmax → Q(1/256, −128)`.

torch.onnx.export (checked against torch 2.13's TorchScript exporter on an eager-mode fbgemm model,
both converted and fake-quantized): float input and output, uint8 activations, int8 per-channel
weights; see `torch_cnn` for the two forms.

Scales come from the values the graph computes on a calibration input (every node is evaluated
with onnx's ReferenceEvaluator as it is added), as a quantizer's calibration would choose them.
"""
from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from .graph import GraphBuilder

_NP = {TensorProto.FLOAT: np.float32, TensorProto.INT8: np.int8, TensorProto.UINT8: np.uint8,
       TensorProto.INT32: np.int32, TensorProto.INT64: np.int64}


class QdqBuilder(GraphBuilder):
    """GraphBuilder that evaluates each node on one calibration feed, so scales fit the data."""

    def __init__(self, name: str, seed: int):
        super().__init__(name, seed)
        self.values: dict[str, np.ndarray] = {}

    def input(self, name, shape, dtype=TensorProto.FLOAT, value=None):
        super().input(name, shape, dtype)
        if value is None:
            value = self.rng.standard_normal(shape) if dtype == TensorProto.FLOAT else \
                self.rng.integers(-128 if dtype == TensorProto.INT8 else 0, 128 if dtype == TensorProto.INT8 else 256, shape)
        self.values[name] = np.asarray(value).astype(_NP[dtype])
        return name

    def const(self, array, hint="c"):
        name = super().const(array, hint)
        self.values[name] = np.asarray(array)
        return name

    def op(self, op_type, *inputs, n_out=1, **attrs):
        from onnx.reference import ReferenceEvaluator
        outs = super().op(op_type, *inputs, n_out=n_out, **attrs)
        node = self.nodes[-1]
        graph = helper.make_graph([node], "one", [helper.make_value_info(i, self.types[i]) for i in inputs if i],
                                  [helper.make_value_info(o, self.types[o]) for o in node.output])
        opset = 21 if op_type in ("QuantizeLinear", "DequantizeLinear") else 17   # onnx's reference implements Q/DQ from 19 on
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=10)
        res = ReferenceEvaluator(model).run(None, {i: self.values[i] for i in inputs if i})
        self.values.update(zip(node.output, res))
        return outs

    # ---- quantization helpers -----------------------------------------------------------------
    def quantize(self, x: str, dtype=np.int8, relu: bool = False, qmax: int | None = None) -> str:
        """QuantizeLinear with an asymmetric scale / zero point covering x's calibration range
        (and 0) with the levels qmin..qmax (default: the type's); after a Relu the zero point is the
        lowest level, as TFLite and torch choose."""
        v = self.values[x]
        lo, hi = min(float(v.min()), 0.0), max(float(v.max()), 1e-3)
        if relu:
            lo = 0.0
        qmin, qmax = int(np.iinfo(dtype).min), int(np.iinfo(dtype).max) if qmax is None else qmax
        scale = np.float32((hi - lo) / (qmax - qmin))
        zp = int(np.clip(np.rint(qmin - lo / scale), qmin, qmax))
        return self.op("QuantizeLinear", x, self.const(scale, "scale"), self.const(np.array(zp, dtype), "zp"))

    def dequantize(self, q: str) -> str:
        """DequantizeLinear with the parameters of the QuantizeLinear that produced q (through
        int8 data movement such as Reshape)."""
        node = next(n for n in self.nodes if q in n.output)
        while node.op_type != "QuantizeLinear":
            node = next(n for n in self.nodes if node.input[0] in n.output)
        return self.op("DequantizeLinear", q, *node.input[1:])

    def weight(self, w: np.ndarray, axis: int | None) -> tuple[str, np.ndarray]:
        """Symmetric int8 weight (±127, zero point 0) per tensor or per `axis`: (DQ output, scales)."""
        red = tuple(k for k in range(w.ndim) if k != axis) if axis is not None else None
        amax = np.maximum(np.abs(w).max(axis=red), 1e-8)
        scale = (amax / 127).astype(np.float32)
        shape = [1] * w.ndim
        if axis is not None:
            shape[axis] = -1
        q = np.clip(np.rint(w / scale.reshape(shape)), -127, 127).astype(np.int8)
        zp = np.zeros(scale.shape, np.int8)
        kw = {"axis": axis} if axis is not None else {}
        return self.op("DequantizeLinear", self.const(q, "w"), self.const(scale, "w_scale"), self.const(zp, "w_zp"),
                       **kw), scale

    def int32_bias(self, b: np.ndarray, scale: np.ndarray) -> str:
        """DQ(int32 bias, scale sx·sw, zero point 0), as TFLite stores it (per channel on axis 0)."""
        scale = np.asarray(scale, np.float32)
        q = np.rint(b / scale).astype(np.int32)
        kw = {"axis": 0} if scale.size > 1 else {}
        return self.op("DequantizeLinear", self.const(q, "b"), self.const(scale, "b_scale"),
                       self.const(np.zeros(scale.shape, np.int32), "b_zp"), **kw)

    def scale_of(self, dq: str) -> np.float32:
        node = next(n for n in self.nodes if dq in n.output)
        return np.float32(numpy_helper.to_array(self.consts[node.input[1]]))

    def he(self, shape, fan_in):
        return self.rng.normal(0.0, np.sqrt(2.0 / fan_in), size=shape).astype(np.float32)


# ---- tf2onnx from TFLite int8 ------------------------------------------------------------------
def _tfl_activation(g: QdqBuilder, y: str, act: str | None) -> tuple[str, bool]:
    if act == "relu":
        return g.op("Relu", y), True
    if act == "relu6":   # tf2onnx writes RELU6 as Clip with min / max inputs
        return g.op("Clip", y, g.const(np.float32(0.0), "clip_min"), g.const(np.float32(6.0), "clip_max")), True
    return y, False


def _tfl_dense(g: QdqBuilder, x_dq: str, n_out: int, act: str | None) -> str:
    """DQ(x) · DQ(W) → MatMul → Add(DQ(int32 bias)) → [Relu] → Q(int8); returns the Q output."""
    k = g.shape(x_dq)[-1]
    w, sw = g.weight(g.he((k, n_out), k), axis=None)
    b = g.int32_bias(g.rng.normal(0, 0.1, n_out).astype(np.float32), g.scale_of(x_dq) * sw)
    y, relu = _tfl_activation(g, g.op("Add", g.op("MatMul", x_dq, w), b), act)
    return g.quantize(y, relu=relu)


def _tfl_conv(g: QdqBuilder, x_dq: str, c_out: int, k, stride=1, pads=(0, 0, 0, 0), group=1, act="relu") -> str:
    c_in = g.shape(x_dq)[1]
    kh, kw = k
    w, sw = g.weight(g.he((c_out, c_in // group, kh, kw), c_in // group * kh * kw), axis=0)
    b = g.int32_bias(g.rng.normal(0, 0.1, c_out).astype(np.float32), g.scale_of(x_dq) * sw)
    y = g.op("Conv", x_dq, w, b, kernel_shape=[kh, kw], strides=[stride, stride], pads=list(pads), group=group,
             dilations=[1, 1])
    y, relu = _tfl_activation(g, y, act)
    return g.quantize(y, relu=relu)


def _int8_input(g: QdqBuilder, name: str, shape) -> tuple[str, str]:
    """(graph input, its DequantizeLinear): TFLite's int8 input quantization."""
    x = g.input(name, shape, TensorProto.INT8)
    s, z = g.const(np.float32(0.05), "in_scale"), g.const(np.int8(3), "in_zp")
    return x, (s, z)


def tflite_fc_autoencoder(seed: int = 0, sizes=(640, 128, 128, 128, 128, 8, 128, 128, 128, 128, 640)) -> onnx.ModelProto:
    """MLPerf Tiny anomaly detection (the AD benchmark's dense autoencoder) as tf2onnx writes its
    int8 TFLite model: int8 [1, 640] in and out, ten FC layers, Relu after all but the last."""
    g = QdqBuilder("tflite_fc_autoencoder", seed)
    x, (s, z) = _int8_input(g, "input_1", (1, sizes[0]))
    h = x
    for k, n in enumerate(sizes[1:]):
        h = _tfl_dense(g, g.op("DequantizeLinear", h, s, z) if k == 0 else g.dequantize(h), n,
                       "relu" if k < len(sizes) - 2 else None)
    g.output(h)
    return g.build()


def tflite_ds_cnn(seed: int = 0, channels: int = 64, blocks: int = 1, relu6: bool = False,
                  pool: str = "avg", nhwc_input: bool = False) -> onnx.ModelProto:
    """MLPerf Tiny keyword spotting (DS-CNN) as tf2onnx writes it: int8 [1, 49, 10, 1] MFCC input
    reshaped (int8) to NCHW, conv 10×4 stride 2, `blocks` × (depthwise 3×3 + pointwise 1×1), each
    with Relu (or Relu6 as Clip), a 25×5 AveragePool (or ReduceMean, TFLite's MEAN), the int8
    Reshape to [-1, C], FC 12 and Softmax. `nhwc_input`: the input is reordered by an int8
    Transpose (tf2onnx's form for an image input) instead of a Reshape."""
    g = QdqBuilder("tflite_ds_cnn", seed)
    act = "relu6" if relu6 else "relu"
    if nhwc_input:
        x = g.input("input_1", (1, 49, 10, 1), TensorProto.INT8)
        xr = g.op("Transpose", x, perm=[0, 3, 1, 2])
    else:
        x = g.input("input_1", (1, 49, 10, 1), TensorProto.INT8)
        xr = g.op("Reshape", x, g.const(np.array([1, 1, 49, 10], np.int64), "shape"))
    h = g.op("DequantizeLinear", xr, g.const(np.float32(0.58), "in_scale"), g.const(np.int8(83), "in_zp"))
    h = _tfl_conv(g, h, channels, (10, 4), stride=2, pads=(4, 1, 5, 1), act=act)
    for _ in range(blocks):
        h = _tfl_conv(g, g.dequantize(h), channels, (3, 3), pads=(1, 1, 1, 1), group=channels, act=act)
        h = _tfl_conv(g, g.dequantize(h), channels, (1, 1), act=act)
    hd = g.dequantize(h)
    q = next(n for n in g.nodes if h in n.output)
    if pool == "avg":   # the pool keeps its input's quantization
        p = g.op("QuantizeLinear", g.op("AveragePool", hd, kernel_shape=[25, 5], strides=[25, 5]), *q.input[1:])
    else:
        p = g.quantize(g.op("ReduceMean", hd, axes=[2, 3], keepdims=1))
    flat = g.op("Reshape", p, g.const(np.array([-1, channels], np.int64), "shape"))
    logits = _tfl_dense(g, g.dequantize(flat), 12, None)
    sm = g.op("Softmax", g.dequantize(logits), axis=-1)
    g.output(g.op("QuantizeLinear", sm, g.const(np.float32(1 / 256), "sm_scale"), g.const(np.int8(-128), "sm_zp")))
    return g.build()


# ---- torch.onnx.export of fake-quantized (QAT) / converted (PTQ) PyTorch models ------------------
def torch_cnn(seed: int = 0, size: int = 16, mode: str = "ptq", last_act: str = "hardtanh") -> onnx.ModelProto:
    """A small CNN (Conv3×3+ReLU, depthwise Conv3×3+ReLU6, Conv1×1+Hardtanh(0, 6), average pool,
    Linear) as torch.onnx.export (TorchScript exporter, opset 17, torch 2.13) writes it for eager-mode
    fbgemm quantization; float input and output.

    "ptq" (prepare / calibrate / convert, then export): Q(uint8) → Cast(uint8) → DQ on every
    activation, DQ(int8 W, axis 0), DQ(int32 b, axis 0) with its zero point from ConstantOfShape →
    Cast, activations as DQ → Relu / Clip → Q at the same scale, Flatten between DQ and Q.
    "qat" (prepare_qat, observers disabled, export): every fake-quant is Q(uint8) → Clip(max 127)
    (fbgemm's reduce_range) → DQ, weights Q(float W, axis 0) → DQ, float biases (Conv input, Gemm C,
    an Add(bias, MatMul) for a Linear on a 3-D input, with a Transpose of the weight), and the
    modules without an observer run on dequantized values: ReLU (DQ → Relu → Conv), Hardtanh and
    the pool (DQ → GlobalAveragePool → Flatten → Gemm, lowered as one integer QPoolMatMul). The last
    conv's activation `last_act`: "hardtanh" (its bound 6 lies between two grid values of that
    tensor's range here, so Clip → pool → Gemm stays a float island, as ONNX computes it) or "relu"."""
    g = QdqBuilder(f"torch_cnn_{mode}", seed)
    qat = mode == "qat"

    def fake_quant(y, relu=False):
        q = g.quantize(y, np.uint8, relu=relu, qmax=127 if qat else None)
        q = g.op("Clip", q, "", g.const(np.uint8(127), "qmax")) if qat else g.op("Cast", q, to=TensorProto.UINT8)
        return g.dequantize(q)

    def weight(w):
        if not qat:
            return g.weight(w, axis=0)[0]
        scale = (np.abs(w).reshape(len(w), -1).max(axis=1) / 127).astype(np.float32)
        zp = g.const(np.zeros(len(w), np.int8), "w_zp")
        q = g.op("QuantizeLinear", g.const(w, "w"), g.const(scale, "w_scale"), zp, axis=0)
        return g.op("DequantizeLinear", q, g.const(scale, "w_scale"), zp, axis=0)

    def bias(x_dq, w_dq, n):
        b = g.rng.normal(0, 0.1, n).astype(np.float32)
        if qat:
            return g.const(b, "bias")
        wnode = next(nd for nd in g.nodes if w_dq in nd.output)
        scale = g.scale_of(x_dq) * numpy_helper.to_array(g.consts[wnode.input[1]])
        zp = g.op("Cast", g.op("ConstantOfShape", g.const(np.array([n], np.int64), "shape"),
                               value=numpy_helper.from_array(np.zeros(1, np.int32))), to=TensorProto.INT32)
        return g.op("DequantizeLinear", g.const(np.rint(b / scale).astype(np.int32), "b"), g.const(scale, "b_scale"),
                    zp, axis=0)

    def activation(y_dq, act):
        """torch's ReLU / ReLU6 / Hardtanh(0, 6) module after a quantized op."""
        f = g.op("Relu", y_dq) if act == "relu" else g.op("Clip", y_dq, g.const(np.float32(0.0), "min"),
                                                            g.const(np.float32(6.0), "max"))
        if qat and act != "relu6":   # unobserved in QAT: the next op reads the float result
            return f
        return fake_quant(f, relu=True)

    x = g.input("x", (1, 3, size, size))
    h = fake_quant(x)
    for c_out, k, group, act in ((8, 3, 1, "relu"), (8, 3, 8, "relu6"), (16, 1, 1, last_act)):
        c_in = g.shape(h)[1]
        w = weight(g.he((c_out, c_in // group, k, k), c_in // group * k * k))
        y = g.op("Conv", h, w, bias(h, w, c_out), kernel_shape=[k, k], pads=[k // 2] * 4, group=group,
                 strides=[1, 1], dilations=[1, 1])
        h = activation(fake_quant(y), act)
    p = g.op("GlobalAveragePool", h)
    f = g.op("Flatten", p if qat else fake_quant(p), axis=1)
    f = f if qat else fake_quant(f)
    w = weight(g.he((10, 16), 16))
    y = fake_quant(g.op("Gemm", f, w, bias(f, w, 10), transB=1, alpha=1.0, beta=1.0))
    if qat:   # a Linear on a 3-D input: MatMul with the transposed weight, then Add(bias, ·)
        u = g.op("Unsqueeze", y, g.const(np.array([1], np.int64), "axes"))
        wt = g.op("Transpose", weight(g.he((10, 10), 10)), perm=[1, 0])
        z = fake_quant(g.op("Add", g.const(g.rng.normal(0, 0.1, 10).astype(np.float32), "bias"), g.op("MatMul", u, wt)))
        y = g.op("Squeeze", z, g.const(np.array([1], np.int64), "axes"))
    g.output(y)
    return g.build()


BUILDERS = {"tflite_fc_autoencoder": tflite_fc_autoencoder, "tflite_ds_cnn": tflite_ds_cnn, "torch_cnn": torch_cnn}
