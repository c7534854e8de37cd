"""QuantizeLinear / DequantizeLinear as kernels: the float fallback between integer regions, and
the edges of a graph that takes or returns float tensors. ONNX semantics: round half to even,
saturate; per-tensor or per-axis.

Values ONNX leaves open, defined as onnxruntime computes them (golden == C == onnxruntime, for
every output type and per-tensor or per-axis): NaN quantizes to the lowest value of the output type
(0 for uint8, -128 for int8), +inf to the highest, -inf to the lowest. A constant scale must be a
positive, finite, normal float32: 0, negative, NaN, inf and subnormal scales are refused at compile
time (a subnormal scale is 0 on an FPU that flushes subnormals to zero)."""
from __future__ import annotations

import numpy as np

from ..errors import TinydeployError
from .registry import prod, register

_RANGE = {np.dtype(np.int8): (-128, 127), np.dtype(np.uint8): (0, 255), np.dtype(np.int32): (-(2**31), 2**31 - 1),
          np.dtype(np.int16): (-32768, 32767), np.dtype(np.uint16): (0, 65535)}


def _axis_view(node, x, p):
    """Reshape a per-axis parameter so it broadcasts against x."""
    p = np.asarray(p)
    if p.size == 1:
        return p.reshape(())
    axis = node.attr("axis", 1) % x.ndim
    shape = [1] * x.ndim
    shape[axis] = -1
    return p.reshape(shape)


def _zp(node, args, default_dtype):
    if len(args) > 2 and args[2] is not None:
        return args[2]
    return np.zeros((), default_dtype)


def _check(node, graph):
    if node.attr("block_size", 0):
        raise TinydeployError(f"node {node.name} ({node.op}): blocked quantization is not supported")
    s = graph.const(node.inputs[1])
    if s is not None:
        s = np.asarray(s, np.float32).reshape(-1)
        bad = ~(np.isfinite(s) & (s >= np.finfo(np.float32).tiny))
        if bad.any():
            raise TinydeployError(f"node {node.name} ({node.op}): scale '{node.inputs[1]}' holds {s[bad][0]}; "
                                  f"a scale must be a positive, finite, normal float32 "
                                  f"(at least {np.finfo(np.float32).tiny:.3g})")


def quantize(x, s, zp, lo: int, hi: int) -> np.ndarray:
    """round(x / s) + zp saturated to [lo, hi] as float; NaN → lo, as onnxruntime and td_quantize_f32."""
    with np.errstate(invalid="ignore"):
        y = np.rint(np.asarray(x, np.float32) / s) + zp
        return np.where(np.isnan(y), np.float32(lo), np.clip(y, lo, hi))


@register("QuantizeLinear", header="quant.h",
          emit=lambda n, g, c: _emit(n, g, c, "td_quantize_f32"))
def quantize_linear(node, graph, args):
    _check(node, graph)
    x, s = args[0].astype(np.float32), args[1].astype(np.float32)
    zp = _zp(node, args, np.uint8)
    lo, hi = _RANGE[np.dtype(zp.dtype)]
    return [quantize(x, _axis_view(node, x, s), _axis_view(node, x, zp).astype(np.float32), lo, hi).astype(zp.dtype)]


@register("DequantizeLinear", header="quant.h",
          emit=lambda n, g, c: _emit(n, g, c, "td_dequantize_f32"))
def dequantize_linear(node, graph, args):
    _check(node, graph)
    x, s = args[0], args[1].astype(np.float32)
    zp = _zp(node, args, x.dtype)
    diff = (x.astype(np.int64) - _axis_view(node, x, zp).astype(np.int64)).astype(np.float32)
    return [(diff * _axis_view(node, x, s)).astype(np.float32)]


def _emit(node, graph, ctx, fn) -> str:
    x = graph.tensors[node.inputs[0]]
    scale = graph.tensors[node.inputs[1]]
    if not scale.is_const or (len(node.inputs) > 2 and node.inputs[2] and not graph.tensors[node.inputs[2]].is_const):
        raise TinydeployError(f"node {node.name} ({node.op}): scale and zero point must be constants")
    zp = graph.const(node.inputs[2]) if len(node.inputs) > 2 and node.inputs[2] else None
    channels = scale.size
    if channels > 1:
        axis = node.attr("axis", 1) % len(x.shape)
        inner = prod(x.shape[axis + 1:])
    else:
        inner = x.size
    outer = x.size // (inner * channels)
    zps = ctx.array(node.name + "_zp", np.zeros(channels, np.int32) if zp is None else zp.astype(np.int32).reshape(-1))
    s = ctx.array(node.name + "_scale", scale.data.astype(np.float32).reshape(-1))
    if fn == "td_quantize_f32":
        lo, hi = _RANGE[np.dtype(graph.tensors[node.outputs[0]].dtype)]
        suffix = {np.dtype(np.int8): "s8", np.dtype(np.uint8): "u8", np.dtype(np.int32): "s32",
                  np.dtype(np.int16): "s16", np.dtype(np.uint16): "u16"}[np.dtype(graph.tensors[node.outputs[0]].dtype)]
        return (f"td_quantize_f32_{suffix}({ctx.ptr(node.inputs[0])}, {ctx.ptr(node.outputs[0])}, {s}, {zps}, "
                f"{outer}, {channels}, {inner}, {lo}, {hi});")
    suffix = {np.dtype(np.int8): "s8", np.dtype(np.uint8): "u8", np.dtype(np.int32): "s32",
              np.dtype(np.int16): "s16", np.dtype(np.uint16): "u16"}[np.dtype(x.dtype)]
    return (f"td_dequantize_{suffix}_f32({ctx.ptr(node.inputs[0])}, {ctx.ptr(node.outputs[0])}, {s}, {zps}, "
            f"{outer}, {channels}, {inner});")
