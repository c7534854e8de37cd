"""The one exception type users see."""


class TinydeployError(Exception):
    """User-facing error: its message is one clear sentence (which node, which tensor, what limit)."""
