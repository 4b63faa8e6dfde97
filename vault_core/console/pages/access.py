"""Access: rules, roles and a permission simulator (admin)."""

from vault_core.console import access_view
from vault_core.console.auth import page_guard

guard = page_guard("access")
with guard.context():
    access_view.render(guard)
