"""The one exception type users see."""


class TinydeployError(Exception):
    """User-facing error: its message is one clear sentence (which node, which tensor, what limit)."""


class BudgetError(TinydeployError):
    """A program does not fit the target's memory (names bytes needed and available)."""
