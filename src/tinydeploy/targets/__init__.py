"""Targets: one folder each (description, toolchain call, runner)."""
