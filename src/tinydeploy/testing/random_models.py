"""Random small float ONNX graphs with valid static shapes, deterministic from a seed.

The generator walks forward from one input, each step applying an op chosen
among those valid for the current tensor's rank; binary ops and Concat take a
second operand from earlier tensors of a compatible shape (so graphs have
branches and joins) or from a constant.
"""

from __future__ import annotations

import numpy as np
import onnx

from .graph import GraphBuilder

SUPPORTED_OPS = (
    "Conv", "MatMul", "Gemm", "Add", "Mul", "Sub", "Relu", "Clip", "LeakyRelu", "Sigmoid",
    "Tanh", "MaxPool", "AveragePool", "GlobalAveragePool", "Concat", "Reshape", "Flatten",
    "Transpose", "Softmax", "LayerNormalization",
)  # fmt: skip

# Ops valid per input rank (pools and Conv need NCHW); Conv is listed three times so
# that image graphs are mostly convolutions, as real ones are.
_BY_RANK = {
    2: ("MatMul", "Gemm", "Add", "Mul", "Sub", "Relu", "Clip", "LeakyRelu", "Sigmoid", "Tanh",
        "Concat", "Reshape", "Softmax", "LayerNormalization"),
    3: ("MatMul", "Add", "Mul", "Sub", "Relu", "Clip", "LeakyRelu", "Sigmoid", "Tanh", "Concat",
        "Reshape", "Flatten", "Transpose", "Softmax", "LayerNormalization"),
    4: ("Conv", "Conv", "Conv", "Add", "Mul", "Sub", "Relu", "Clip", "LeakyRelu", "Sigmoid", "Tanh",
        "MaxPool", "AveragePool", "GlobalAveragePool", "Concat", "Reshape", "Flatten", "Transpose",
        "Softmax"),
}  # fmt: skip
_MAX_ELEMS = 4096  # keeps every model tiny: tests quantize and run 60 of them in each format


class _Gen:
    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)
        self.g = GraphBuilder(f"random_{seed}", seed)
        self.history: list[str] = []
        self.used: list[str] = []

    def pick(self, seq):
        return seq[int(self.rng.integers(len(seq)))]

    def chance(self, p: float) -> bool:
        return bool(self.rng.random() < p)

    def size(self, t: str) -> int:
        return int(np.prod(self.g.shape(t)))

    # -- second operands ------------------------------------------------------
    def partner(self, x: str) -> str | None:
        """An earlier tensor with x's shape, or None."""
        shape = self.g.shape(x)
        cands = [t for t in self.history if t != x and self.g.shape(t) == shape]
        return self.pick(cands) if cands else None

    def branch(self, x: str) -> str:
        """A cheap second path from x, so joins exist even without history."""
        return self.g.op(self.pick(("Relu", "Sigmoid", "Tanh")), x)

    def broadcast_const(self, x: str) -> str:
        shape = self.g.shape(x)
        options = [(1,), (shape[-1],), shape[1:]]
        if len(shape) == 4:
            options.append((shape[1], 1, 1))  # per-channel, as folded BatchNorm would be
        cshape = self.pick(options)
        return self.g.const(self.rng.normal(0.5, 0.5, cshape).astype(np.float32), "k")

    # -- ops ----------------------------------------------------------------
    def apply(self, op: str, x: str) -> str:
        g, shape = self.g, self.g.shape(x)
        if op == "Conv":
            return self.conv(x)
        if op == "MatMul":
            other = self.partner(x) if len(shape) == 3 else None
            if other is not None and self.chance(0.5):
                # activation x activation, as in attention scores
                return g.op("MatMul", x, g.op("Transpose", other, perm=[0, 2, 1]))
            n = int(self.rng.integers(2, 33))
            y = g.op("MatMul", x, g.weight((shape[-1], n), shape[-1]))
            return g.op("Add", y, g.bias(n)) if self.chance(0.5) else y
        if op == "Gemm":
            n, trans_b = int(self.rng.integers(2, 33)), int(self.chance(0.5))
            w = g.weight((n, shape[1]) if trans_b else (shape[1], n), shape[1])
            ins = [x, w] + ([g.bias(n)] if self.chance(0.8) else [])
            return g.op("Gemm", *ins, transB=trans_b)
        if op in ("Add", "Mul", "Sub"):
            other = self.partner(x) if self.chance(0.6) else None
            if other is None:
                other = self.branch(x) if self.chance(0.4) else self.broadcast_const(x)
            a, b = (other, x) if self.chance(0.3) else (x, other)
            return g.op(op, a, b)
        if op in ("Relu", "Sigmoid", "Tanh"):
            return g.op(op, x)
        if op == "LeakyRelu":
            return g.op(op, x, alpha=float(self.pick((0.01, 0.1, 0.2))))
        if op == "Clip":
            lo, hi = self.pick(((0.0, 6.0), (-1.0, 1.0), (0.0, 1.0), (None, 2.0), (-0.5, None)))
            ins = [x, "" if lo is None else g.const(np.float32(lo), "lo")]
            if hi is not None:
                ins.append(g.const(np.float32(hi), "hi"))
            return g.op("Clip", *ins)
        if op in ("MaxPool", "AveragePool"):
            return self.pool(op, x)
        if op == "GlobalAveragePool":
            return g.op(op, x)
        if op == "Concat":
            return self.concat(x)
        if op == "Reshape":
            return self.reshape(x)
        if op == "Flatten":
            return g.op("Flatten", x, axis=1)
        if op == "Transpose":
            perm = [0] + [int(i) + 1 for i in self.rng.permutation(len(shape) - 1)]
            return g.op("Transpose", x, perm=perm)
        if op == "Softmax":
            return g.op("Softmax", x, axis=int(self.pick((-1, 1))))
        if op == "LayerNormalization":
            d = shape[-1]
            gamma = g.const((1 + 0.1 * self.rng.normal(size=d)).astype(np.float32), "ln_g")
            return g.op(op, x, gamma, g.bias(d, "ln_b"), axis=-1, epsilon=1e-5)
        raise AssertionError(op)

    def conv(self, x: str) -> str:
        g = self.g
        _, c, h, w = g.shape(x)
        for _ in range(20):
            kind = self.pick(("plain", "depthwise", "strided", "dilated", "pointwise"))
            k = 1 if kind == "pointwise" else 3
            stride = 2 if kind == "strided" else 1
            dil = 2 if kind == "dilated" else 1
            pads = [int(p) for p in self.rng.integers(0, 2, 4)] if k > 1 else [0, 0, 0, 0]
            eff = dil * (k - 1) + 1
            oh = (h + pads[0] + pads[2] - eff) // stride + 1
            ow = (w + pads[1] + pads[3] - eff) // stride + 1
            if oh >= 1 and ow >= 1:
                break
        else:
            kind, k, stride, dil, pads = "pointwise", 1, 1, 1, [0, 0, 0, 0]
        group = c if kind == "depthwise" else 1
        c_out = c if kind == "depthwise" else int(self.rng.integers(1, 13))
        wt = g.weight((c_out, c // group, k, k), (c // group) * k * k)
        ins = [x, wt] + ([g.bias(c_out)] if self.chance(0.8) else [])
        return g.op("Conv", *ins, kernel_shape=[k, k], strides=[stride] * 2, pads=pads,
                    dilations=[dil] * 2, group=group)  # fmt: skip

    def pool(self, op: str, x: str) -> str:
        _, _, h, w = self.g.shape(x)
        k = int(self.pick((2, 3)))
        pad = int(self.pick((0, 1))) if k == 3 else 0
        if min(h, w) + 2 * pad < k:
            k, pad = 1, 0
        attrs = dict(kernel_shape=[k, k], strides=[int(self.pick((1, 2)))] * 2, pads=[pad] * 4)
        if op == "AveragePool":
            attrs["count_include_pad"] = int(self.chance(0.5))
        return self.g.op(op, x, **attrs)

    def concat(self, x: str) -> str:
        shape = self.g.shape(x)
        axis = int(self.rng.integers(1, len(shape)))
        others = [
            t for t in self.history if t != x and len(self.g.shape(t)) == len(shape)
            and all(a == b for i, (a, b) in enumerate(zip(self.g.shape(t), shape)) if i != axis)
        ]  # fmt: skip
        parts = [x, self.pick(others) if others else self.branch(x)]
        if self.chance(0.3):
            parts.append(self.g.const(self.rng.normal(size=shape).astype(np.float32), "cat"))
        return self.g.op("Concat", *parts, axis=axis)

    def reshape(self, x: str) -> str:
        shape = self.g.shape(x)
        n = int(np.prod(shape[1:]))
        divisors = [d for d in range(2, n) if n % d == 0]
        options = [[1, n]]
        if divisors:
            d = self.pick(divisors)
            options.append([1, d, n // d])
            sub = [e for e in range(2, n // d) if (n // d) % e == 0]
            if sub:
                e = self.pick(sub)
                options.append([1, d, e, n // d // e])
        target = list(self.pick(options))
        if self.chance(0.3):
            target[-1] = -1  # exporters emit -1; the frontend must resolve it
        return self.g.op("Reshape", x, self.g.const(np.array(target, np.int64), "shape"))

    def run(self, max_ops: int) -> onnx.ModelProto:
        g = self.g
        kind = self.pick(("image", "image", "vector", "sequence"))
        if kind == "image":
            s = int(self.rng.integers(5, 13))
            shape = (1, int(self.rng.integers(1, 9)), s, s + int(self.rng.integers(0, 3)))
        elif kind == "vector":
            shape = (1, int(self.rng.integers(4, 49)))
        else:
            shape = (1, int(self.rng.integers(2, 11)), int(self.rng.integers(4, 25)))
        x = g.input("input", shape)
        self.history.append(x)
        for _ in range(int(self.rng.integers(3, max_ops + 1))):
            rank = len(g.shape(x))
            op = self.pick(_BY_RANK[rank])
            y = self.apply(op, x)
            self.used.append(op)
            self.history.append(y)
            x = y
            if self.size(x) > _MAX_ELEMS:  # too big to grow further: pool it or stop here
                if len(g.shape(x)) != 4:
                    break
                x = g.op("GlobalAveragePool", x)
        g.output(x)
        # A second output now and then: the frontend must handle several graph outputs.
        side = [t for t in self.history[1:-1] if t != x]
        if side and self.chance(0.2):
            g.output(self.pick(side))
        return g.build()


def single_op(op: str, seed: int = 0) -> onnx.ModelProto:
    """input -> producer -> `op` -> output, for per-op pattern tables and unit tests.

    The producer (a 1x1 Conv for NCHW ops, a square MatMul otherwise) keeps the
    shape and makes `op`'s input an already-quantized activation, which is how
    the op appears in real graphs: several quantizer rules (Relu/Clip removal,
    same-scale ops) depend on whether the input is quantized.
    """
    if op not in SUPPORTED_OPS:
        raise ValueError(f"unsupported op {op!r}")
    gen = _Gen(seed)
    g = gen.g
    if op in ("Conv", "MaxPool", "AveragePool", "GlobalAveragePool"):
        x = g.input("input", (1, 4, 8, 8))
        y = g.op("Conv", x, g.weight((4, 4, 1, 1), 4), g.bias(4), kernel_shape=[1, 1])
    else:
        x = g.input("input", (1, 16) if op == "Gemm" else (1, 6, 16))
        y = g.op("MatMul", x, g.weight((16, 16), 16))
    gen.history += [x, y]
    g.output(gen.apply(op, y))
    model = g.build()
    model.doc_string = f"ops: {op}"
    return model


def random_model(seed: int, max_ops: int = 8) -> onnx.ModelProto:
    """A small random float model; the same seed always gives the same bytes."""
    gen = _Gen(seed)
    model = gen.run(max_ops)
    model.doc_string = "ops: " + " ".join(gen.used)
    return model
