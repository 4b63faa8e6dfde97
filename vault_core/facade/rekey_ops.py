"""(placeholder, filled by its issue)"""

from __future__ import annotations

from .base import VaultBase


class RekeyOps(VaultBase):
    """(placeholder)"""
