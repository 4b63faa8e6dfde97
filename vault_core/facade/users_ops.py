"""Compatibility path: console users live in ``service/users.py`` (kept for the console's imports)."""

from ..service.users import LOCKED_FOREVER, ConsoleSession

__all__ = ["LOCKED_FOREVER", "ConsoleSession"]
