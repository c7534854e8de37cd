"""Resize (opset 10-19) and Upsample: every mode, coordinate transformation, nearest rounding,
cubic coefficient, exclude_outside, antialias and keep_aspect_ratio_policy, with constant
roi / scales / sizes. Interpolation is separable, so for each axis the compiler computes a tap
table (input index and weight per output index, following the ONNX definition: source coordinate,
neighbourhood, edge clamping) and the C kernel (runtime/kernels/resize.h) evaluates their tensor
product. Nearest is one tap of weight 1: a copy, for any element type (so int8 QDQ graphs run it
on the int8 tensor). Linear and cubic: float32.
"""
from __future__ import annotations

import math

import numpy as np

from ..codegen.ctext import c_literal
from ..errors import TinydeployError
from . import nd
from .registry import register
from .requant import lower_move
from .shape import _const


# ---- coefficients per output position (ratio = fractional source position, 1.0 when integral) ---
def _nearest(ratio, scale, node):
    mode = node.attr("nearest_mode", "round_prefer_floor") if node.attr("_opset", 13) >= 11 else "floor"
    if ratio == 1.0:
        return [0.0, 1.0]
    pick_hi = {"round_prefer_floor": ratio > 0.5, "round_prefer_ceil": ratio >= 0.5, "floor": False,
               "ceil": True}[mode]
    return [0.0, 1.0] if pick_hi else [1.0, 0.0]


def _linear(ratio, scale, node):
    if not node.attr("antialias", 0):
        return [1.0 - ratio, ratio]
    s = min(scale, 1.0)          # a triangle filter stretched by 1/scale when downsampling
    lo = int(math.floor(-1 / s) + 1)
    c = np.clip(1 - np.abs((np.arange(lo, lo + 2 - 2 * lo) - ratio) * s), 0, 1)
    return list(c / c.sum())


def _cubic(ratio, scale, node):
    a = node.attr("cubic_coeff_a", -0.75)

    def k(x):
        x = abs(x)
        if x <= 1:
            return (a + 2) * x ** 3 - (a + 3) * x ** 2 + 1
        return a * x ** 3 - 5 * a * x ** 2 + 8 * a * x - 4 * a if x < 2 else 0.0

    if not node.attr("antialias", 0):
        return [k(ratio + 1), k(ratio), k(1 - ratio), k(2 - ratio)]
    s = min(scale, 1.0)
    lo = int(math.floor(-2 / s) + 1)
    c = np.array([k(s * (i - ratio)) for i in range(lo, 2 - lo)])
    return list(c / c.sum())


COEFFS = {"nearest": _nearest, "linear": _linear, "cubic": _cubic}


def _source(ctm, y, scale, n_in, n_out_int, roi):
    """Source coordinate of each output index (float64) and the extrapolation mask (or None)."""
    n_out = scale * n_in
    if ctm == "align_corners":
        return (np.zeros_like(y) if n_out == 1 else y * (n_in - 1) / (n_out - 1)), None
    if ctm == "asymmetric":
        return y / scale, None
    if ctm == "tf_crop_and_resize":
        x = (np.full_like(y, (roi[1] - roi[0]) * (n_in - 1) / 2) if n_out == 1
             else y * (roi[1] - roi[0]) * (n_in - 1) / (n_out - 1)) + roi[0] * (n_in - 1)
        return x, (x < 0) | (x > n_in - 1)
    if ctm == "pytorch_half_pixel":
        return (np.full_like(y, -0.5) if n_out == 1 else (y + 0.5) / scale - 0.5), None
    if ctm == "half_pixel":
        return (y + 0.5) / scale - 0.5, None
    if ctm == "half_pixel_symmetric":
        offset = n_in / 2 * (1 - n_out_int / n_out)
        return offset + (y + 0.5) / scale - 0.5, None
    raise TinydeployError(f"Resize: coordinate_transformation_mode {ctm} is not supported")


def axis_taps(node, mode, n_in, n_out, scale, roi):
    """(indices [n_out, T] clamped to the input, weights [n_out, T] float64, extrapolated mask|None)."""
    ctm = node.attr("coordinate_transformation_mode", "half_pixel") if node.attr("_opset", 13) >= 11 \
        else "asymmetric"
    x, ext = _source(ctm, np.arange(n_out, dtype=np.float64), scale, n_in, n_out, roi)
    base = np.floor(x)
    ratio = np.where(x == base, 1.0, x - base)
    w = np.array([COEFFS[mode](float(r), scale, node) for r in ratio], np.float64).reshape(n_out, -1)
    T = w.shape[1]
    # the T neighbours nearest to x, preferring lower ones (ratio in (0, 1]): start just below x
    pad = math.ceil(T / 2)
    p = np.floor(x + pad)
    frac = x + pad - p
    if T % 2 == 0:
        first = np.where(frac == 0, -(T // 2), -(T // 2) + 1)
    else:
        first = np.where(frac <= 0.5, -((T - 1) // 2), -((T - 1) // 2) + 1)
    idx = (p + first - pad).astype(np.int64)[:, None] + np.arange(T)[None, :]
    if node.attr("exclude_outside", 0):
        w = np.where((idx < 0) | (idx >= n_in), 0.0, w)
        s = w.sum(axis=1, keepdims=True)
        w = w / np.where(s == 0, 1.0, s)
    return np.clip(idx, 0, n_in - 1), w, ext


# ---- parameters -------------------------------------------------------------------------------------
def _in(node, graph, args, k):
    v = _const(node, graph, args, k, "parameter")
    return v if v is not None and v.size else None


def plan(node, graph, shape, args=None):
    """(mode, output shape, per-axis scale, roi pairs) after axes and keep_aspect_ratio_policy."""
    r = len(shape)
    mode = node.attr("mode", "nearest")
    if node.op == "Upsample" or node.attr("_opset", 13) < 11:
        scales = node.attr("scales") if node.op == "Upsample" and len(node.inputs) < 2 else \
            _in(node, graph, args, 1)
        scales, sizes, roi = np.asarray(scales, np.float64), None, None
    else:
        roi, scales, sizes = (_in(node, graph, args, k) for k in (1, 2, 3))
    axes = node.attr("axes")
    axes = list(range(r)) if axes is None else [a % r for a in axes]
    full_roi = [(0.0, 1.0)] * r
    if roi is not None:
        roi = roi.astype(np.float64).reshape(-1)
        for i, a in enumerate(axes):
            full_roi[a] = (roi[i], roi[i + len(axes)])
    if sizes is not None:
        sz = dict(zip(axes, sizes.reshape(-1).astype(np.int64).tolist()))
        sc = {a: sz[a] / shape[a] for a in axes}
        policy = node.attr("keep_aspect_ratio_policy", "stretch")
        if policy != "stretch":
            s = (min if policy == "not_larger" else max)(sc.values())
            sc = {a: s for a in axes}
            sz = {a: int(s * shape[a] + 0.5) for a in axes}
        out = [sz.get(d, shape[d]) for d in range(r)]
        scale = [sc.get(d, 1.0) for d in range(r)]
    else:
        if scales is None:
            raise TinydeployError(f"node {node.name} ({node.op}): neither scales nor sizes given")
        sc = dict(zip(axes, scales.reshape(-1).astype(np.float64).tolist()))
        scale = [sc.get(d, 1.0) for d in range(r)]
        out = [int(math.floor(shape[d] * scale[d])) for d in range(r)]
    if mode not in COEFFS:
        raise TinydeployError(f"node {node.name} ({node.op}): mode {mode} is not supported")
    return mode, out, scale, full_roi


def _tables(node, graph, shape, args=None):
    mode, out, scale, roi = plan(node, graph, shape, args)
    tabs = []
    for d in range(len(shape)):
        if out[d] == shape[d] and math.isclose(scale[d], 1.0) and roi[d] == (0.0, 1.0):
            tabs.append((np.arange(shape[d])[:, None], np.ones((shape[d], 1)), None))   # untouched axis
        else:
            tabs.append(axis_taps(node, mode, shape[d], out[d], scale[d], roi[d]))
    if mode == "nearest":   # keep the one tap of weight 1
        tabs = [(np.take_along_axis(i, np.argmax(w, axis=1)[:, None], 1), np.ones((len(i), 1)), e)
                for i, w, e in tabs]
    return mode, out, tabs


def _golden(node, graph, args):
    x = np.asarray(args[0])
    mode, out, tabs = _tables(node, graph, x.shape, args)
    y = x.astype(np.float64) if mode != "nearest" else x
    for d, (idx, w, ext) in enumerate(tabs):   # separable: one axis after the other
        g = np.take(y, idx.reshape(-1), axis=d).reshape(y.shape[:d] + idx.shape + y.shape[d + 1:])
        if mode == "nearest":
            y = g.reshape(y.shape[:d] + (idx.shape[0],) + y.shape[d + 1:])
            continue
        y = np.sum(g * w.reshape((1,) * d + w.shape + (1,) * (y.ndim - d - 1)), axis=d + 1)
        if ext is not None:
            e = ext.reshape((1,) * d + ext.shape + (1,) * (y.ndim - d - 1))
            y = np.where(e, node.attr("extrapolation_value", 0.0), y)
    return [y.astype(x.dtype)]


def _emit(node, graph, ctx):
    x, y = node.inputs[0], node.outputs[0]
    shape = graph.tensors[x].shape
    mode, out, tabs = _tables(node, graph, shape)
    if graph.tensors[y].size == 0:
        return ";"
    st = nd.strides(shape)
    off = ctx.array(node.name + "_off", np.concatenate([(i * st[d]).reshape(-1) for d, (i, _, _) in enumerate(tabs)])
                    .astype(np.int32))
    dims = ctx.array(node.name + "_dims", np.array(out + [t[0].shape[1] for t in tabs], np.int32))
    r = len(shape)
    if mode == "nearest":
        return (f"td_resize_nearest((const uint8_t *){ctx.ptr(x)}, (uint8_t *){ctx.ptr(y)}, {nd.esize(graph, x)}, "
                f"{r}, {dims}, {off});")
    if graph.tensors[x].dtype != np.float32:
        raise TinydeployError(f"node {node.name} ({node.op}): {mode} mode has a float32 kernel only")
    w = ctx.array(node.name + "_w", np.concatenate([t[1].reshape(-1) for t in tabs]).astype(np.float32))
    ext = "NULL"
    if any(t[2] is not None for t in tabs):
        ext = ctx.array(node.name + "_ext", np.concatenate(
            [np.zeros(out[d], np.uint8) if t[2] is None else t[2].astype(np.uint8) for d, t in enumerate(tabs)]))
    return (f"td_resize_f32({ctx.ptr(x)}, {ctx.ptr(y)}, {r}, {dims}, {dims} + {r}, {off}, {w}, {ext}, "
            f"{c_literal(node.attr('extrapolation_value', 0.0), np.float32)});")


def _lower(m, graph):
    """int8 QDQ: nearest moves values (runs on int8); other modes stay float."""
    return lower_move(m, graph) if m.node.attr("mode", "nearest") == "nearest" else None


register("Resize", emit=_emit, lower=_lower, header="resize.h")(_golden)
register("Upsample", emit=_emit, lower=_lower, header="resize.h")(_golden)
