"""Size limits, each with its reason, checked with Python integers (an int64 product can wrap around
to a small or negative number and let anything through)."""
from __future__ import annotations

import math

import numpy as np

from .errors import TinydeployError

# No tensor on a microcontroller comes near this; larger means a broken or hostile model.
MAX_TENSOR_BYTES = 1 << 30
# Constants (weights, folded values) a host build may hold: the flash of the largest MCUs; beyond
# it the C source alone runs to hundreds of MB. A target with a known memory uses that instead.
HOST_CONST_BYTES = 16 << 20


def check_extent(what: str, shape, dtype) -> None:
    """Refuse a tensor past MAX_TENSOR_BYTES. Zero dimensions are left out of the product: a tensor
    with no elements still has loops and strides over its other dimensions."""
    extent = math.prod(int(d) for d in shape if d) * np.dtype(dtype).itemsize
    if extent > MAX_TENSOR_BYTES:
        zero = " (leaving out its zero dimensions)" if 0 in shape else ""
        raise TinydeployError(f"{what} has shape {list(shape)}: {extent:,} bytes{zero} is beyond any target "
                              f"(limit {MAX_TENSOR_BYTES:,} bytes)")


def check_constants(what: str, nbytes: int, limit: int) -> None:
    """Refuse constants past what the target can hold (limit: bytes, see HOST_CONST_BYTES)."""
    if nbytes > limit:
        raise TinydeployError(f"{what}: {nbytes:,} bytes of constants, beyond the limit of {limit:,} bytes "
                              f"for this target")
