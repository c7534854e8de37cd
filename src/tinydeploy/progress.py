"""Progress for steps that can take more than a second: a transient spinner on an interactive
stderr, nothing otherwise (so error output stays one line and logs stay clean)."""
from __future__ import annotations

import sys
from contextlib import contextmanager


@contextmanager
def step(message: str):
    if not sys.stderr.isatty():
        yield
        return
    from rich.console import Console
    with Console(stderr=True).status(message, spinner="dots"):
        yield
