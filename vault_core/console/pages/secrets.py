"""Secrets: browse, reveal, create, edit, delete (all roles; auditors read metadata only)."""

from vault_core.console import secrets_view
from vault_core.console.auth import page_guard

guard = page_guard("secrets")
with guard.context():
    secrets_view.render(guard)
