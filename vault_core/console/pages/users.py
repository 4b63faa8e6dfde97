"""Users: add, roles, passwords, locks and sessions (admin)."""

from vault_core.console import users_view
from vault_core.console.auth import page_guard

guard = page_guard("users")
with guard.context():
    users_view.render(guard)
