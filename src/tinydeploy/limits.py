"""Size limits, each with its reason, checked with Python integers (an int64 product can wrap around
to a small or negative number and let anything through)."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .errors import TinydeployError

# No tensor on a microcontroller comes near this; larger means a broken or hostile model.
MAX_TENSOR_BYTES = 1 << 30
# Constants (weights, folded values) a host build may hold: the host has no limit of its own, this
# one keeps the generated C (several characters per byte) to minutes of compiling; the language
# model's host budget (models/llama/budget.py) is this one. A target with a known memory uses that.
HOST_CONST_BYTES = 64 << 20


def check_extent(what: str, shape, dtype) -> None:
    """Refuse a tensor past MAX_TENSOR_BYTES. Zero dimensions are left out of the product: a tensor
    with no elements still has loops and strides over its other dimensions."""
    extent = math.prod(int(d) for d in shape if d) * np.dtype(dtype).itemsize
    if extent > MAX_TENSOR_BYTES:
        zero = " (leaving out its zero dimensions)" if 0 in shape else ""
        raise TinydeployError(f"{what} has shape {list(shape)}: {extent:,} bytes{zero} is beyond any target "
                              f"(limit {MAX_TENSOR_BYTES:,} bytes)")


@dataclass(frozen=True)
class ConstLimit:
    """Bytes of constants a target holds, and where (for the error: 'SRAM of target rv32')."""
    nbytes: int
    where: str

    def text(self) -> str:
        return f"the {self.nbytes:,} bytes of {self.where}"


HOST_CONST = ConstLimit(HOST_CONST_BYTES, "constants a host build allows (limits.HOST_CONST_BYTES)")


def check_constants(what: str, nbytes: int, limit: ConstLimit | None) -> None:
    """Refuse constants past what the target can hold (None: the host's HOST_CONST)."""
    limit = limit or HOST_CONST
    if nbytes > limit.nbytes:
        raise TinydeployError(f"{what}: {nbytes:,} bytes of constants, beyond {limit.text()}")
