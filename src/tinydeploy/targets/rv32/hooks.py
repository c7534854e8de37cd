"""The simulator's callbacks: block hook (instruction counting) and mmio (console, counter).

The fast path is hook.c, compiled into a host shared library on first use with
`python -m ziglang cc -shared` and cached in tinydeploy's cache folder (cache.py) keyed by a hash of its source;
unicorn calls it directly through its C API. If it cannot be built, the same logic runs as Python
callbacks (with a warning), ~100x slower. Both work on the same fields (`_State` / `_PyState`),
which simulator.run reads and corrects between stops. `attach_counter` installs the block hook
alone, for the cluster simulator (targets/cluster), which serves its peripherals itself.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import unicorn
from unicorn.unicorn_py3 import unicorn as ucpy

from tinydeploy.cache import cache_dir
from tinydeploy.errors import TinydeployError

from .config import MMIO_BASE, MMIO_SIZE

F_LIMIT, F_CONSOLE_FULL, F_OUTSIDE, F_REPLAY = 1, 2, 4, 8
MMIO_CONSOLE, MMIO_CYCLES_LO, MMIO_CYCLES_HI = 0x0, 0x4, 0x8
_HOOK_SRC = Path(__file__).with_name("hook.c")


class _State(ctypes.Structure):
    """Mirror of `struct td_sim` in hook.c."""
    _fields_ = [
        ("count", ctypes.c_uint64), ("limit", ctypes.c_uint64), ("last_before", ctypes.c_uint64),
        ("prefix", ctypes.POINTER(ctypes.c_uint32)), ("console", ctypes.POINTER(ctypes.c_uint8)),
        ("stop", ctypes.c_void_p),
        ("lo", ctypes.c_uint32), ("nhalf", ctypes.c_uint32), ("last_start", ctypes.c_uint32),
        ("last_end", ctypes.c_uint32), ("load_pc", ctypes.c_uint32), ("hi_latch", ctypes.c_uint32),
        ("flags", ctypes.c_uint32), ("resume_pc", ctypes.c_uint32), ("resume_armed", ctypes.c_uint32),
        ("console_len", ctypes.c_uint32), ("console_cap", ctypes.c_uint32), ("bad_pc", ctypes.c_uint32),
    ]


# ---------------------------------------------------------------------------------------------
# The C hook library: built once per source version, cached, loaded once per process.

_hook_lib: ctypes.CDLL | None | bool = False  # False = not tried yet


def hook_library() -> ctypes.CDLL | None:
    """The compiled hook library, or None (with a warning) when it cannot be built."""
    global _hook_lib
    if _hook_lib is not False:
        return _hook_lib  # type: ignore[return-value]
    src = _HOOK_SRC.read_bytes()
    key = hashlib.sha256(src + sys.platform.encode() + platform.machine().encode()).hexdigest()[:16]
    path = cache_dir() / f"rv32-hook-{key}.so"
    try:
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            # Build under a unique name, then rename: parallel test workers may race here.
            fd, tmp = tempfile.mkstemp(suffix=".so", dir=path.parent)
            os.close(fd)
            # -nostdlib: the hook needs no libc, and zig would otherwise build one (seconds).
            cmd = [sys.executable, "-m", "ziglang", "cc", "-shared", "-fPIC", "-O2", "-nostdlib",
                   "-o", tmp, str(_HOOK_SRC)]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0:
                os.unlink(tmp)
                raise OSError(proc.stderr.strip()[:300])
            os.replace(tmp, path)
        lib = ctypes.CDLL(str(path))
        lib.td_attach.restype = ctypes.c_int
        lib.td_attach.argtypes = [ctypes.c_void_p, ctypes.POINTER(_State), ctypes.c_void_p, ctypes.c_void_p,
                                  ctypes.c_uint64, ctypes.c_uint64, ctypes.POINTER(ctypes.c_uint64)]
        lib.td_attach_block.restype = ctypes.c_int
        lib.td_attach_block.argtypes = [ctypes.c_void_p, ctypes.POINTER(_State), ctypes.c_void_p,
                                        ctypes.POINTER(ctypes.c_uint64)]
        _hook_lib = lib
    except OSError as exc:
        warnings.warn(f"rv32: cannot build the C simulator hook ({exc}); using the ~100x slower Python hook",
                      RuntimeWarning, stacklevel=2)
        _hook_lib = None
    return _hook_lib  # type: ignore[return-value]


# ---------------------------------------------------------------------------------------------
# Python fallback: the same three callbacks as hook.c, on a plain object with the same fields
# (attribute access on it is several times faster than on the ctypes struct).

class _PyState:
    __slots__ = [name for name, _ in _State._fields_ if name not in ("prefix", "stop")]

    def __init__(self, **values):
        for name in self.__slots__:
            setattr(self, name, values.get(name, 0))
        self.console = bytearray(self.console_cap)


def _python_block_hook(uc: unicorn.Uc, st: _PyState, pre: list[int]):
    lo, top = st.lo, 2 * st.nhalf

    def block(uc, address, size, _):
        a = address - lo
        if a < 0 or a + size > top:
            st.flags |= F_OUTSIDE
            st.bad_pc = address
            uc.emu_stop()
            return
        count = st.count
        st.last_before, st.last_start, st.last_end = count, address, address + size
        st.count = count = count + pre[(a + size) >> 1] - pre[a >> 1]
        if count > st.limit:  # read each time: the cluster moves the limit between runs
            st.flags |= F_LIMIT
            uc.emu_stop()

    uc.hook_add(unicorn.UC_HOOK_BLOCK, block)
    return block


def _attach_python(uc: unicorn.Uc, st: _PyState, prefix: np.ndarray) -> list:
    pre = prefix.tolist()
    block = _python_block_hook(uc, st, pre)

    def read(uc, offset, size, _):
        if offset == MMIO_CYCLES_LO:
            if st.resume_armed and st.last_start == st.resume_pc:
                pc, st.resume_armed = st.resume_pc, 0
            elif st.last_start <= st.load_pc < st.last_end:
                pc = st.load_pc
            else:
                st.flags |= F_REPLAY
                uc.emu_stop()
                return 0
            v = st.last_before + pre[(pc - st.lo) >> 1] - pre[(st.last_start - st.lo) >> 1]
            st.hi_latch = v >> 32
            return v & 0xFFFFFFFF
        return st.hi_latch if offset == MMIO_CYCLES_HI else 0

    def write(uc, offset, size, value, _):
        if offset != MMIO_CONSOLE:
            return
        if st.console_len >= st.console_cap:
            st.flags |= F_CONSOLE_FULL
            uc.emu_stop()
            return
        st.console[st.console_len] = value & 0xFF
        st.console_len += 1

    uc.mmio_map(MMIO_BASE, MMIO_SIZE, read, None, write, None)
    return [block, read, write]


def _c_state(common: dict, prefix: np.ndarray, console) -> _State:
    return _State(**common, console=console, prefix=prefix.ctypes.data_as(ctypes.POINTER(ctypes.c_uint32)),
                  stop=ctypes.cast(ucpy.uclib.uc_emu_stop, ctypes.c_void_p).value)


def _check(err: int, what: str) -> None:
    if err:
        raise TinydeployError(f"rv32: internal error: attaching the simulator {what} failed ({unicorn.UcError(err)})")


def _hook_add_ptr() -> int:
    return ctypes.cast(ucpy.uclib.uc_hook_add, ctypes.c_void_p).value


def attach(uc: unicorn.Uc, common: dict, prefix: np.ndarray, use_c_hook: bool = True):
    """Install the callbacks on `uc`. Returns (state, console buffer, objects to keep alive)."""
    lib = hook_library() if use_c_hook else None
    if lib is None:
        st = _PyState(**common)
        return st, st.console, _attach_python(uc, st, prefix)
    console = (ctypes.c_uint8 * common["console_cap"])()
    st = _c_state(common, prefix, console)
    handle = ctypes.c_uint64()
    _check(lib.td_attach(uc._uch, ctypes.byref(st), _hook_add_ptr(),
                         ctypes.cast(ucpy.uclib.uc_mmio_map, ctypes.c_void_p).value,
                         MMIO_BASE, MMIO_SIZE, ctypes.byref(handle)), "hook")
    return st, console, [console, st]


def attach_counter(uc: unicorn.Uc, common: dict, prefix: np.ndarray, use_c_hook: bool = True):
    """Install only the counting block hook (the caller maps its own peripherals).

    Returns (state, objects to keep alive). The state's `limit` may be moved between runs: the
    hook stops before entering the first block that would take `count` past it (F_LIMIT)."""
    lib = hook_library() if use_c_hook else None
    if lib is None:
        st = _PyState(**common)
        return st, [_python_block_hook(uc, st, prefix.tolist())]
    st = _c_state(common, prefix, None)
    handle = ctypes.c_uint64()
    _check(lib.td_attach_block(uc._uch, ctypes.byref(st), _hook_add_ptr(), ctypes.byref(handle)), "block hook")
    return st, [st]
