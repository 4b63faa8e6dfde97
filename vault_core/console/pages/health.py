"""Health: counts, expiry, rotation, key terms and audit activity (admin, auditor)."""

from vault_core.console import health_view
from vault_core.console.auth import page_guard

guard = page_guard("health")
with guard.context():
    health_view.render(guard)
