"""Targets: one folder each, implementing the protocol of `base.py`. The folders whose package exports
`TARGET` are the registry: `names()` lists them (the `--target` choices), `get()` builds one from its
`--target-config`. (A folder without it, e.g. a simulator harness not yet behind the protocol, is no
choice.)"""
from __future__ import annotations

import importlib
from pathlib import Path

from ..errors import TinydeployError
from .base import Target

HERE = Path(__file__).resolve().parent
DEFAULT = "host"  # --target's default everywhere (BRIEF section 3)


def names(programs: bool = False) -> list[str]:
    """Target names; with `programs`, only those that run a generated main (generate)."""
    found = {p.name: target_class(p.name) for p in sorted(HERE.iterdir()) if (p / "__init__.py").is_file()}
    return [n for n, cls in found.items() if cls and (cls.runs_programs or not programs)]


def target_class(name: str) -> type[Target] | None:
    return getattr(importlib.import_module(f"{__name__}.{name}"), "TARGET", None)


def get(target: str | Target, config_path=None) -> Target:
    """A target by name (built from `--target-config FILE` if given), or a Target value as it is."""
    if isinstance(target, Target):
        return target
    if target not in names():
        raise TinydeployError(f"unknown target {target!r} (known: {', '.join(names())})")
    return target_class(target).load(config_path)
