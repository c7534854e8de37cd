"""Conv (float32) and QConv (int8 in/out, int32 accumulation, per-channel requantization).

Layout NCHW, weights KCHW (C per group). 1-D convolutions run as 2-D with H = 1.
QConv attrs: geometry (see `geometry`), x_zp, w_zp, m[K], s[K] (requantization), y_zp, lo, hi.
Padding contributes (x - x_zp) = 0, which is what DequantizeLinear → Conv computes with zeros.
"""
from __future__ import annotations

import numpy as np

from ..errors import TinydeployError
from ..ir import Node
from .quant import act_range, bias_in, requant, zero_point_scalar
from .registry import prod, register

GEOM = ("N", "C", "H", "W", "K", "OH", "OW", "KH", "KW", "SH", "SW", "PT", "PL", "DH", "DW", "G")


def _pads_same(n_in, k, s, d, upper):
    out = -(-n_in // s)
    total = max(0, (out - 1) * s + (k - 1) * d + 1 - n_in)
    return (total // 2, total - total // 2) if upper else (total - total // 2, total // 2)


def geometry(node, xshape, wshape) -> dict:
    if len(xshape) not in (3, 4):
        raise TinydeployError(f"node {node.name} ({node.op}): only 1-D and 2-D convolutions are supported, "
                              f"input has rank {len(xshape)}")
    one_d = len(xshape) == 3
    N, C, H, W = (xshape[0], xshape[1], 1, xshape[2]) if one_d else xshape
    K, KH, KW = (wshape[0], 1, wshape[2]) if one_d else (wshape[0], wshape[2], wshape[3])
    lift = (lambda v, d: [d] + list(v)) if one_d else (lambda v, d: list(v))
    SH, SW = lift(node.attr("strides", [1] * (len(xshape) - 2)), 1)
    DH, DW = lift(node.attr("dilations", [1] * (len(xshape) - 2)), 1)
    G = node.attr("group", 1)
    pads = node.attr("pads", [0] * (2 * (len(xshape) - 2)))
    auto = node.attr("auto_pad", "NOTSET")
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        (PT, PB), (PL, PR) = (_pads_same(H, KH, SH, DH, auto == "SAME_UPPER"),
                              _pads_same(W, KW, SW, DW, auto == "SAME_UPPER"))
        if one_d:
            PT = PB = 0
    elif auto == "VALID":
        PT = PB = PL = PR = 0
    elif one_d:
        PT, PB, PL, PR = 0, 0, pads[0], pads[1]
    else:
        PT, PL, PB, PR = pads
    if C != wshape[1] * G or K % G:
        raise TinydeployError(f"node {node.name} ({node.op}): {C} input channels do not match weights "
                              f"{list(wshape)} with group={G}")
    OH = (H + PT + PB - (KH - 1) * DH - 1) // SH + 1
    OW = (W + PL + PR - (KW - 1) * DW - 1) // SW + 1
    if OH <= 0 or OW <= 0:
        raise TinydeployError(f"node {node.name} ({node.op}): kernel larger than the padded input")
    return dict(N=N, C=C, H=H, W=W, K=K, OH=OH, OW=OW, KH=KH, KW=KW, SH=SH, SW=SW, PT=PT, PL=PL,
                PB=PB, PR=PR, DH=DH, DW=DW, G=G, one_d=one_d)


def _im2col(x: np.ndarray, g: dict, pad_value) -> np.ndarray:
    """x [N, C, H, W] → [N, G, C/G*KH*KW, OH*OW] columns."""
    N, C, H, W = x.shape
    xp = np.full((N, C, H + g["PT"] + g["PB"], W + g["PL"] + g["PR"]), pad_value, dtype=x.dtype)
    xp[:, :, g["PT"]:g["PT"] + H, g["PL"]:g["PL"] + W] = x
    cols = np.empty((N, C, g["KH"], g["KW"], g["OH"], g["OW"]), dtype=x.dtype)
    for kh in range(g["KH"]):
        for kw in range(g["KW"]):
            h0, w0 = kh * g["DH"], kw * g["DW"]
            cols[:, :, kh, kw] = xp[:, :, h0:h0 + g["SH"] * (g["OH"] - 1) + 1:g["SH"],
                                    w0:w0 + g["SW"] * (g["OW"] - 1) + 1:g["SW"]]
    G = g["G"]
    return cols.reshape(N, G, C // G * g["KH"] * g["KW"], g["OH"] * g["OW"])


def _conv(x4, w, g, pad_value, acc_dtype):
    """Grouped convolution as one matmul per group; returns [N, K, OH, OW] in acc_dtype."""
    cols = _im2col(x4, g, pad_value).astype(acc_dtype)
    G, K = g["G"], g["K"]
    wg = w.reshape(G, K // G, -1).astype(acc_dtype)
    out = np.einsum("gkc,ngcp->ngkp", wg, cols) if acc_dtype != np.float32 else np.matmul(wg[None], cols)
    return out.reshape(x4.shape[0], K, g["OH"], g["OW"])


def _as4d(x, g):
    return x.reshape(x.shape[0], x.shape[1], 1, x.shape[2]) if g["one_d"] else x


def _out_shape(y, g):
    return y.reshape(y.shape[0], y.shape[1], y.shape[3]) if g["one_d"] else y


def conv_macs(node, graph) -> int:
    w = graph.tensors[node.inputs[1]].shape
    return prod(graph.tensors[node.outputs[0]].shape) * prod(w[1:])


def _tiling(node, graph):
    """Tiles of output channels (whole groups), rows and columns; weights, bias and per-channel
    requantization parameters sliced with the channels; QConv's padded input copy per tile."""
    from .tiles import conv_like
    x, w, y = node.inputs[0], node.inputs[1], node.outputs[0]
    g = geometry(node, graph.tensors[x].shape, graph.tensors[w].shape)
    K = g["K"]
    consts = [(w, w, (K, g["C"] // g["G"], g["KH"], g["KW"]), 0, True)]
    if node.op != "ConvInteger" and len(node.inputs) > 2 and node.inputs[2]:
        consts.append((node.inputs[2], node.inputs[2], (K,), 0, True))
    if node.op == "ConvInteger":
        consts += [(z, z, graph.tensors[z].shape, 0, False) for z in node.inputs[2:] if z]
    pads = any(g[k] for k in ("PT", "PB", "PL", "PR"))
    if node.op == "QConv":   # m (int32) and s (int8) per output channel
        consts.append((node.name + "_rq", None, (K,), 5, True))
    return conv_like(node, graph, g, x, y, consts, conv_macs(node, graph), prod(graph.tensors[y].shape),
                     scratch=1 if node.op == "QConv" and pads else 0, per_k_attrs=("m", "s") if node.op == "QConv" else ())


def _geom_args(g) -> str:
    return ", ".join(str(g[k]) for k in ("C", "H", "W", "K", "OH", "OW", "KH", "KW", "SH", "SW",
                                         "PT", "PL", "DH", "DW", "G"))


# ---- QDQ lowering ----------------------------------------------------------------------------
def int_bias(sources, k: int, target: np.ndarray, per: int = 1) -> np.ndarray | None:
    """The int32 bias in units of target[k]/per (target = sx·sw[k]; per = the pooled count of a
    QPoolMatMul) from the biases added to the accumulator (BiasIn: the node's own bias input, an Add
    of a constant after it). One int32 DequantizeLinear with zero point 0 and scale target is taken
    as is (the quantizer chose those integers); otherwise the real sum is rounded half to even, as
    QuantizeLinear would."""
    sources = [b for b in sources if b is not None]
    if not sources:
        return None
    target = np.broadcast_to(np.asarray(target, np.float32), (k,))
    one = sources[0]
    if len(sources) == 1 and one.ints is not None and np.allclose(one.scale, target, rtol=1e-6):
        q = np.broadcast_to(one.ints.astype(np.int64), (k,)) * per
    else:
        q = np.rint(sum(np.broadcast_to(b.real, (k,)) for b in sources) * per / target.astype(np.float64))
    return np.clip(q, -(2**31), 2**31 - 1).astype(np.int32)


def requant_params(m, sw: np.ndarray, channels: int):
    """(x_zp, M[K], S[K], y_zp, lo, hi) for an int8 output of a linear op with int8 input m.ins[0]."""
    from .quant import quantize_multiplier

    sx, sy = np.float64(m.ins[0].q.scale[0]), np.float64(m.out_q.scale[0])
    real = sx * np.broadcast_to(sw.astype(np.float64), (channels,)) / sy
    mult, shift = quantize_multiplier(real, f"node {m.node.name}")
    lo, hi = act_range(m)
    return int(m.ins[0].q.zero_point[0]), mult, shift, int(m.out_q.zero_point[0]), lo, hi


def lower_conv(m, graph):
    x, w = m.ins[0], m.ins[1]
    if x is None or w is None or w.const is None or x.q.per_channel or w.const.dtype != np.int8:
        return None
    wzp = np.unique(w.q.zero_point)
    if wzp.size != 1:
        return None
    k = w.const.shape[0]
    sw = np.broadcast_to(w.q.scale.astype(np.float32), (k,))
    has_bias = len(m.node.inputs) > 2 and m.node.inputs[2]
    own = bias_in(m.ins[2], graph.const(m.node.inputs[2])) if has_bias else None
    if has_bias and own is None:
        return None
    bias = int_bias([own, m.bias], k, np.float32(x.q.scale[0]) * sw)
    xzp, mult, shift, yzp, lo, hi = requant_params(m, sw, k)
    ins = [x.name, w.name]
    if bias is not None:
        ins.append(graph.add_const(m.node.name + "_bias", bias))
    attrs = {k2: v for k2, v in m.node.attrs.items() if k2 != "act"}
    attrs.update(x_zp=xzp, w_zp=int(wzp[0]), m=mult, s=shift, y_zp=yzp, lo=lo, hi=hi)
    return [Node("QConv", m.node.name, ins, [m.out], attrs)]


# ---- float32 ---------------------------------------------------------------------------------
def _emit_conv(node, graph, ctx) -> str:
    g = geometry(node, graph.tensors[node.inputs[0]].shape, graph.tensors[node.inputs[1]].shape)
    bias = ctx.ptr(node.inputs[2]) if len(node.inputs) > 2 and node.inputs[2] else "NULL"
    lo, hi = node.attr("act", (None, None))
    per_n = g["C"] * g["H"] * g["W"], g["K"] * g["OH"] * g["OW"]
    x, y = ctx.ptr(node.inputs[0]), ctx.ptr(node.outputs[0])
    return "\n".join(
        f"td_conv_f32({x} + {n * per_n[0]}, {ctx.ptr(node.inputs[1])}, {bias}, {y} + {n * per_n[1]}, "
        f"{_geom_args(g)}, {_flt(lo, '-INFINITY')}, {_flt(hi, 'INFINITY')});" for n in range(g["N"]))


def _flt(v, default):
    return default if v is None else repr(float(v)) + "f"


@register("Conv", emit=_emit_conv, macs=conv_macs, lower=lower_conv, header="conv.h", tiling=_tiling)
def conv_f32(node, graph, args):
    x, w = args[0], args[1]
    b = args[2] if len(args) > 2 else None
    g = geometry(node, x.shape, w.shape)
    y = _conv(_as4d(x, g).astype(np.float32), _as4d(w, g).astype(np.float32), g, 0.0, np.float32)
    if b is not None:
        y = y + b.reshape(1, -1, 1, 1)
    lo, hi = node.attr("act", (None, None))
    if lo is not None or hi is not None:
        y = np.clip(y, lo if lo is not None else -np.inf, hi if hi is not None else np.inf)
    return [_out_shape(y.astype(np.float32), g)]


# ---- int8 ------------------------------------------------------------------------------------
def _qconv_choice(node, graph, kernels):
    """Winograd, the fast direct or depthwise kernel, as the target allows; None: the reference kernel."""
    from . import fastpath, winograd
    g = geometry(node, graph.tensors[node.inputs[0]].shape, graph.tensors[node.inputs[1]].shape)
    return winograd.qconv(node, graph, g, kernels) or fastpath.qconv(node, graph, g, kernels)


def _qconv_scratch(node, graph, kernels) -> int:
    choice = _qconv_choice(node, graph, kernels)
    return choice.scratch_bytes if choice else 0


def _emit_qconv(node, graph, ctx) -> str:
    choice = _qconv_choice(node, graph, ctx.kernels)
    if choice is not None:
        return choice.emit(ctx, ctx.scratch(choice.scratch))
    g = geometry(node, graph.tensors[node.inputs[0]].shape, graph.tensors[node.inputs[1]].shape)
    a = node.attrs
    bias = ctx.ptr(node.inputs[2]) if len(node.inputs) > 2 and node.inputs[2] else "NULL"
    m = ctx.array(node.name + "_m", np.asarray(a["m"], np.int32))
    s = ctx.array(node.name + "_s", np.asarray(a["s"], np.int8))
    per_n = g["C"] * g["H"] * g["W"], g["K"] * g["OH"] * g["OW"]
    x, y = ctx.ptr(node.inputs[0]), ctx.ptr(node.outputs[0])
    return "\n".join(
        f"td_conv_s8({x} + {n * per_n[0]}, {ctx.ptr(node.inputs[1])}, {bias}, {y} + {n * per_n[1]}, "
        f"{_geom_args(g)}, {a['x_zp']}, {a['w_zp']}, {m}, {s}, {a['y_zp']}, {a['lo']}, {a['hi']});"
        for n in range(g["N"]))


@register("QConv", emit=_emit_qconv, macs=conv_macs, header="conv.h", scratch=_qconv_scratch, tiling=_tiling)
def qconv(node, graph, args):
    x, w = args[0], args[1]
    b = args[2] if len(args) > 2 else None
    a = node.attrs
    g = geometry(node, x.shape, w.shape)
    xs = _as4d(x, g).astype(np.int64) - a["x_zp"]
    ws = _as4d(w, g).astype(np.int64) - a["w_zp"]
    acc = _conv(xs, ws, g, 0, np.int64)
    if b is not None:
        acc = acc + b.astype(np.int64).reshape(1, -1, 1, 1)
    k = g["K"]
    y = requant(acc, np.asarray(a["m"]).reshape(1, k, 1, 1), np.asarray(a["s"]).reshape(1, k, 1, 1))
    y = np.clip(y + a["y_zp"], a["lo"], a["hi"]).astype(np.int8)
    return [_out_shape(y, g)]


# ---- ConvInteger -------------------------------------------------------------------------------


def _emit_convint(node, graph, ctx) -> str:
    g = geometry(node, graph.tensors[node.inputs[0]].shape, graph.tensors[node.inputs[1]].shape)
    sx, sw = (("s8" if graph.tensors[n].dtype == np.int8 else "u8") for n in node.inputs[:2])
    xzp, wzp = zero_point_scalar(node, graph, 2), zero_point_scalar(node, graph, 3)
    per_n = g["C"] * g["H"] * g["W"], g["K"] * g["OH"] * g["OW"]
    x, y = ctx.ptr(node.inputs[0]), ctx.ptr(node.outputs[0])
    return "\n".join(
        f"td_conv_int_{sx}{sw}({x} + {n * per_n[0]}, {ctx.ptr(node.inputs[1])}, {y} + {n * per_n[1]}, "
        f"{_geom_args(g)}, {xzp}, {wzp});" for n in range(g["N"]))


@register("ConvInteger", emit=_emit_convint, macs=conv_macs, header="conv.h", tiling=_tiling)
def conv_integer(node, graph, args):
    x, w = args[0], args[1]
    xzp = args[2] if len(args) > 2 and args[2] is not None else 0
    wzp = args[3] if len(args) > 3 and args[3] is not None else 0
    g = geometry(node, x.shape, w.shape)
    xs = _as4d(x, g).astype(np.int64) - np.int64(np.asarray(xzp).reshape(-1)[0])
    ws = _as4d(w, g).astype(np.int64) - np.asarray(wzp, np.int64).reshape(-1, 1, 1, 1)  # per-tensor or per-K
    return [_out_shape(_conv(xs, ws, g, 0, np.int64).astype(np.int32), g)]
