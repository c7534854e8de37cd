"""The kernel description of a target: which C kernel variants an op may emit, and the cost
constants it chooses between them with. Each target supplies one (targets/<name>); compile carries it
to the memory planner (an op's scratch depends on the variant) and to codegen (`ctx.kernels`).

`TD_FAST=0` (reference kernels only) and `TD_WINOGRAD=0` (no Winograd) in the environment are debug
overrides for A/B measurements, applied once by `compiler.compile_graph`.
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Callable

from ..codegen.ctext import scratch_layout


@dataclass(frozen=True)
class Kernels:
    fast: bool = True       # register-blocked int8 kernels (td_fast*.h): matmul, conv, depthwise 3x3
    winograd: bool = True   # Winograd F(2x2,3x3) for 3x3 stride-1 QConv where its estimate is lower
    cores: int = 1          # cores that run a kernel together (cluster): per-core scratch is this many times
    # instruction estimates, fitted on the rv32 simulator (ops/winograd.py `worthwhile`)
    direct_fast_per_mac: float = 2.45     # td_conv_fast
    direct_ref_per_mac: float = 6.0       # td_conv_s8 (the fast kernel takes a row's last OW % 4 pixels one by one)
    wino_per_tile_channel: float = 70     # input transform, per 2x2 output tile and input channel
    wino_per_product: float = 2.55        # per product of the 16 C K products of a tile
    wino_per_tile_output: float = 55      # output transform and requantization, per tile and output channel


@dataclass(frozen=True)
class Choice:
    """A kernel variant chosen for one node: the scratch it needs, [(dtype, count), ...], and its call,
    emit(ctx, pointers to those pieces). One choice serves the op's `scratch` and its `emit`."""
    scratch: list
    emit: Callable[..., str]

    @property
    def scratch_bytes(self) -> int:
        return scratch_layout(self.scratch)[1]


def debug_overrides(k: Kernels) -> Kernels:
    """`k` with the TD_FAST / TD_WINOGRAD environment overrides applied."""
    fast = k.fast and os.environ.get("TD_FAST", "1") != "0"
    return dataclasses.replace(k, fast=fast, winograd=fast and k.winograd and os.environ.get("TD_WINOGRAD", "1") != "0")
