"""The seed's usage examples, run as written (imports from vault_core)."""

from __future__ import annotations

import secrets

from vault_core import AccessLevel, Environment, SecretType, setup_vault


def test_basic_secret_management_and_automatic_rotation(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("VAULT_PRINCIPAL", "deploy_bot")

    # Setup vault
    vault = setup_vault("production_vault")
    # (a new vault is owned by the process identity; the seed's admin_user is given the admin role)
    vault.set_roles("admin_user", ["admin"])

    # --- 1. Basic Secret Management (verbatim) ---
    with vault.security_context("admin_user", "192.168.1.100"):
        secret_id = vault.store_secret(
            name="stripe_api_key",
            value="sk_live_abc123...",
            secret_type=SecretType.API_KEY,
            environment=Environment.PRODUCTION,
            description="Stripe payment processing API key",
            access_policy={
                "payment_service": [AccessLevel.READ],
                "admin": [AccessLevel.ADMIN],
                "key_rotator": [AccessLevel.ROTATE]
            }
        )

    # Retrieve secret
    stripe_key = vault.get_secret(name="stripe_api_key", environment=Environment.PRODUCTION)
    assert stripe_key == "sk_live_abc123..."

    # --- 2. Automatic Rotation (verbatim) ---
    vault.store_secret(
        name="jwt_signing_key",
        value="current_jwt_key_256_bits",
        secret_type=SecretType.ENCRYPTION_KEY,
        environment=Environment.PRODUCTION,
        rotation_interval_days=30,  # Rotate every 30 days
        access_policy={
            "auth_service": [AccessLevel.READ],
            "key_manager": [AccessLevel.ROTATE]
        }
    )

    # Custom rotation function
    def generate_jwt_key():
        return secrets.token_urlsafe(32)

    # Rotate with custom logic
    vault.rotate_secret(secret_id, generate_jwt_key)

    rotated = vault.get_secret(name="stripe_api_key", environment=Environment.PRODUCTION)
    assert rotated != "sk_live_abc123..." and len(rotated) == 43

    # --- 3. Audit and Monitoring (verbatim, with prints collected) ---
    lines = []
    audit_entries = vault.get_audit_log(secret_id=secret_id, limit=50)
    for entry in audit_entries:
        lines.append(f"{entry['timestamp']}: {entry['user_id']} performed {entry['operation']}")
        if not entry['success']:
            lines.append(f"   Failed: {entry['details']}")
    health = vault.get_vault_health()
    if health['expiring_soon'] > 0:
        lines.append(f"⚠ {health['expiring_soon']} secrets expiring in 30 days")

    ops = [(e["user_id"], e["operation"]) for e in audit_entries]
    assert ops == [("deploy_bot", "read"), ("deploy_bot", "rotate"), ("deploy_bot", "read"),
                   ("admin_user", "store")]
    assert health["total_secrets"] == 2
    assert all("sk_live" not in line for line in lines)

    # the policy became rules: payment_service reads, key_rotator rotates but cannot read
    with vault.security_context("payment_service", "10.0.0.5"):
        assert vault.get_secret(name="stripe_api_key", environment=Environment.PRODUCTION) == rotated
    with vault.security_context("key_rotator", "10.0.0.6"):
        vault.rotate_secret(secret_id)
        try:
            vault.get_secret(name="stripe_api_key", environment=Environment.PRODUCTION)
            raise AssertionError("ROTATE must not imply READ")
        except PermissionError:
            pass
