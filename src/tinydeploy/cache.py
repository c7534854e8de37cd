"""Where tinydeploy keeps files it can rebuild (calibrations, the rv32 hook library)."""
from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """$TINYDEPLOY_CACHE, else $XDG_CACHE_HOME/tinydeploy, else ~/.cache/tinydeploy."""
    if os.environ.get("TINYDEPLOY_CACHE"):
        return Path(os.environ["TINYDEPLOY_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "tinydeploy"
