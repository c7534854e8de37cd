"""C text of values: the C type of a numpy dtype, literals, array initialisers, and how a node's
scratch pieces are laid out. Below the ops, which write their C calls with these."""
from __future__ import annotations

import numpy as np

CTYPES = {
    np.dtype(np.int8): "int8_t", np.dtype(np.uint8): "uint8_t", np.dtype(np.int16): "int16_t",
    np.dtype(np.uint16): "uint16_t", np.dtype(np.int32): "int32_t", np.dtype(np.int64): "int64_t",
    np.dtype(np.float32): "float", np.dtype(np.bool_): "uint8_t", np.dtype(np.float64): "double",
    np.dtype(np.uint32): "uint32_t", np.dtype(np.uint64): "uint64_t",
}


def ctype(dtype) -> str:
    return CTYPES[np.dtype(dtype)]


def c_literal(v, dtype) -> str:
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        f = float(v)
        if np.isnan(f):
            return "NAN"
        if np.isinf(f):
            return "INFINITY" if f > 0 else "-INFINITY"
        s = repr(float(np.float32(f))) if dtype == np.float32 else repr(f)
        return s + ("f" if dtype == np.float32 else "")
    if dtype == np.int64:
        return "INT64_MIN" if int(v) == -(1 << 63) else f"INT64_C({int(v)})"
    if dtype == np.uint64:
        return f"UINT64_C({int(v)})"
    if dtype == np.int32 and int(v) == -(1 << 31):
        return "INT32_MIN"
    return str(int(v))


def scratch_layout(pieces) -> tuple[list[int], int]:
    """Offsets of scratch pieces [(dtype, count), ...] placed one after another, 16-byte aligned, and
    the bytes they take: what an op's `scratch` declares and `EmitContext.scratch` hands out."""
    offsets, top = [], 0
    for dtype, count in pieces:
        offsets.append((top + 15) // 16 * 16)
        top = offsets[-1] + np.dtype(dtype).itemsize * count
    return offsets, top


def c_array_body(values: np.ndarray) -> str:
    flat = np.asarray(values).reshape(-1)
    dtype = flat.dtype
    if dtype == np.bool_:
        flat, dtype = flat.astype(np.uint8), np.dtype(np.uint8)
    if dtype.kind in "iu" and dtype not in (np.int64, np.uint64):
        items = [str(x) for x in flat.tolist()]
        if dtype == np.int32:
            items = ["INT32_MIN" if x == str(-(1 << 31)) else x for x in items]
    else:
        items = [c_literal(x, dtype) for x in flat.tolist()]
    if not items:
        items = ["0"]
    lines = [", ".join(items[i:i + 24]) for i in range(0, len(items), 24)]
    return "{\n  " + ",\n  ".join(lines) + "\n}"
