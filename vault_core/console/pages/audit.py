"""Audit: filter, page, verify, export the audit log (admin, auditor)."""

from vault_core.console import audit_view
from vault_core.console.auth import page_guard

guard = page_guard("audit")
with guard.context():
    audit_view.render(guard)
