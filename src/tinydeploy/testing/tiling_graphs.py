"""Lowered integer graphs of real network shapes for the tiling solver's tests and benchmarks.

Weights are zeros and requantization parameters dummies: tiling reads shapes, dtypes and
geometry only, so these graphs are built directly in the IR (no ONNX, no quantizer), in
milliseconds.

- MLPerf Tiny's networks: `ds_cnn()` (keyword spotting: 49x10 MFCC input, conv 10x4 stride 2 to
  64 channels, four depthwise-separable blocks, average pool, 12 classes), `mobilenet_v1()`
  (visual wake words, 96x96, width 0.25), `resnet8()` (CIFAR-10 32x32).
- `llm(rows)`: a language-model graph of stories260K's shapes (dim 64, hidden 172, 5 layers,
  8 heads, 4 KV heads, seq_len 512, vocab 512) from generic integer ops: RMS norms, linear layers
  (weights [N, K]), rotary and SwiGLU as elementwise ops, attention as matmuls batched over the KV
  heads (the query heads sharing one as rows) with each layer's KV cache as state and a row
  softmax over the whole cache (the worst case); rows = 1 is a decode step.
"""
from __future__ import annotations

import numpy as np

from ..ir import Graph, Node, Tensor

I8, I32 = np.dtype(np.int8), np.dtype(np.int32)


class _B:
    def __init__(self, name: str):
        self.g = Graph(name, {}, [], [], [])

    def t(self, name, shape, dtype=I8, state=False):
        self.g.tensors[name] = Tensor(name, tuple(shape), np.dtype(dtype), state=state)
        return name

    def w(self, name, shape, dtype=I8):
        self.g.tensors[name] = Tensor(name, tuple(shape), np.dtype(dtype), np.zeros(shape, dtype))
        return name

    def node(self, op, name, ins, out, shape, dtype=I8, **attrs):
        self.g.nodes.append(Node(op, name, ins, [out], attrs))
        return self.t(out, shape, dtype)


def _rq(k: int) -> dict:
    return dict(m=[1 << 30] * k, s=[31] * k, y_zp=0, lo=-128, hi=127)


def conv(b: _B, name, x, k_out, k, stride=1, pads=(0, 0, 0, 0), group=1, dil=1):
    """A QConv with bias; k = (KH, KW) or an int."""
    n, c, h, w = b.g.tensors[x].shape
    kh, kw = (k, k) if isinstance(k, int) else k
    oh = (h + pads[0] + pads[2] - (kh - 1) * dil - 1) // stride + 1
    ow = (w + pads[1] + pads[3] - (kw - 1) * dil - 1) // stride + 1
    ins = [x, b.w(name + "_w", (k_out, c // group, kh, kw)), b.w(name + "_b", (k_out,), I32)]
    return b.node("QConv", name, ins, name + "_y", (n, k_out, oh, ow), strides=[stride, stride],
                  pads=list(pads), dilations=[dil, dil], group=group, x_zp=0, w_zp=0, **_rq(k_out))


def linear(b: _B, name, x, n_out, bias=True):
    """A QMatMul with constant [N, K] weights (tb = 1), per-column requantization."""
    *lead, k = b.g.tensors[x].shape
    ins = [x, b.w(name + "_w", (n_out, k))] + ([b.w(name + "_b", (n_out,), I32)] if bias else [])
    return b.node("QMatMul", name, ins, name + "_y", (*lead, n_out), ta=0, tb=1, a_zp=0, b_zp=0, **_rq(n_out))


def ds_cnn() -> Graph:
    b = _B("ds_cnn")
    b.g.inputs = [b.t("input", (1, 1, 49, 10))]
    x = conv(b, "conv0", "input", 64, (10, 4), stride=2, pads=(4, 1, 5, 1))
    for i in range(4):
        x = conv(b, f"dw{i}", x, 64, 3, pads=(1, 1, 1, 1), group=64)
        x = conv(b, f"pw{i}", x, 64, 1)
    return _head(b, x, 12)


def _head(b: _B, x, classes: int):
    """Global average pool, flatten, fully connected."""
    _, c, h, w = b.g.tensors[x].shape
    x = b.node("QAvgPool", "pool", [x], "pool_y", (1, c, 1, 1), kernel_shape=[h, w], m=[1], s=[1], zx=0,
               zy=0, lo=-128, hi=127, cmin=h * w, include_pad=0)
    x = b.node("Reshape", "flatten", [x, b.w("flat_shape", (2,), np.int64)], "flat", (1, c))
    b.g.outputs = [linear(b, "fc", x, classes)]
    return b.g


def mobilenet_v1(size: int = 96, alpha: float = 0.25, classes: int = 2) -> Graph:
    """MobileNetV1 (MLPerf Tiny visual wake words: 96x96, width 0.25, 2 classes)."""
    b = _B("mobilenet_v1")
    b.g.inputs = [b.t("input", (1, 3, size, size))]
    ch = lambda c: max(8, int(c * alpha))  # noqa: E731
    x = conv(b, "conv0", "input", ch(32), 3, stride=2, pads=(0, 0, 1, 1))
    blocks = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2)] + [(512, 1)] * 5 + [(1024, 2), (1024, 1)]
    for i, (c, s) in enumerate(blocks):
        cin = b.g.tensors[x].shape[1]
        x = conv(b, f"dw{i}", x, cin, 3, stride=s, pads=(0, 0, 1, 1) if s == 2 else (1, 1, 1, 1), group=cin)
        x = conv(b, f"pw{i}", x, ch(c), 1)
    return _head(b, x, classes)


def resnet8(classes: int = 10) -> Graph:
    """ResNet-8 (MLPerf Tiny image classification: 32x32 CIFAR-10)."""
    b = _B("resnet8")
    b.g.inputs = [b.t("input", (1, 3, 32, 32))]
    x = conv(b, "conv0", "input", 16, 3, pads=(1, 1, 1, 1))
    for i, (c, s) in enumerate([(16, 1), (32, 2), (64, 2)]):
        y = conv(b, f"b{i}_conv1", x, c, 3, stride=s, pads=(1, 1, 1, 1))
        y = conv(b, f"b{i}_conv2", y, c, 3, pads=(1, 1, 1, 1))
        if s != 1:
            x = conv(b, f"b{i}_short", x, c, 1, stride=s)
        x = b.node("QAdd", f"b{i}_add", [x, y], f"b{i}_y", b.g.tensors[y].shape)
    return _head(b, x, classes)


def llm(rows: int = 1, dim=64, hidden=172, layers=5, heads=8, kv_heads=4, seq_len=512, vocab=512) -> Graph:
    b = _B(f"llm_{rows}")
    hs, kv, group = dim // heads, kv_heads * dim // heads, heads // kv_heads
    b.g.inputs = [b.t("x0", (rows, dim))]
    x = "x0"

    def norm(name, x):
        return b.node("QLayerNorm", name, [x], name + "_y", (rows, dim), axis=-1, rms=1, zx=0, E16=0,
                      Mg=[1] * dim, Bq=[0] * dim, Sg=1, lo=-128, hi=127)

    def elt(op, name, a, c):
        return b.node(op, name, [a, c], name + "_y", b.g.tensors[a].shape, za=0, zb=0, zy=0, ma=1, sa=1,
                      mb=1, sb=1, m=1, s=1, lo=-128, hi=127)

    def shape(name, x, to):
        return b.node("Reshape", name, [x, b.w(name + "_s", (len(to),), np.int64)], name + "_y", to)

    for l in range(layers):
        kc = b.t(f"kcache{l}", (kv_heads, seq_len, hs), state=True)
        vc = b.t(f"vcache{l}", (kv_heads, seq_len, hs), state=True)
        z = norm(f"att_norm{l}", x)
        q, k, v = (linear(b, f"w{w}{l}", z, n, bias=False) for w, n in (("q", dim), ("k", kv), ("v", kv)))
        q = elt("QMul", f"rope_q{l}", q, b.w(f"rope_q_tab{l}", (rows, dim)))
        elt("QMul", f"rope_k{l}", k, b.w(f"rope_k_tab{l}", (rows, kv)))
        # the query heads sharing a KV head become rows of one product with that head's cache
        qh = b.node("Transpose", f"q_heads{l}", [shape(f"q_split{l}", q, (rows, heads, hs))], f"qh{l}",
                    (heads, rows, hs), perm=[1, 0, 2])
        qh = shape(f"q_group{l}", qh, (kv_heads, group * rows, hs))
        sc = b.node("QMatMul", f"scores{l}", [qh, kc], f"sc{l}", (kv_heads, group * rows, seq_len), ta=0, tb=1,
                    a_zp=0, b_zp=0, **_rq(1))
        p = b.node("QSoftmax", f"softmax{l}", [sc], f"p{l}", (kv_heads, group * rows, seq_len), axis=-1,
                   table=[0] * 256, C=1, Sc=1, zy=0, lo=-128, hi=127)
        o = b.node("QMatMul", f"att_v{l}", [p, vc], f"o{l}", (kv_heads, group * rows, hs), ta=0, tb=0, a_zp=0,
                   b_zp=0, **_rq(1))
        o = b.node("Transpose", f"heads_back{l}", [shape(f"o_split{l}", o, (heads, rows, hs))], f"ot{l}",
                   (rows, heads, hs), perm=[1, 0, 2])
        o = shape(f"merge{l}", o, (rows, dim))
        x = elt("QAdd", f"att_add{l}", x, linear(b, f"wo{l}", o, dim, bias=False))
        z = norm(f"ffn_norm{l}", x)
        h1, h3 = linear(b, f"w1{l}", z, hidden, bias=False), linear(b, f"w3{l}", z, hidden, bias=False)
        s = b.node("QLut", f"silu{l}", [h1], f"silu{l}_y", (rows, hidden), table=[0] * 256)
        g = elt("QMul", f"gate{l}", s, h3)
        x = elt("QAdd", f"ffn_add{l}", x, linear(b, f"w2{l}", g, dim, bias=False))
    z = norm("final_norm", x)
    b.g.outputs = [linear(b, "classifier", z, vocab, bias=False)]
    b.g.validate()
    return b.g
