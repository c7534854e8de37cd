from .pipeline import lower

__all__ = ["lower"]
