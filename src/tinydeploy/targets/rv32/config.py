"""Description of the rv32 target: one RV32IMC[F] core with one SRAM for everything.

A config is a value: build it directly, or load it from a small TOML/JSON file with overrides:

    Rv32Config(sram_bytes=256 * 1024, fpu=True)
    Rv32Config.load("board.toml", stack_bytes=16384)   # file: sram_bytes = "256KiB" / fpu = true
"""

from __future__ import annotations

import dataclasses
import json
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tinydeploy.errors import TinydeployError

# Fixed memory map (not configurable: the runtime's headers and the simulator share it).
SRAM_BASE = 0x8000_0000
MMIO_BASE = 0x1000_0000  # must match runtime/baremetal/td_mmio_rv32.h
MMIO_SIZE = 0x1000

_SIZE_RE = re.compile(r"^\s*(\d+)\s*(|k|kib|kb|m|mib|mb)\s*$", re.IGNORECASE)
_UNITS = {"": 1, "k": 1024, "kib": 1024, "kb": 1024, "m": 1 << 20, "mib": 1 << 20, "mb": 1 << 20}


class FileConfig:
    """Loading and overriding shared by the target configs (frozen dataclasses with a class
    attribute `name`): field values may come from a TOML or JSON file, `*_bytes` fields accept
    sizes like '512KiB', and every error is one line naming the option."""

    name = "target"

    def replace(self, **overrides: Any):
        return dataclasses.replace(self, **_coerce(type(self), overrides))

    @classmethod
    def from_dict(cls, values: dict[str, Any]):
        return cls(**_coerce(cls, values))

    @classmethod
    def load(cls, path: str | Path | None = None, **overrides: Any):
        """Read a TOML or JSON file (keys are the field names; a `[<name>]` table is also accepted)."""
        values: dict[str, Any] = {}
        if path is not None:
            path = Path(path)
            if path.exists() and not path.is_file():   # /dev/zero: a read that never ends
                raise TinydeployError(f"{cls.name}: cannot read target config {path}: not a regular file")
            try:
                text = path.read_text()
                values = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
            except (OSError, ValueError) as exc:
                raise TinydeployError(f"{cls.name}: cannot read target config {path}: {exc}") from None
            if isinstance(values, dict) and isinstance(values.get(cls.name), dict):
                values = values[cls.name]
            if not isinstance(values, dict):
                raise TinydeployError(f"{cls.name}: target config {path} must hold a table of options")
        return cls.from_dict({**values, **overrides})


@dataclass(frozen=True)
class Rv32Config(FileConfig):
    """One RV32IMC core (F optional) at `clock_hz`, 1 cycle per retired instruction.

    sram_bytes:  the one SRAM holding code, constants, data, bss and stack.
    stack_bytes: reserved at the bottom of SRAM; overflowing it faults (the stack grows towards
                 unmapped memory) instead of corrupting data.
    guard:       also unmap the unused SRAM tail after .bss, so a buffer overrun past the last
                 object faults (tests only; reported plans never use it).
    opt_level:   the C optimisation level passed as -O<opt_level>.
    """

    sram_bytes: int = 512 * 1024
    fpu: bool = False
    clock_hz: int = 360_000_000
    stack_bytes: int = 8 * 1024
    guard: bool = False
    opt_level: str = "2"

    name = "rv32"

    def __post_init__(self) -> None:
        if self.sram_bytes <= 0 or self.sram_bytes % 4096:
            raise TinydeployError(f"rv32: sram_bytes must be a positive multiple of 4096, got {self.sram_bytes}")
        if self.sram_bytes > 1 << 30:
            raise TinydeployError(f"rv32: sram_bytes must be at most 1 GiB, got {self.sram_bytes:,}")
        if self.stack_bytes < 256 or self.stack_bytes % 16:
            raise TinydeployError(f"rv32: stack_bytes must be a multiple of 16 and at least 256, got {self.stack_bytes}")
        if self.stack_bytes >= self.sram_bytes:
            raise TinydeployError(f"rv32: stack_bytes ({self.stack_bytes:,}) must be smaller than sram_bytes ({self.sram_bytes:,})")
        if self.clock_hz <= 0:
            raise TinydeployError(f"rv32: clock_hz must be positive, got {self.clock_hz}")
        if self.opt_level not in ("0", "1", "2", "3", "s", "z"):
            raise TinydeployError(f"rv32: opt_level must be one of 0 1 2 3 s z, got {self.opt_level!r}")

    @property
    def memory_levels(self) -> dict[str, int]:
        return {"SRAM": self.sram_bytes}

    @property
    def march(self) -> str:
        return "rv32imfc" if self.fpu else "rv32imc"


def _coerce(cls: type, values: dict[str, Any]) -> dict[str, Any]:
    fields = {f.name: f for f in dataclasses.fields(cls)}
    out = {}
    for key, value in values.items():
        if key not in fields:
            raise TinydeployError(f"{cls.name}: unknown target option {key!r} (known: {', '.join(fields)})")
        kind = fields[key].type  # a string: the modules use `from __future__ import annotations`
        if key.endswith("_bytes") and isinstance(value, str):
            m = _SIZE_RE.match(value)
            if not m:
                raise TinydeployError(f"{cls.name}: {key} must be a byte count like 524288 or '512KiB', got {value!r}")
            value = int(m.group(1)) * _UNITS[m.group(2).lower()]
        elif kind == "int" and isinstance(value, (str, float)):
            try:
                number = float(value)
                value = int(number)
            except (ValueError, OverflowError):
                raise TinydeployError(f"{cls.name}: {key} must be a number, got {value!r}") from None
            if value != number:
                raise TinydeployError(f"{cls.name}: {key} must be a whole number, got {number!r}")
        elif kind == "str":
            value = str(value)
        elif kind == "bool" and not isinstance(value, bool):
            raise TinydeployError(f"{cls.name}: {key} must be true or false, got {value!r}")
        if kind == "int" and (isinstance(value, bool) or not isinstance(value, int)):
            raise TinydeployError(f"{cls.name}: {key} must be a number, got {value!r}")
        out[key] = value
    return out
