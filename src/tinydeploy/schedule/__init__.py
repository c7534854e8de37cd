"""Scheduling: static activation-memory planning (greedy and exact) and its lower bound.
The public names are those of `memory` (which re-exports the liveness types)."""

from tinydeploy.schedule import memory
from tinydeploy.schedule.memory import *  # noqa: F401,F403

__all__ = memory.__all__
