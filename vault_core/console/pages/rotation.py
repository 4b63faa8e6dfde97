"""Rotation: schedule, rotate now, revert, history (admin, operator)."""

from vault_core.console import rotation_view
from vault_core.console.auth import page_guard

guard = page_guard("rotation")
with guard.context():
    rotation_view.render(guard)
