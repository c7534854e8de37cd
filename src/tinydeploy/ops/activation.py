"""Float elementwise activations and unary math: Relu … Mish, Sin, Sign, IsNaN, PRelu, Clip.

Golden functions follow the ONNX definitions in the input's dtype (float32 for kernels; any dtype
when constant folding). C kernels (runtime/kernels/activation.h) exist for float32 only, except
Clip, which has one per numeric type (node tests clip int8). Integer (QDQ) graphs never run these
kernels: passes/lut.py turns DequantizeLinear → activation → QuantizeLinear into a 256-entry table
evaluated with these golden functions.
"""
from __future__ import annotations

import math

import numpy as np

from ..codegen.ctext import c_literal
from ..errors import TinydeployError
from . import nd
from .registry import register
from .tiles import elementwise


def _f(fn):
    """Evaluate in the input's float type; silence overflow warnings (inf is the right answer)."""
    def run(x, a, b):
        with np.errstate(all="ignore"):
            return np.asarray(fn(x, a, b)).astype(x.dtype)
    return run


_erf = np.vectorize(math.erf, otypes=[np.float64])


def _softplus(x):
    return np.log1p(np.exp(x.astype(np.float64)))


SELU_A, SELU_G = 1.67326319217681884765625, 1.05070102214813232421875

# op → (C kernel name, golden(x, a, b), (attr a, default), (attr b, default))
UNARY = {
    "Relu": ("relu", lambda x, a, b: np.where(x < 0, 0, x), None, None),
    "LeakyRelu": ("leaky_relu", lambda x, a, b: np.where(x < 0, x * a, x), ("alpha", 0.01), None),
    "ThresholdedRelu": ("thresholded_relu", lambda x, a, b: np.where(x > a, x, 0), ("alpha", 1.0), None),
    "Sigmoid": ("sigmoid", lambda x, a, b: 1 / (1 + np.exp(-x)), None, None),
    "HardSigmoid": ("hard_sigmoid", lambda x, a, b: np.clip(x * a + b, 0, 1), ("alpha", 0.2), ("beta", 0.5)),
    "HardSwish": ("hard_swish", lambda x, a, b: x * np.clip(x * np.float32(1 / 6) + np.float32(0.5), 0, 1),
                  None, None),
    "Swish": ("swish", lambda x, a, b: x / (1 + np.exp(-a * x)), ("alpha", 1.0), None),
    "Tanh": ("tanh", lambda x, a, b: np.tanh(x), None, None),
    "Erf": ("erf", lambda x, a, b: _erf(x), None, None),
    # numpy's float32 exp is up to 1 ulp off (0.25 at exp(20)); float64 rounded once is libm's expf
    "Exp": ("exp", lambda x, a, b: np.exp(x.astype(np.float64)), None, None),
    "Log": ("log", lambda x, a, b: np.log(x), None, None),
    "Abs": ("abs", lambda x, a, b: np.abs(x), None, None),
    "Neg": ("neg", lambda x, a, b: -x, None, None),
    "Floor": ("floor", lambda x, a, b: np.floor(x), None, None),
    "Ceil": ("ceil", lambda x, a, b: np.ceil(x), None, None),
    "Round": ("round", lambda x, a, b: np.round(x), None, None),
    "Reciprocal": ("reciprocal", lambda x, a, b: 1 / x, None, None),
    "Softplus": ("softplus", lambda x, a, b: _softplus(x), None, None),
    "Softsign": ("softsign", lambda x, a, b: x / (1 + np.abs(x)), None, None),
    "Elu": ("elu", lambda x, a, b: np.where(x < 0, a * np.expm1(x.astype(np.float64)), x), ("alpha", 1.0), None),
    "Selu": ("selu", lambda x, a, b: np.where(x <= 0, b * (a * np.exp(x.astype(np.float64)) - a), b * x),
             ("alpha", SELU_A), ("gamma", SELU_G)),
    "Celu": ("celu", lambda x, a, b: np.maximum(x, 0) + np.minimum(0, a * np.expm1(x.astype(np.float64) / a)),
             ("alpha", 1.0), None),
    "Mish": ("mish", lambda x, a, b: x * np.tanh(_softplus(x)), None, None),
    "Sin": ("sin", lambda x, a, b: np.sin(x), None, None),
    "Cos": ("cos", lambda x, a, b: np.cos(x), None, None),
    "Tan": ("tan", lambda x, a, b: np.tan(x), None, None),
    "Sinh": ("sinh", lambda x, a, b: np.sinh(x), None, None),
    "Cosh": ("cosh", lambda x, a, b: np.cosh(x), None, None),
    "Asin": ("asin", lambda x, a, b: np.arcsin(x), None, None),
    "Acos": ("acos", lambda x, a, b: np.arccos(x), None, None),
    "Atan": ("atan", lambda x, a, b: np.arctan(x), None, None),
    "Asinh": ("asinh", lambda x, a, b: np.arcsinh(x), None, None),
    "Acosh": ("acosh", lambda x, a, b: np.arccosh(x), None, None),
    "Atanh": ("atanh", lambda x, a, b: np.arctanh(x), None, None),
    "Sign": ("sign", lambda x, a, b: np.sign(x), None, None),
    "Shrink": ("shrink", lambda x, a, b: np.where(x < -a, x + b, np.where(x > a, x - b, 0)),
               ("lambd", 0.5), ("bias", 0.0)),
}


def _params(node, spec):
    out = []
    for p in spec:
        out.append(0.0 if p is None else float(node.attr(p[0], p[1])))
    return out


def _need_f32(node, graph, *names):
    for n in names:
        if n and graph.tensors[n].dtype != np.float32:
            raise TinydeployError(f"node {node.name} ({node.op}): C kernel supports float32 only, "
                                  f"'{n}' is {np.dtype(graph.tensors[n].dtype).name}")


def _unary_kernel(op: str):
    cname, fn, pa, pb = UNARY[op]
    golden_fn = _f(fn)

    def emit(node, graph, ctx):
        _need_f32(node, graph, node.inputs[0])
        kname = cname
        a, b = _params(node, (pa, pb))
        n = graph.tensors[node.inputs[0]].size
        return (f"td_{kname}_f32({ctx.ptr(node.inputs[0])}, {ctx.ptr(node.outputs[0])}, {n}, "
                f"{c_literal(a, np.float32)}, {c_literal(b, np.float32)});")

    def golden(node, graph, args):
        x = np.asarray(args[0])
        if x.dtype.kind not in "f":   # integer Abs/Neg/Sign/Relu when folding constants
            with np.errstate(all="ignore"):
                return [np.asarray(fn(x, *_params(node, (pa, pb)))).astype(x.dtype)]
        a, b = _params(node, (pa, pb))
        return [golden_fn(x, x.dtype.type(a), x.dtype.type(b))]

    return emit, golden


for _op in UNARY:
    _emit, _golden = _unary_kernel(_op)
    register(_op, emit=_emit, inplace=True, header="activation.h", tiling=elementwise)(_golden)


# ---- Gelu (opset 20): exact erf form or the tanh approximation ------------------------------
def _gelu(x, approx):
    x64 = x.astype(np.float64)
    if approx == "tanh":
        y = 0.5 * x64 * (1 + np.tanh(math.sqrt(2 / math.pi) * (x64 + 0.044715 * x64 ** 3)))
    else:
        y = 0.5 * x64 * (1 + _erf(x64 / math.sqrt(2)))
    return y.astype(x.dtype)


def _emit_gelu(node, graph, ctx):
    _need_f32(node, graph, node.inputs[0])
    k = "gelu_tanh" if node.attr("approximate", "none") == "tanh" else "gelu"
    n = graph.tensors[node.inputs[0]].size
    return f"td_{k}_f32({ctx.ptr(node.inputs[0])}, {ctx.ptr(node.outputs[0])}, {n}, 0.0f, 0.0f);"


@register("Gelu", emit=_emit_gelu, inplace=True, header="activation.h", tiling=elementwise)
def gelu(node, graph, args):
    return [_gelu(np.asarray(args[0]), node.attr("approximate", "none"))]


# ---- IsNaN / IsInf: bool outputs -------------------------------------------------------------
def _emit_isnan(node, graph, ctx):
    _need_f32(node, graph, node.inputs[0])
    return f"td_isnan_f32({ctx.ptr(node.inputs[0])}, {ctx.ptr(node.outputs[0])}, {graph.tensors[node.inputs[0]].size});"


@register("IsNaN", emit=_emit_isnan, header="activation.h")
def isnan(node, graph, args):
    return [np.isnan(args[0])]


def _emit_isinf(node, graph, ctx):
    _need_f32(node, graph, node.inputs[0])
    pos, neg = int(node.attr("detect_positive", 1)), int(node.attr("detect_negative", 1))
    return (f"td_isinf_f32({ctx.ptr(node.inputs[0])}, {ctx.ptr(node.outputs[0])}, "
            f"{graph.tensors[node.inputs[0]].size}, {pos}, {neg});")


@register("IsInf", emit=_emit_isinf, header="activation.h")
def isinf(node, graph, args):
    x = args[0]
    pos, neg = node.attr("detect_positive", 1), node.attr("detect_negative", 1)
    return [(np.isposinf(x) & bool(pos)) | (np.isneginf(x) & bool(neg))]


# ---- PRelu: slope broadcast (unidirectionally) against x -------------------------------------
def _emit_prelu(node, graph, ctx):
    _need_f32(node, graph, node.inputs[0], node.inputs[1])
    out = graph.tensors[node.outputs[0]].shape
    dims, (xs, ss) = nd.collapse(out, nd.bcast_strides(graph.tensors[node.inputs[0]].shape, out),
                                 nd.bcast_strides(graph.tensors[node.inputs[1]].shape, out))
    arr = ctx.array(node.name + "_nd", np.array(dims + xs + ss, np.int32))
    r = len(dims)
    return (f"td_prelu_f32({ctx.ptr(node.inputs[0])}, {ctx.ptr(node.inputs[1])}, {ctx.ptr(node.outputs[0])}, "
            f"{r}, {arr}, {arr} + {r}, {arr} + {2 * r});")


@register("PRelu", emit=_emit_prelu, header="activation.h")
def prelu(node, graph, args):
    x, s = args
    return [np.where(x < 0, x * s, x).astype(x.dtype)]


# ---- Clip: opset < 11 attributes, 11+ optional inputs; bounds must be constant for C ----------
def clip_limits(node, graph, args=None):
    """(lo, hi) as Python numbers or None."""
    if node.attr("_opset", 13) < 11:
        return node.attr("min", None), node.attr("max", None)
    out = []
    for k in (1, 2):
        name = node.inputs[k] if len(node.inputs) > k else ""
        if not name:
            out.append(None)
            continue
        v = args[k] if args is not None else graph.const(name)
        if v is None:
            raise TinydeployError(f"node {node.name} (Clip): bound '{name}' must be a constant")
        out.append(np.asarray(v).reshape(()).item())
    return tuple(out)


def _emit_clip(node, graph, ctx):
    x = graph.tensors[node.inputs[0]]
    lo, hi = clip_limits(node, graph)
    dt = np.dtype(x.dtype)
    if dt.kind == "f":
        lo = -np.inf if lo is None else lo
        hi = np.inf if hi is None else hi
    else:
        info = np.iinfo(dt)
        lo = info.min if lo is None else lo
        hi = info.max if hi is None else hi
    if dt == np.bool_ or (dt.kind == "f" and dt.itemsize != 4 and dt.itemsize != 8):
        raise TinydeployError(f"node {node.name} (Clip): type {dt.name} is not supported")
    return (f"td_clip_{nd.suffix(dt)}({ctx.ptr(node.inputs[0])}, {ctx.ptr(node.outputs[0])}, {x.size}, "
            f"{c_literal(lo, dt)}, {c_literal(hi, dt)});")


@register("Clip", emit=_emit_clip, inplace=True, header="activation.h", tiling=elementwise)
def clip(node, graph, args):
    x = np.asarray(args[0])
    lo, hi = clip_limits(node, graph, args)
    y = x
    if lo is not None:
        y = np.where(y < lo, x.dtype.type(lo), y)
    if hi is not None:
        y = np.where(y > hi, x.dtype.type(hi), y)
    return [y.astype(x.dtype)]
