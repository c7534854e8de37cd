"""MaxPool, AveragePool (pads, strides, dilations for max, ceil_mode, count_include_pad),
GlobalAveragePool, GlobalMaxPool: float and int8 (QMaxPool, QAvgPool). 1-D and 2-D, NCHW.

Integer forms (runtime/kernels/pool.h):
    QMaxPool: y = clamp(requant(max(x) - zx, M, S) + zy, lo, hi), M·2^-S = sx/sy; when sx = sy and
              zx = zy (the quantizer's usual same-scale MaxPool) the max is stored as it is: exact.
    QAvgPool: acc = Σ (x - zx) over the real inputs of the window; y = clamp(requant(acc, M[c], S[c])
              + zy, lo, hi) with M[c]·2^-S[c] = sx / (sy·c) for the window's divisor c: one
              rounding of the exact mean, 0–1 LSB from onnxruntime.
"""
from __future__ import annotations

import numpy as np

from ..errors import TinydeployError
from ..ir import Node
from .quant import act_range, quantize_multiplier, requant
from .registry import prod, register


def _same_pads(n, k, s, d, upper):
    out = -(-n // s)
    total = max(0, (out - 1) * s + (k - 1) * d + 1 - n)
    return (total // 2, total - total // 2) if upper else (total - total // 2, total // 2)


def geometry(node, xshape) -> dict:
    if node.op.startswith("Global") or node.attr("_global"):
        spatial = prod(xshape[2:])
        return dict(N=xshape[0], C=xshape[1], H=1, W=spatial, KH=1, KW=spatial, SH=1, SW=1, PT=0, PL=0, PB=0,
                    PR=0, DH=1, DW=1, OH=1, OW=1, out=tuple(xshape[:2]) + (1,) * (len(xshape) - 2))
    if len(xshape) not in (3, 4):
        raise TinydeployError(f"node {node.name} ({node.op}): only 1-D and 2-D pooling is supported, "
                              f"input has rank {len(xshape)}")
    one_d = len(xshape) == 3
    N, C, H, W = (xshape[0], xshape[1], 1, xshape[2]) if one_d else xshape
    ks = list(node.attr("kernel_shape"))
    lift = (lambda v: [1] + list(v)) if one_d else list
    KH, KW = lift(ks)
    SH, SW = lift(node.attr("strides", [1] * len(ks)))
    DH, DW = lift(node.attr("dilations", [1] * len(ks)))
    pads = list(node.attr("pads", [0] * (2 * len(ks))))
    auto = node.attr("auto_pad", "NOTSET")
    ceil = int(node.attr("ceil_mode", 0))
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        (PT, PB), (PL, PR) = (_same_pads(H, KH, SH, DH, auto == "SAME_UPPER"), _same_pads(W, KW, SW, DW, auto == "SAME_UPPER"))
        if one_d:
            PT = PB = 0
    elif auto == "VALID":
        PT = PB = PL = PR = 0
    else:
        PT, PL, PB, PR = (0, pads[0], 0, pads[1]) if one_d else pads

    def size(n, k, s, d, p0, p1):
        span = n + p0 + p1 - ((k - 1) * d + 1)
        out = (-(-span // s) if ceil else span // s) + 1
        if ceil and (out - 1) * s >= n + p0:   # the last window must start inside the input
            out -= 1
        return out

    OH, OW = size(H, KH, SH, DH, PT, PB), size(W, KW, SW, DW, PL, PR)
    if OH <= 0 or OW <= 0:
        raise TinydeployError(f"node {node.name} ({node.op}): kernel larger than the padded input")
    out = (N, C, OW) if one_d else (N, C, OH, OW)
    return dict(N=N, C=C, H=H, W=W, KH=KH, KW=KW, SH=SH, SW=SW, PT=PT, PL=PL, PB=PB, PR=PR, DH=DH, DW=DW,
                OH=OH, OW=OW, out=out)


def _windows(x, g, fill):
    """[N, C, OH, OW, KH*KW] window values (fill outside the input) and the validity mask."""
    x4 = x.reshape(g["N"], g["C"], g["H"], g["W"])
    ih = (np.arange(g["OH"]) * g["SH"] - g["PT"])[:, None] + np.arange(g["KH"])[None, :] * g["DH"]
    iw = (np.arange(g["OW"]) * g["SW"] - g["PL"])[:, None] + np.arange(g["KW"])[None, :] * g["DW"]
    vh, vw = (ih >= 0) & (ih < g["H"]), (iw >= 0) & (iw < g["W"])
    cols = x4[:, :, np.clip(ih, 0, g["H"] - 1)[:, None, :, None], np.clip(iw, 0, g["W"] - 1)[None, :, None, :]]
    valid = vh[:, None, :, None] & vw[None, :, None, :]              # [OH, OW, KH, KW]
    cols = np.where(valid, cols, fill)
    sh = (g["N"], g["C"], g["OH"], g["OW"], g["KH"] * g["KW"])
    return cols.reshape(sh), valid.reshape(sh[2:])


def counts(g, include_pad: int) -> np.ndarray:
    """[OH, OW] AveragePool divisors, as td_pool_count."""
    def axis(n, o, k, s, p0, p1):
        st = np.arange(o) * s - p0
        en = np.minimum(st + k, n + p1)
        return (en - st) if include_pad else (np.minimum(en, n) - np.maximum(st, 0))
    return np.outer(axis(g["H"], g["OH"], g["KH"], g["SH"], g["PT"], g["PB"]),
                    axis(g["W"], g["OW"], g["KW"], g["SW"], g["PL"], g["PR"]))


def _check_single_output(node):
    if len([o for o in node.outputs if o]) > 1:
        raise TinydeployError(f"node {node.name} ({node.op}): the Indices output is not supported")


def _avg_checks(node, g):
    if g["DH"] != 1 or g["DW"] != 1:
        raise TinydeployError(f"node {node.name} ({node.op}): dilated AveragePool is not supported")


def _include_pad(node):
    return int(node.attr("count_include_pad", 0))


def _tiling(node, graph):
    """As a depthwise convolution: tiles of channels, output rows and columns with their halos."""
    from .tiles import conv_like
    g = geometry(node, graph.tensors[node.inputs[0]].shape)
    consts = [(node.name + "_rq", None, (len(node.attrs["m"]),), 5, False)] if node.op == "QAvgPool" else []
    return conv_like(node, graph, g, node.inputs[0], node.outputs[0], consts, _macs(node, graph),
                     prod(g["out"]))


# ---- float ----------------------------------------------------------------------------------------
def _geo_args(g):
    return ", ".join(str(g[k]) for k in ("H", "W", "OH", "OW", "KH", "KW", "SH", "SW", "PT", "PL", "DH", "DW"))


def _emit_pool(node, graph, ctx) -> str:
    g = geometry(node, graph.tensors[node.inputs[0]].shape)
    x, y = ctx.ptr(node.inputs[0]), ctx.ptr(node.outputs[0])
    P = g["N"] * g["C"]
    dtype = graph.tensors[node.inputs[0]].dtype
    if dtype == np.int8 and "Max" in node.op:   # QOperator graphs run MaxPool on the integers
        return f"td_maxpool_s8({x}, {y}, {P}, {_geo_args(g)}, 0, 0, 0, 1, 0, -128, 127);"
    if dtype != np.float32:
        raise TinydeployError(f"node {node.name} ({node.op}): no C kernel for {np.dtype(dtype)} tensors")
    if "Max" in node.op:
        return f"td_maxpool_f32({x}, {y}, {P}, {_geo_args(g)});"
    _avg_checks(node, g)
    return f"td_avgpool_f32({x}, {y}, {P}, {_geo_args(g)}, {g['PB']}, {g['PR']}, {_include_pad(node)});"


def _macs(node, graph):
    g = geometry(node, graph.tensors[node.inputs[0]].shape)
    return g["N"] * g["C"] * g["OH"] * g["OW"] * g["KH"] * g["KW"]


@register("MaxPool", emit=_emit_pool, macs=_macs, header="pool.h", lower=lambda m, gr: lower_pool(m, gr),
          tiling=_tiling)
@register("GlobalMaxPool", emit=_emit_pool, macs=_macs, header="pool.h", lower=lambda m, gr: lower_pool(m, gr),
          tiling=_tiling)
def maxpool(node, graph, args):
    _check_single_output(node)
    x = args[0]
    g = geometry(node, x.shape)
    cols, _ = _windows(x, g, -np.inf if x.dtype.kind == "f" else np.iinfo(x.dtype).min)
    return [cols.max(axis=-1).astype(x.dtype).reshape(g["out"])]


@register("AveragePool", emit=_emit_pool, macs=_macs, header="pool.h", lower=lambda m, gr: lower_pool(m, gr),
          tiling=_tiling)
@register("GlobalAveragePool", emit=_emit_pool, macs=_macs, header="pool.h", lower=lambda m, gr: lower_pool(m, gr),
          tiling=_tiling)
def avgpool(node, graph, args):
    x = args[0].astype(np.float32)
    g = geometry(node, x.shape)
    _avg_checks(node, g)
    cols, _ = _windows(x, g, np.float32(0))
    return [(cols.sum(axis=-1, dtype=np.float32) / counts(g, _include_pad(node)).astype(np.float32))
            .astype(np.float32).reshape(g["out"])]


# ---- int8 -----------------------------------------------------------------------------------------
def lower_pool(m, graph):
    x = m.ins[0]
    if x is None or x.q.per_channel or graph.tensors[x.name].dtype != np.int8:
        return None
    node = m.node
    if len([o for o in node.outputs if o]) > 1:
        return None
    g = geometry(node, graph.tensors[x.name].shape)
    sx, sy = np.float64(x.q.scale[0]), np.float64(m.out_q.scale[0])
    zx, zy = int(x.q.zero_point[0]), int(m.out_q.zero_point[0])
    lo, hi = act_range(m)
    attrs = {k: v for k, v in node.attrs.items() if k not in ("act",)}
    attrs.update(_global=node.op.startswith("Global"), zx=zx, zy=zy, lo=lo, hi=hi)
    try:
        if "Max" in node.op:
            mm, ss = quantize_multiplier(sx / sy)
            attrs.update(rq=int(not (np.float32(sx) == np.float32(sy) and zx == zy)), m=int(mm[0]), s=int(ss[0]))
            return [Node("QMaxPool", node.name, [x.name], [m.out], attrs)]
        if g["DH"] != 1 or g["DW"] != 1:
            return None
        c = counts(g, _include_pad(node))
        cmin, cmax = int(c.min()), int(c.max())
        if cmax * 256 > 2**31 - 1 or cmax - cmin > 4096:
            return None
        mm, ss = quantize_multiplier(sx / (sy * np.arange(cmin, cmax + 1, dtype=np.float64)))
    except TinydeployError:
        return None
    attrs.update(cmin=cmin, m=mm, s=ss, include_pad=_include_pad(node))
    return [Node("QAvgPool", node.name, [x.name], [m.out], attrs)]


@register("QMaxPool", macs=_macs, header="pool.h", emit=lambda n, g, c: _emit_q(n, g, c), tiling=_tiling)
def qmaxpool(node, graph, args):
    a = node.attrs
    g = geometry(node, args[0].shape)
    cols, _ = _windows(args[0], g, np.int8(-128))
    mx = cols.max(axis=-1).astype(np.int64)
    y = requant(mx - a["zx"], a["m"], a["s"]) + a["zy"] if a["rq"] else mx
    return [np.clip(y, a["lo"], a["hi"]).astype(np.int8).reshape(g["out"])]


@register("QAvgPool", macs=_macs, header="pool.h", emit=lambda n, g, c: _emit_q(n, g, c), tiling=_tiling)
def qavgpool(node, graph, args):
    a = node.attrs
    g = geometry(node, args[0].shape)
    cols, valid = _windows(args[0].astype(np.int64) - a["zx"], g, 0)
    acc = cols.sum(axis=-1)
    c = counts(g, a["include_pad"]) - a["cmin"]
    y = requant(acc, np.asarray(a["m"], np.int64)[c], np.asarray(a["s"], np.int64)[c]) + a["zy"]
    return [np.clip(y, a["lo"], a["hi"]).astype(np.int8).reshape(g["out"])]


def _emit_q(node, graph, ctx) -> str:
    a = node.attrs
    g = geometry(node, graph.tensors[node.inputs[0]].shape)
    x, y = ctx.ptr(node.inputs[0]), ctx.ptr(node.outputs[0])
    P = g["N"] * g["C"]
    if node.op == "QMaxPool":
        return (f"td_maxpool_s8({x}, {y}, {P}, {_geo_args(g)}, {a['rq']}, {a['zx']}, {a['m']}, {a['s']}, "
                f"{a['zy']}, {a['lo']}, {a['hi']});")
    mt = ctx.array(node.name + "_m", np.asarray(a["m"], np.int32))
    st = ctx.array(node.name + "_s", np.asarray(a["s"], np.int8))
    return (f"td_avgpool_s8({x}, {y}, {P}, {_geo_args(g)}, {g['PB']}, {g['PR']}, {a['include_pad']}, "
            f"{a['zx']}, {mt}, {st}, {a['cmin']}, {a['zy']}, {a['lo']}, {a['hi']});")
