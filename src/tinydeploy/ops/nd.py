"""Index arithmetic shared by the data-movement and broadcasting ops (no registrations here).

Every such kernel in C walks an n-d index space `dims` (innermost last) with one signed element
stride per operand. Python does all the shape reasoning at compile time and hands C the smallest
equivalent loop nest: size-1 dims dropped, dims that are contiguous in every operand merged.
"""
from __future__ import annotations

import numpy as np

from ..codegen.ctext import ctype
from ..errors import TinydeployError
from .registry import prod

MAX_RANK = 8   # TD_MAX_RANK in runtime/kernels/td_nd.h


def strides(shape) -> list[int]:
    """Contiguous (C order) element strides."""
    out, acc = [], 1
    for d in reversed(list(shape)):
        out.append(acc)
        acc *= int(d)
    return out[::-1]


def bcast_strides(in_shape, out_shape) -> list[int]:
    """Element strides of an input read under numpy broadcasting to out_shape (0 on broadcast dims)."""
    in_shape = list(in_shape)
    pad = len(out_shape) - len(in_shape)
    if pad < 0:
        raise TinydeployError(f"cannot broadcast shape {in_shape} to {list(out_shape)}")
    full = [1] * pad + in_shape
    st = strides(full)
    res = []
    for d, (i, o) in enumerate(zip(full, out_shape)):
        if i != o and i != 1:
            raise TinydeployError(f"cannot broadcast shape {in_shape} to {list(out_shape)}")
        res.append(0 if i == 1 and o != 1 else st[d])
    return res


def collapse(dims, *stride_lists) -> tuple[list[int], list[list[int]]]:
    """Drop size-1 dims and merge neighbours that are contiguous in every operand. Always rank >= 1."""
    keep = [k for k, d in enumerate(dims) if d != 1]
    d = [int(dims[k]) for k in keep]
    ss = [[int(s[k]) for k in keep] for s in stride_lists]
    k = len(d) - 2
    while k >= 0:
        if all(s[k] == s[k + 1] * d[k + 1] for s in ss):
            d[k] *= d[k + 1]
            for s in ss:
                s[k] = s[k + 1]
                del s[k + 1]
            del d[k + 1]
        k -= 1
    if not d:
        d, ss = [1], [[1] for _ in ss]
    if len(d) > MAX_RANK:
        raise TinydeployError(f"index space of rank {len(d)} after simplification exceeds {MAX_RANK}")
    return d, ss


def esize(graph, name: str) -> int:
    return np.dtype(graph.tensors[name].dtype).itemsize


def suffix(dtype) -> str:
    """Kernel name suffix per element type; bool is stored as uint8 (0/1)."""
    dtype = np.dtype(dtype)
    if dtype == np.bool_:
        return "b8"
    return {"f": "f", "i": "s", "u": "u"}[dtype.kind] + str(8 * dtype.itemsize)


def c_type(dtype) -> str:
    return ctype(dtype)


def copy_call(ctx, x: str, y: str, esz: int, dims, xs, ys, xoff: int = 0, yoff: int = 0) -> str:
    """One td_copy_nd call: y[yoff + Σ i·ys] = x[xoff + Σ i·xs] over dims (element units)."""
    d, (a, b) = collapse(dims, xs, ys)
    if prod(d) == 0:
        return ""
    name = ctx.array("copy_dims", np.array(d + a + b, np.int32))
    xp = f"(const uint8_t *){x}" + (f" + {xoff * esz}" if xoff else "")
    yp = f"(uint8_t *){y}" + (f" + {yoff * esz}" if yoff else "")
    r = len(d)
    return f"td_copy_nd({xp}, {yp}, {esz}, {r}, {name}, {name} + {r}, {name} + {2 * r});"
