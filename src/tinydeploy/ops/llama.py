"""Integer SLM ops of the llama2.c architecture (graphs built by ``models/llama/graph.py``).

Goldens call the generic integer ops' functions (ops/embedding.py, norm, linear, rope, attention,
swiglu; also used by ``IntLlama``); the C kernels are in ``runtime/kernels/llama.h``. Row-wise tensors are [T, ...] with
a static T (1 for decode, P for prefill) and a run-time row count ``n`` (graph input): C computes
the first n rows only; goldens compute every row (rows >= n are padding and never read), except
Attention, which stores and attends for the first n rows only (zeros beyond). A per-row vector
scale F is int32 [T, 2] = (mantissa, exponent). Scalar scales are attrs (m, e).
"""
from __future__ import annotations

import numpy as np

from . import attention as att
from .embedding import embed as _embed
from .intmath import I64, quantize_rows, sat
from .linear import cached_weight, linear as _linear
from .norm import rmsnorm_dyn
from .rope import rope as _rope
from .swiglu import swiglu as _swiglu
from .registry import register

H = "llama.h"


def _weff(w8, mw):
    return cached_weight(w8, mw)


def _F(f):
    return np.stack([np.asarray(f[0], I64), np.asarray(f[1], I64)], axis=-1).astype(np.int32)


def _Fpair(F):
    F = np.asarray(F, I64)
    return F[:, 0], F[:, 1]


def _sc(s) -> str:
    return f"(tdl_scale){{{int(s[0])}, {int(s[1])}}}"


def _n(ctx, node, i) -> str:
    return f"{ctx.ptr(node.inputs[i])}[0]"


def _shape(graph, name):
    return graph.tensors[name].shape


def _copy_in(node, g, ctx) -> str:
    """An in-place op whose output the planner did not place over its input copies it first."""
    o, i = node.outputs[0], node.inputs[0]
    if ctx.offsets.get(o) == ctx.offsets.get(i):
        return ""
    return f"memcpy({ctx.ptr(o)}, {ctx.ptr(i)}, {g.tensors[i].nbytes});\n"


def _rows_macs(node, graph):
    T, rows = _shape(graph, node.outputs[0])
    return T * rows * _shape(graph, node.inputs[3])[1]


@register("LlamaEmbed", header=H,
          emit=lambda node, g, ctx: (
              f"tdl_embed({ctx.ptr(node.inputs[0])}, {_n(ctx, node, 1)}, {ctx.ptr(node.inputs[2])}, "
              f"{ctx.ptr(node.inputs[3])}, {_shape(g, node.outputs[0])[1]}, {_sc(node.attrs['c'])}, "
              f"{node.attrs['bits']}, {ctx.ptr(node.outputs[0])});"))
def embed(node, graph, args):
    tok, _, w8, mw = args
    return [_embed(_weff(w8, mw), tok, node.attrs["c"], node.attrs["bits"]).astype(np.int16)]


@register("LlamaRMSNormQ", header=H,
          emit=lambda node, g, ctx: (
              f"tdl_rmsnorm_q8({ctx.ptr(node.inputs[0])}, {_n(ctx, node, 1)}, {_shape(g, node.inputs[0])[1]}, "
              f"{ctx.ptr(node.inputs[2])}, INT64_C({node.attrs['epsn']}), {_sc(node.attrs['c'])}, "
              f"{node.attrs['qmax']}, {ctx.ptr(node.outputs[0])}, {ctx.ptr(node.outputs[1])});"))
def rmsnorm(node, graph, args):
    x, _, G = args
    z8, F = rmsnorm_dyn(x, np.asarray(G, I64), node.attrs["epsn"], node.attrs["c"], node.attrs["qmax"])
    return [z8.astype(np.int8), _F(F)]


@register("LlamaLinearQ8", header=H, macs=_rows_macs,
          emit=lambda node, g, ctx: (
              f"tdl_linear_q8({ctx.ptr(node.inputs[0])}, {ctx.ptr(node.inputs[1])}, {_n(ctx, node, 2)}, "
              f"{ctx.ptr(node.inputs[3])}, {ctx.ptr(node.inputs[4])}, {_shape(g, node.inputs[3])[0]}, "
              f"{_shape(g, node.inputs[3])[1]}, {_sc(node.attrs['c'])}, {node.attrs['bits']}, "
              f"{ctx.ptr(node.outputs[0])}, {int(node.attrs['bits'] > 16)});"))
def linear(node, graph, args):
    x8, F, _, w8, mw = args
    out = _linear(x8, _Fpair(F), _weff(w8, mw), node.attrs["c"], node.attrs["bits"])
    return [out.astype(np.int32 if node.attrs["bits"] > 16 else np.int16)]


@register("LlamaRope", header=H, inplace=True,
          emit=lambda node, g, ctx: (
              _copy_in(node, g, ctx) +
              f"tdl_rope({ctx.ptr(node.outputs[0])}, {_n(ctx, node, 1)}, {_n(ctx, node, 2)}, "
              f"{_shape(g, node.inputs[0])[1]}, {node.attrs['head_size']}, {ctx.ptr(node.inputs[3])}, "
              f"{ctx.ptr(node.inputs[4])});"))
def rope(node, graph, args):
    v, pos, _, cos, sin = args
    T, p = v.shape[0], int(pos[0])
    end = min(p + T, len(cos))
    c = np.zeros((T, cos.shape[1]), I64)
    s = np.zeros((T, cos.shape[1]), I64)
    c[:end - p], s[:end - p] = cos[p:end], sin[p:end]
    return [_rope(v, c, s, node.attrs["head_size"]).astype(np.int16)]


ATT_SCRATCH = "tdl_att_scratch"  # one buffer shared by all attention layers (they run in turn)


def att_scratch_decl(ctx, S: int) -> None:
    decl = f"static int32_t {ATT_SCRATCH}[{S}];"
    if decl not in ctx.decls:
        ctx.decls.append(decl)


def _attention_emit(node, g, ctx):
    a = node.attrs
    D, KV, S = _shape(g, node.inputs[0])[1], _shape(g, node.inputs[1])[1], _shape(g, node.inputs[5])[1]
    scratch = ATT_SCRATCH
    att_scratch_decl(ctx, S)
    i = node.inputs
    l = a["layer"]
    return (f"tdl_attention({ctx.ptr(i[0])}, {ctx.ptr(i[1])}, {ctx.ptr(i[2])}, {_n(ctx, node, 3)}, "
            f"{_n(ctx, node, 4)}, {D}, {KV}, {a['head_size']}, {ctx.ptr(i[5])} + {l * S * KV}, "
            f"{ctx.ptr(i[6])} + {l * S * KV}, {ctx.ptr(i[7])}, {ctx.ptr(i[8])}, {ctx.ptr(i[9])}, "
            f"{ctx.ptr(i[10])}, {ctx.ptr(i[11])}, {_sc(a['c_score'])}, {46 - (a['softmax_bits'] - 1)}, "
            f"{_sc(a['c_dyn'])}, {a['qmax']}, {scratch}, {ctx.ptr(node.outputs[0])}, "
            f"{ctx.ptr(node.outputs[1])});")


def _attention_macs(node, graph):
    return 0  # run-time dependent (2 * dim * (pos + 1) per row)


@register("LlamaAttention", header=H, emit=_attention_emit, macs=_attention_macs)
def attention(node, graph, args):
    """inputs: q, k, v, pos, n, kcache [L,S,KV] (state), vcache (state), kq [KV,2], vq [KV,2],
    mk [KV], mv [KV], exp2 table; outputs a8 [T, D] int8, F [T, 2]."""
    q, k, v, pos, n, kc, vc, kq, vq, mk, mv, _ = args
    a, l, p, n = node.attrs, node.attrs["layer"], int(pos[0]), int(n[0])
    end = p + n
    k8, v8 = att.kv_store(k[:n], v[:n], _Fpair(kq), _Fpair(vq))
    kc[l, p:end], vc[l, p:end] = k8, v8
    o = att.attention(q[:n], kc[l, :end].astype(I64), vc[l, :end].astype(I64), p, mk, mv,
                      a["c_score"], a["head_size"], a["softmax_bits"])
    a8, F = quantize_rows(o, a["c_dyn"], a["qmax"])
    T, D = q.shape
    out8, outF = np.zeros((T, D), np.int8), np.zeros((T, 2), np.int32)
    out8[:n], outF[:n] = a8, _F(F)
    return [out8, outF]


@register("LlamaSwiGLU", header=H,
          emit=lambda node, g, ctx: (
              f"tdl_swiglu_q8({ctx.ptr(node.inputs[0])}, {ctx.ptr(node.inputs[1])}, {_n(ctx, node, 2)}, "
              f"{_shape(g, node.inputs[0])[1]}, {node.attrs['frac_bits']}, {ctx.ptr(node.inputs[3])}, "
              f"{_sc(node.attrs['c_dyn'])}, {node.attrs['qmax']}, {ctx.ptr(node.outputs[0])}, "
              f"{ctx.ptr(node.outputs[1])});"))
def swiglu(node, graph, args):
    h1, h3, _, _tab = args
    g8, F = quantize_rows(_swiglu(h1, h3, node.attrs["frac_bits"]), node.attrs["c_dyn"], node.attrs["qmax"])
    return [g8.astype(np.int8), _F(F)]


@register("LlamaResidualAdd", header=H, inplace=True,
          emit=lambda node, g, ctx: (
              _copy_in(node, g, ctx) +
              f"tdl_residual_add({ctx.ptr(node.outputs[0])}, {ctx.ptr(node.inputs[1])}, {_n(ctx, node, 2)}, "
              f"{_shape(g, node.inputs[0])[1]}, {node.attrs['bits']});"))
def residual_add(node, graph, args):
    x, y, _ = args
    return [sat(np.asarray(x, I64) + y, node.attrs["bits"]).astype(np.int16)]


@register("LlamaLastRow", header=H,
          emit=lambda node, g, ctx: (
              f"tdl_last_row({ctx.ptr(node.inputs[0])}, {_n(ctx, node, 1)}, {_shape(g, node.inputs[0])[1]}, "
              f"{ctx.ptr(node.outputs[0])});"))
def last_row(node, graph, args):
    x, n = args
    return [x[int(n[0]) - 1:int(n[0])].copy()]
