"""Scheduling: static activation-memory planning (greedy and exact) and its lower bound."""

from tinydeploy.schedule.liveness import Buffer, InPlace, MemoryPlanError, lower_bound
from tinydeploy.schedule.memory import (
    MemoryPlan,
    check_plan,
    plan,
    plan_exact,
    plan_greedy,
    plan_table,
    timeline_ascii,
)

__all__ = [
    "Buffer",
    "InPlace",
    "MemoryPlan",
    "MemoryPlanError",
    "lower_bound",
    "plan_greedy",
    "plan_exact",
    "plan",
    "check_plan",
    "timeline_ascii",
    "plan_table",
]
