"""Hand-written float test models: a CNN, an MLP and a transformer block.

Each builder is deterministic from `seed` and has static shapes; the structure
is fixed so that docs/quantized_patterns.md can name the exact nodes the
onnxruntime quantizer produces for them.
"""

from __future__ import annotations

import numpy as np
import onnx

from .graph import GraphBuilder


def _conv(g: GraphBuilder, x: str, c_out: int, k, *, stride=1, pad=0, group=1, bias=True) -> str:
    """k: size or (kh, kw); pad: all sides or ONNX pads (top, left, bottom, right)."""
    c_in = g.shape(x)[1]
    kh, kw = (k, k) if isinstance(k, int) else k
    w = g.weight((c_out, c_in // group, kh, kw), fan_in=(c_in // group) * kh * kw)
    ins = [x, w] + ([g.bias(c_out)] if bias else [])
    return g.op("Conv", *ins, kernel_shape=[kh, kw], strides=[stride, stride],
                pads=[pad] * 4 if isinstance(pad, int) else list(pad), group=group)


def cnn(seed: int = 0, size: int = 16) -> onnx.ModelProto:
    """1x3xSxS image -> 10 logits.

    conv3x3+Relu, depthwise3x3+Clip(0,6), pointwise1x1 (no bias, to cover the
    bias-less Conv case), residual Add + Relu, strided conv3x3+Relu,
    conv3x3+Clip(0,6), GlobalAveragePool, Flatten, Gemm(transB=1).
    """
    g = GraphBuilder("cnn", seed)
    x = g.input("input", (1, 3, size, size))
    zero, six = g.const(np.float32(0.0), "clip_min"), g.const(np.float32(6.0), "clip_max")
    a = g.op("Relu", _conv(g, x, 8, 3, pad=1))
    d = g.op("Clip", _conv(g, a, 8, 3, pad=1, group=8), zero, six)
    p = _conv(g, d, 8, 1, bias=False)
    r = g.op("Relu", g.op("Add", a, p))
    s = g.op("Relu", _conv(g, r, 16, 3, stride=2, pad=1))
    t = g.op("Clip", _conv(g, s, 16, 3, pad=1), zero, six)
    f = g.op("Flatten", g.op("GlobalAveragePool", t), axis=1)
    w = g.weight((10, 16), fan_in=16)
    g.output(g.op("Gemm", f, w, g.bias(10), transB=1))
    return g.build()


def mlp(seed: int = 0) -> onnx.ModelProto:
    """1x4x8 -> 10: Flatten, MatMul+Add, Relu, Gemm(transB=1), Sigmoid, Gemm."""
    g = GraphBuilder("mlp", seed)
    x = g.input("input", (1, 4, 8))
    f = g.op("Flatten", x, axis=1)
    h = g.op("Relu", g.op("Add", g.op("MatMul", f, g.weight((32, 64), 32)), g.bias(64)))
    h = g.op("Sigmoid", g.op("Gemm", h, g.weight((32, 64), 64), g.bias(32), transB=1))
    g.output(g.op("Gemm", h, g.weight((32, 10), 32), g.bias(10)))
    return g.build()


def _linear(g: GraphBuilder, x: str, n_out: int) -> str:
    n_in = g.shape(x)[-1]
    # Xavier-like std for projections: no Relu follows, so He scaling would grow the residual stream.
    w = g.const(g.rng.normal(0, 1 / np.sqrt(n_in), (n_in, n_out)).astype(np.float32), "w")
    return g.op("Add", g.op("MatMul", x, w), g.bias(n_out))


def _layernorm(g: GraphBuilder, x: str) -> str:
    d = g.shape(x)[-1]
    gamma = g.const((1 + 0.1 * g.rng.normal(size=d)).astype(np.float32), "ln_g")
    return g.op("LayerNormalization", x, gamma, g.bias(d, "ln_b"), axis=-1, epsilon=1e-5)


def transformer_block(seed: int = 0, seq: int = 8, d_model: int = 32, heads: int = 4, ffn: int = 64) -> onnx.ModelProto:
    """Pre-norm encoder block, input/output 1 x seq x d_model.

    Attention scores are scaled with Mul(1/sqrt(head_dim)); GELU is written
    out with Erf and Div(x, sqrt 2), as an opset-17 exporter emits it (the Gelu
    op only exists from opset 20).
    """
    hd = d_model // heads
    g = GraphBuilder("transformer_block", seed)
    x = g.input("input", (1, seq, d_model))
    h = _layernorm(g, x)
    split = g.const(np.array([1, seq, heads, hd], np.int64), "shape")

    def heads_of(t: str, perm) -> str:
        return g.op("Transpose", g.op("Reshape", t, split), perm=perm)

    q = heads_of(_linear(g, h, d_model), [0, 2, 1, 3])  # 1,H,S,hd
    kt = heads_of(_linear(g, h, d_model), [0, 2, 3, 1])  # 1,H,hd,S
    v = heads_of(_linear(g, h, d_model), [0, 2, 1, 3])  # 1,H,S,hd
    scores = g.op("Mul", g.op("MatMul", q, kt), g.const(np.float32(1 / np.sqrt(hd)), "scale"))
    attn = g.op("Softmax", scores, axis=-1)
    ctx = g.op("Transpose", g.op("MatMul", attn, v), perm=[0, 2, 1, 3])
    ctx = g.op("Reshape", ctx, g.const(np.array([1, seq, d_model], np.int64), "shape"))
    x1 = g.op("Add", x, _linear(g, ctx, d_model))
    u = _linear(g, _layernorm(g, x1), ffn)
    erf = g.op("Erf", g.op("Div", u, g.const(np.float32(np.sqrt(2.0)), "sqrt2")))
    gelu = g.op("Mul", g.op("Mul", u, g.const(np.float32(0.5), "half")), g.op("Add", erf, g.const(np.float32(1.0), "one")))
    g.output(g.op("Add", x1, _linear(g, gelu, d_model)))
    return g.build()


BUILDERS = {"cnn": cnn, "mlp": mlp, "transformer_block": transformer_block}


# ---- MLPerf Tiny shapes (benchmarks; not in BUILDERS) ---------------------------------------------
def _classifier(g: GraphBuilder, x: str, classes: int) -> onnx.ModelProto:
    f = g.op("Flatten", g.op("GlobalAveragePool", x), axis=1)
    c = g.shape(f)[1]
    g.output(g.op("Gemm", f, g.weight((classes, c), fan_in=c), g.bias(classes), transB=1))
    return g.build()


def ds_cnn(seed: int = 0) -> onnx.ModelProto:
    """DS-CNN keyword spotting (MLPerf Tiny KWS): 1x1x49x10 MFCC -> 12 classes, 64 channels."""
    g = GraphBuilder("ds_cnn", seed)
    x = g.op("Relu", _conv(g, g.input("input", (1, 1, 49, 10)), 64, (10, 4), stride=2, pad=(4, 1, 5, 1)))
    for _ in range(4):
        x = g.op("Relu", _conv(g, x, 64, 3, pad=1, group=64))
        x = g.op("Relu", _conv(g, x, 64, 1))
    return _classifier(g, x, 12)


def mobilenet_v1(seed: int = 0, size: int = 96, alpha: float = 0.25, classes: int = 2) -> onnx.ModelProto:
    """MobileNetV1 (MLPerf Tiny visual wake words: 96x96, width 0.25, 2 classes)."""
    g = GraphBuilder("mobilenet_v1", seed)
    ch = lambda c: max(8, int(c * alpha))  # noqa: E731
    x = g.op("Relu", _conv(g, g.input("input", (1, 3, size, size)), ch(32), 3, stride=2, pad=(0, 0, 1, 1)))
    for c, s in [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2)] + [(512, 1)] * 5 + [(1024, 2), (1024, 1)]:
        cin = g.shape(x)[1]
        x = g.op("Relu", _conv(g, x, cin, 3, stride=s, pad=(0, 0, 1, 1) if s == 2 else 1, group=cin))
        x = g.op("Relu", _conv(g, x, ch(c), 1))
    return _classifier(g, x, classes)


def resnet8(seed: int = 0, classes: int = 10) -> onnx.ModelProto:
    """ResNet-8 (MLPerf Tiny image classification: 32x32 CIFAR-10)."""
    g = GraphBuilder("resnet8", seed)
    x = g.op("Relu", _conv(g, g.input("input", (1, 3, 32, 32)), 16, 3, pad=1))
    for c, s in [(16, 1), (32, 2), (64, 2)]:
        y = g.op("Relu", _conv(g, x, c, 3, stride=s, pad=1))
        y = _conv(g, y, c, 3, pad=1)
        if s != 1:
            x = _conv(g, x, c, 1, stride=s)
        x = g.op("Relu", g.op("Add", x, y))
    return _classifier(g, x, classes)


MLPERF_TINY = {"ds_cnn": ds_cnn, "mobilenet_v1": mobilenet_v1, "resnet8": resnet8}


def mlperf_tiny_int8(name: str) -> tuple[onnx.ModelProto, dict[str, np.ndarray]]:
    """MLPERF_TINY[name] quantized by onnxruntime (QDQ, int8, per-channel) and one random input: the
    form every benchmark runs (cluster.py, mlperf_rv32.py), so their figures are of the same model."""
    from .quant import quantize, random_inputs
    q = quantize(MLPERF_TINY[name](), fmt="qdq", activation="int8", weight="int8", per_channel=True)
    return q, random_inputs(q, seed=1)[0]
