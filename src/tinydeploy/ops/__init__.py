"""Operator families: one module each (see registry.py for the contract)."""
