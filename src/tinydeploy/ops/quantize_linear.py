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
    with np.errstate(invalid="ignore", over="ignore"):   # |x / s| beyond float32: ±inf, saturated
        y = np.rint(np.asarray(x, np.float32) / s).astype(np.float64) + zp  # int32's bounds are not float32s
        return np.where(np.isnan(y), lo, np.clip(y, lo, hi))


def _tiling(node, graph):
    """Per-tensor conversions are elementwise (a per-axis scale follows ONNX's axis, not broadcasting)."""
    from .tiles import elementwise
    return elementwise(node, graph) if all(graph.tensors[n].size == 1 for n in node.inputs[1:] if n) else None


@register("QuantizeLinear", header="quant.h", tiling=_tiling,
          emit=lambda n, g, c: _emit(n, g, c, "td_quantize_f32"))
def quantize_linear(node, graph, args):
    _check(node, graph)
    x, s = args[0].astype(np.float32), args[1].astype(np.float32)
    zp = _zp(node, args, np.uint8)
    lo, hi = _RANGE[np.dtype(zp.dtype)]
    return [quantize(x, _axis_view(node, x, s), _axis_view(node, x, zp).astype(np.float32), lo, hi).astype(zp.dtype)]


@register("DequantizeLinear", header="quant.h", tiling=_tiling,
          emit=lambda n, g, c: _emit(n, g, c, "td_dequantize_f32"))
def dequantize_linear(node, graph, args):
    _check(node, graph)
    x, s = args[0], args[1].astype(np.float32)
    zp = _zp(node, args, x.dtype)
    diff = (x.astype(np.int64) - _axis_view(node, x, zp).astype(np.int64)).astype(np.float32)
    return [(diff * _axis_view(node, x, s)).astype(np.float32)]


_KEY_LO, _KEY_HI = -0x7F800001, 0x7F800000   # keys of -inf and +inf (td_f32_key)


def key_to_f32(k) -> np.ndarray:
    """Inverse of td_f32_key: the float32 whose bits have order key k."""
    k = np.asarray(k, np.int64)
    bits = np.where(k < 0, k ^ 0x7FFFFFFF, k) & 0xFFFFFFFF
    return bits.astype(np.uint32).view(np.float32)


def quantize_thresholds(node, graph, lo: int) -> np.ndarray:
    """t[j] = key of the smallest float32 that the golden QuantizeLinear maps to lo + j or more
    (j = 1..255; t[0] unused): the table of td_quantize_tab. Found by bisection over the keys, with
    the golden function itself, so the table kernel equals the golden bit for bit."""
    args = [graph.const(i) if i else None for i in node.inputs]
    level = lo + np.arange(256, dtype=np.int64)
    a, b = np.full(256, _KEY_LO, np.int64), np.full(256, _KEY_HI, np.int64)   # q(a) < level <= q(b)
    with np.errstate(all="ignore"):
        for _ in range(33):
            mid = (a + b) // 2
            up = quantize_linear(node, graph, [key_to_f32(mid)] + args[1:])[0].astype(np.int64) >= level
            a, b = np.where(up, a, mid), np.where(up, mid, b)
    b[0] = _KEY_LO
    return b.astype(np.int32)


def _table_kernel(node, graph, ctx) -> str | None:
    """Per-tensor float32 <-> 8-bit by table (Q: integer compares only; DQ: one load per value)."""
    q = node.op == "QuantizeLinear"
    small, big = (graph.tensors[n] for n in ((node.outputs[0], node.inputs[0]) if q else node.inputs[:1] + node.outputs))
    if graph.const(node.inputs[1]).size != 1 or small.dtype not in (np.int8, np.uint8) or big.dtype != np.float32:
        return None
    sfx, lo, n = ("s8" if small.dtype == np.int8 else "u8"), int(np.iinfo(small.dtype).min), small.size
    if q:
        table = ctx.array(node.name + "_thresholds", quantize_thresholds(node, graph, lo))
        return f"td_quantize_tab_{sfx}({ctx.ptr(node.inputs[0])}, {ctx.ptr(node.outputs[0])}, {table}, {n}, {lo});"
    args = [np.arange(lo, lo + 256).astype(small.dtype)] + [graph.const(i) if i else None for i in node.inputs[1:]]
    table = ctx.array(node.name + "_values", dequantize_linear(node, graph, args)[0])
    return f"td_dequantize_tab_{sfx}({ctx.ptr(node.inputs[0])}, {ctx.ptr(node.outputs[0])}, {table}, {n}, {lo});"


def _emit(node, graph, ctx, fn) -> str:
    x = graph.tensors[node.inputs[0]]
    scale = graph.tensors[node.inputs[1]]
    if not scale.is_const or (len(node.inputs) > 2 and node.inputs[2] and not graph.tensors[node.inputs[2]].is_const):
        raise TinydeployError(f"node {node.name} ({node.op}): scale and zero point must be constants")
    if (tab := _table_kernel(node, graph, ctx)) is not None:
        return tab
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
