"""Binary elementwise arithmetic with numpy broadcasting: Add, Sub, Mul, Div, Pow, Max, Min, Mod,
Sum, Mean (variadic), and Sqrt; float kernels and the integer QAdd / QSub / QMul / QMax / QMin.

Integer formulas (runtime/kernels/eltwise.h, TFLite-style for Add):
    QAdd:  xa = requant((a - za)·2^20, Ma, Sa),  Ma·2^-Sa = sa / (2·max(sa, sb))   (≤ 0.5)
           xb = requant((b - zb)·2^20, Mb, Sb),  Mb·2^-Sb = sb / (2·max(sa, sb))
           y  = clamp(requant(xa + xb, M, S) + zy, lo, hi),  M·2^-S = 2·max(sa, sb) / (2^20·sy)
    The two input roundings happen 20 bits below an input LSB, so the result is the single
    rounding of (sa(a - za) + sb(b - zb)) / sy up to ~2^-20 LSB: 0–1 LSB from onnxruntime.
    QSub, QMax, QMin: the same with xa - xb, max, min (the rescaling is monotonic).
    QMul:  y = clamp(requant((a - za)(b - zb), M, S) + zy, lo, hi),  M·2^-S = sa·sb / sy.
Every kernel reads its operands at index k before writing y[k], so the output may take input 0's
bytes (inplace; the planner checks that input 0 dies here and is as large as the output).
QAddSat: x + y saturated to a signed `bits`-bit integer, on int16 rows with the same scale (a
residual stream); row-wise, in place (runtime/kernels/eltwise_int.h).
Div, Pow and Mod stay float in quantized graphs (scalar-constant forms become lookup tables in
passes/lut.py); inputs with per-channel quantization fall back to float too.
"""
from __future__ import annotations

import numpy as np

from ..errors import TinydeployError
from ..ir import Node
from .quant import act_range, quantize_multiplier, requant
from .registry import prod, register
from .tiles import elementwise

LEFT_SHIFT = 20
RANK = 4  # the C loop nest depth (TD_BCAST_LOOPS)


# ---- broadcast loop plans (shared with pool / reduce) -------------------------------------------
def bcast_strides(in_shape, out_shape) -> list[int]:
    """Element strides of an input read under numpy broadcasting to out_shape (0 on broadcast dims)."""
    full = [1] * (len(out_shape) - len(in_shape)) + list(in_shape)
    st, acc = [0] * len(full), 1
    for d in range(len(full) - 1, -1, -1):
        st[d] = 0 if full[d] == 1 else acc
        acc *= full[d]
    return st


def loop_plan(out_shape, in_shapes, rank: int = RANK):
    """(dims[rank], strides per input [rank], [(input offsets, output offset)]) for a contiguous output:
    size-1 dims dropped, dims contiguous in every operand merged, padded to `rank`; dims beyond
    `rank` become separate calls (outer offsets)."""
    dims = [int(d) for d in out_shape]
    ss = [bcast_strides(s, out_shape) for s in in_shapes]
    ys = bcast_strides(out_shape, out_shape)
    keep = [k for k, d in enumerate(dims) if d != 1]
    dims, ys, ss = [dims[k] for k in keep], [ys[k] for k in keep], [[s[k] for k in keep] for s in ss]
    k = len(dims) - 2
    while k >= 0:
        if all(s[k] == s[k + 1] * dims[k + 1] for s in ss + [ys]):
            dims[k] *= dims[k + 1]
            for s in ss + [ys]:
                s[k] = s[k + 1]
                del s[k + 1]
            del dims[k + 1]
        k -= 1
    outer = len(dims) - rank
    calls = [([0] * len(ss), 0)]
    if outer > 0:
        calls = [([sum(i * s for i, s in zip(idx, st[:outer])) for st in ss],
                  sum(i * s for i, s in zip(idx, ys[:outer]))) for idx in np.ndindex(*dims[:outer])]
        dims, ss = dims[outer:], [s[outer:] for s in ss]
    pad = rank - len(dims)
    return [1] * pad + dims, [[0] * pad + s for s in ss], calls


def _off(p: str, o: int) -> str:
    return p if not o else f"{p} + {o}"


def bcast_calls(fn: str, a: str, b: str, y: str, ashape, bshape, yshape, extra: str = "") -> list[str]:
    dims, (sa, sb), calls = loop_plan(yshape, [ashape, bshape])
    geo = ", ".join(str(v) for v in dims + sa + sb)
    return [f"{fn}({_off(a, oa)}, {_off(b, ob)}, {_off(y, oy)}, {geo}{extra});" for (oa, ob), oy in calls]


# ---- float (and int32 / int64) -------------------------------------------------------------------
_SUFFIX = {np.dtype(np.float32): "f32", np.dtype(np.int32): "s32", np.dtype(np.int64): "s64"}
_C_NAME = {"Add": "add", "Sub": "sub", "Mul": "mul", "Div": "div", "Pow": "pow", "Sum": "add",
           "Mean": "add", "Max": "max", "Min": "min", "Mod": "mod"}


_POW_EXP = {np.dtype(np.int32): "s32", np.dtype(np.int64): "s64", np.dtype(np.uint32): "u32",
            np.dtype(np.uint64): "u64"}


def _c_name(node, dtype, bdtype=None) -> str:
    kind = _C_NAME[node.op]
    sfx = _SUFFIX.get(np.dtype(dtype))
    if node.op == "Pow" and sfx == "f32" and bdtype is not None and np.dtype(bdtype) != np.float32:
        esfx = _POW_EXP.get(np.dtype(bdtype))
        if esfx is None:
            raise TinydeployError(f"node {node.name} (Pow): no C kernel for {np.dtype(bdtype)} exponents")
        return f"td_pow_f32_{esfx}"
    if node.op == "Mod":
        kind = "fmod" if node.attr("fmod", 0) else "mod"
    elif sfx == "f32" and kind in ("max", "min"):
        kind = "f" + kind
    ok = sfx == "f32" or (sfx and kind in ("add", "sub", "mul", "max", "min", "mod", "fmod"))
    if not ok:
        raise TinydeployError(f"node {node.name} ({node.op}): no C kernel for {np.dtype(dtype)} tensors")
    return f"td_{kind}_{sfx}"


def _emit_binary(node, graph, ctx) -> str:
    y = node.outputs[0]
    yt = graph.tensors[y]
    ins = [i for i in node.inputs if i]
    fn = _c_name(node, yt.dtype, graph.tensors[ins[1]].dtype if len(ins) > 1 else None)
    shape = lambda n: graph.tensors[n].shape  # noqa: E731
    yp = ctx.ptr(y)
    if len(ins) == 1:   # Sum / Max / Min / Mean of one input: a copy
        return f"for (int i = 0; i < {yt.size}; i++) {yp}[i] = {ctx.ptr(ins[0])}[i];"
    code = bcast_calls(fn, ctx.ptr(ins[0]), ctx.ptr(ins[1]), yp, shape(ins[0]), shape(ins[1]), yt.shape)
    for extra in ins[2:]:   # variadic: accumulate into y (read and written at the same index)
        code += bcast_calls(fn, yp, ctx.ptr(extra), yp, yt.shape, shape(extra), yt.shape)
    if node.op == "Mean":
        code.append(f"td_scale_f32({yp}, {yp}, {yt.size}, {repr(float(np.float32(1.0 / len(ins))))}f);")
    return "\n".join(code)


def _int_div(a, b):
    q = np.abs(a) // np.abs(b)   # C and onnxruntime truncate toward zero
    return (q * np.sign(a) * np.sign(b)).astype(np.result_type(a, b))


def _binary(fn):
    def golden(node, graph, args):
        a, b = args
        return [np.asarray(fn(node, a, b)).astype(a.dtype)]   # ONNX: the output has A's type
    return golden


def _pow(node, a, b):
    return np.power(a.astype(np.float32), b.astype(np.float32)).astype(a.dtype) if a.dtype.kind == "f" \
        else np.power(a, b.astype(a.dtype))


def _mod(node, a, b):
    return np.fmod(a, b) if node.attr("fmod", 0) else np.mod(a, b)


_div = lambda node, a, b: a / b if a.dtype.kind == "f" else _int_div(a, b)  # noqa: E731
for _name, _fn in {"Add": lambda n, a, b: a + b, "Sub": lambda n, a, b: a - b, "Mul": lambda n, a, b: a * b,
                   "Div": _div, "Pow": _pow, "Mod": _mod}.items():
    register(_name, emit=_emit_binary, header="eltwise.h", inplace=True, tiling=elementwise,
             lower=(lambda m, g, _op=_name: lower_binary(m, g, _op)) if _name in ("Add", "Sub", "Mul") else None,
             macs=lambda n, g: 0)(_binary(_fn))


def _variadic(reduce_fn, mean=False):
    def golden(node, graph, args):
        out = args[0]
        for x in args[1:]:
            out = reduce_fn(out, x)
        if mean:
            out = out * np.float32(1.0 / len(args))
        return [np.asarray(out).astype(args[0].dtype)]
    return golden


register("Sum", emit=_emit_binary, header="eltwise.h", inplace=True, tiling=elementwise)(_variadic(np.add))
register("Mean", emit=_emit_binary, header="eltwise.h", inplace=True, tiling=elementwise)(
    _variadic(np.add, mean=True))
register("Max", emit=_emit_binary, header="eltwise.h", inplace=True, tiling=elementwise,
         lower=lambda m, g: lower_binary(m, g, "Max"))(_variadic(np.maximum))
register("Min", emit=_emit_binary, header="eltwise.h", inplace=True, tiling=elementwise,
         lower=lambda m, g: lower_binary(m, g, "Min"))(_variadic(np.minimum))


@register("Sqrt", header="eltwise.h", inplace=True, emit=lambda n, g, c: (
    f"td_sqrt_f32({c.ptr(n.inputs[0])}, {c.ptr(n.outputs[0])}, {g.tensors[n.inputs[0]].size});"))
def sqrt_f32(node, graph, args):
    if args[0].dtype != np.float32:
        raise TinydeployError(f"node {node.name} (Sqrt): only float32 is supported")
    return [np.sqrt(args[0])]


# ---- int8 ----------------------------------------------------------------------------------------
_QOP = {"Add": "QAdd", "Sub": "QSub", "Mul": "QMul", "Max": "QMax", "Min": "QMin"}
_COMBINE = {"QAdd": np.add, "QSub": np.subtract, "QMax": np.maximum, "QMin": np.minimum}


def lower_binary(m, graph, op: str):
    ins = [i for i in m.ins]
    if len(ins) != 2 or any(q is None or q.q.per_channel or graph.tensors[q.name].dtype != np.int8 for q in ins):
        return None
    (a, b), sy = ins, np.float64(m.out_q.scale[0])
    sa, sb = np.float64(a.q.scale[0]), np.float64(b.q.scale[0])
    lo, hi = act_range(m)
    attrs = dict(za=int(a.q.zero_point[0]), zb=int(b.q.zero_point[0]), zy=int(m.out_q.zero_point[0]), lo=lo, hi=hi)
    try:
        if op == "Mul":
            mm, ss = quantize_multiplier(sa * sb / sy)
        else:
            twice = 2 * max(sa, sb)
            (ma, sha), (mb, shb) = quantize_multiplier(sa / twice), quantize_multiplier(sb / twice)
            mm, ss = quantize_multiplier(twice / (2.0 ** LEFT_SHIFT * sy))
            attrs.update(ma=int(ma[0]), sa=int(sha[0]), mb=int(mb[0]), sb=int(shb[0]))
    except TinydeployError:
        return None
    attrs.update(m=int(mm[0]), s=int(ss[0]))
    return [Node(_QOP[op], m.node.name, [a.name, b.name], [m.out], attrs)]


def _qgolden(node, graph, args):
    t = node.attrs
    a, b = (x.astype(np.int64) for x in args)
    if node.op == "QMul":
        acc = (a - t["za"]) * (b - t["zb"])
    else:
        xa = requant((a - t["za"]) * (1 << LEFT_SHIFT), t["ma"], t["sa"])
        xb = requant((b - t["zb"]) * (1 << LEFT_SHIFT), t["mb"], t["sb"])
        acc = _COMBINE[node.op](xa, xb)
    return [np.clip(requant(acc, t["m"], t["s"]) + t["zy"], t["lo"], t["hi"]).astype(np.int8)]


def _emit_q(node, graph, ctx) -> str:
    t = node.attrs
    a, b = node.inputs
    y = node.outputs[0]
    if node.op == "QMul":
        extra = f", {t['za']}, {t['zb']}, {t['m']}, {t['s']}, {t['zy']}, {t['lo']}, {t['hi']}"
    else:
        extra = (f", {t['za']}, {t['ma']}, {t['sa']}, {t['zb']}, {t['mb']}, {t['sb']}, "
                 f"{t['m']}, {t['s']}, {t['zy']}, {t['lo']}, {t['hi']}")
    return "\n".join(bcast_calls(f"td_{node.op.lower()}_s8", ctx.ptr(a), ctx.ptr(b), ctx.ptr(y),
                                 graph.tensors[a].shape, graph.tensors[b].shape, graph.tensors[y].shape, extra))


for _q in _QOP.values():
    register(_q, emit=_emit_q, header="eltwise.h", inplace=True, tiling=elementwise,
             macs=lambda n, g: prod(g.tensors[n.outputs[0]].shape) if n.op == "QMul" else 0)(_qgolden)


def _emit_add_sat(node, g, ctx) -> str:
    x, y, _ = node.inputs
    return (ctx.copy_in(node) + f"td_add_sat_s16({ctx.ptr(node.outputs[0])}, {ctx.ptr(y)}, {ctx.rows(node)}, "
            f"{g.tensors[x].shape[1]}, {node.attrs['bits']});")


@register("QAddSat", emit=_emit_add_sat, inplace=True, rows=2, header="eltwise_int.h")
def qadd_sat(node, graph, args):
    x, y, _ = args
    lim = (1 << (node.attrs["bits"] - 1)) - 1
    return [np.clip(x.astype(np.int64) + y, -lim - 1, lim).astype(x.dtype)]
