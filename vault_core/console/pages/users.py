"""Users: add, roles, passwords, locks and sessions; SSO group mappings; machines (AppRole) for the HTTP API (admin)."""

from vault_core.console import machines_view, sso_view, users_view
from vault_core.console.auth import page_guard

guard = page_guard("users")
with guard.context():
    users_view.render(guard)
    sso_view.render(guard)
    machines_view.render(guard)
