"""QLut: y = table[x + 128] for int8 x: any elementwise function of one int8 tensor (passes/lut.py),
and the uint8 ↔ int8 edge conversions (x ^ 0x80)."""
from __future__ import annotations

import numpy as np

from .registry import register
from .tiles import elementwise


def _emit_lut(node, graph, ctx) -> str:
    table = ctx.array(node.name + "_table", np.asarray(node.attrs["table"], np.int8))
    n = graph.tensors[node.inputs[0]].size
    return f"td_lut_s8({ctx.ptr(node.inputs[0])}, {ctx.ptr(node.outputs[0])}, {table}, {n});"


@register("QLut", emit=_emit_lut, inplace=True, header="eltwise_int.h",
          tiling=lambda n, g: elementwise(n, g, consts=[(n.name + "_table", 256)]))
def qlut(node, graph, args):
    return [np.asarray(node.attrs["table"], np.int8)[args[0].astype(np.int16) + 128]]


def _emit_flip(node, graph, ctx) -> str:
    """Both directions are the same bit flip; the pointers are cast to bytes."""
    n = graph.tensors[node.inputs[0]].size
    return (f"td_flip_sign8((const uint8_t *){ctx.ptr(node.inputs[0])}, "
            f"(uint8_t *){ctx.ptr(node.outputs[0])}, {n});")


@register("U8ToS8", emit=_emit_flip, inplace=True, header="eltwise_int.h", tiling=elementwise)
def u8_to_s8(node, graph, args):
    return [(args[0].astype(np.int16) - 128).astype(np.int8)]


@register("S8ToU8", emit=_emit_flip, inplace=True, header="eltwise_int.h", tiling=elementwise)
def s8_to_u8(node, graph, args):
    return [(args[0].astype(np.int16) + 128).astype(np.uint8)]
