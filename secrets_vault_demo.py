"""A tour of the secrets vault (the seed's ``secrets_vault_demo.py``): ``python secrets_vault_demo.py``.

Basic use, access control, environments, audit and monitoring, rotation
(automatic and custom), the st.secrets replacement, the DatabaseManager and
ConfigManager integrations, and a short performance run. Everything happens
in a temporary vault folder that is removed at the end; values are shown
masked.
"""

from __future__ import annotations

import os
import secrets as pysecrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

from vault_core import AccessDenied, AccessLevel, Environment, SecretType, setup_vault
from vault_core.migration import import_toml
from vault_core.streamlit import VaultSecrets

US_PER_DAY = 86_400_000_000


def masked(value: object) -> str:
    text = str(value)
    return text[:4] + "…" + f"({len(text)} chars)" if len(text) > 4 else "****"


def section(title: str) -> None:
    print(f"\n=== {title} " + "=" * max(0, 60 - len(title)))


def timings(label: str, samples_ns: list[int]) -> None:
    ordered = sorted(samples_ns)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    print(f"  {label:<34} n={len(ordered):<4} median {statistics.median(ordered) / 1000:8.1f} µs"
          f"   p99 {p99 / 1000:8.1f} µs")


def timed(fn, n: int) -> list[int]:
    out = []
    for i in range(n):
        t = time.perf_counter_ns()
        fn(i)
        out.append(time.perf_counter_ns() - t)
    return out


def main(folder: Path) -> None:
    for var in ("VAULT_PATH", "VAULT_DATABASE_URL", "VAULT_MASTER_KEY", "VAULT_PRINCIPAL"):
        os.environ.pop(var, None)
    os.environ["VAULT_ENVIRONMENT"] = "production"

    section("1. Basic use")
    vault = setup_vault(folder / "vault", principal="demo_owner")
    vault.set_roles("admin_user", ["admin"])
    with vault.security_context("admin_user", "192.168.1.100"):
        stripe_id = vault.store_secret(
            name="stripe_api_key", value="sk_live_" + pysecrets.token_hex(12), secret_type=SecretType.API_KEY,
            environment=Environment.PRODUCTION, description="Stripe payment processing API key",
            access_policy={"payment_service": [AccessLevel.READ], "admin": [AccessLevel.ADMIN],
                           "key_rotator": [AccessLevel.ROTATE]})
    value = vault.get_secret(name="stripe_api_key", environment=Environment.PRODUCTION)
    print(f"  stored stripe_api_key ({stripe_id[:8]}…), read back {masked(value)}")
    print(f"  a missing secret reads as {vault.get_secret('nope', Environment.PRODUCTION)!r}")

    section("2. Access control")
    with vault.security_context("payment_service", "10.0.0.5"):
        print(f"  payment_service reads: {masked(vault.get_secret('stripe_api_key', 'production'))}")
    with vault.security_context("key_rotator", "10.0.0.6"):
        try:
            vault.get_secret("stripe_api_key", "production")
        except AccessDenied:
            print("  key_rotator may rotate but not read: AccessDenied (audited)")
    with vault.security_context("intruder", "203.0.113.9"):
        try:
            vault.get_secret("stripe_api_key", "production")
        except AccessDenied:
            print("  intruder: AccessDenied (audited)")

    section("3. Environments")
    for env, url in (("development", "sqlite:///dev.db"), ("staging", "postgresql://staging-db/app"),
                     ("production", "postgresql://prod-db/app")):
        vault.store_secret("database_url", url, SecretType.DATABASE_URL, environment=env)
        vault.store_secret("api_key_openai", f"sk-{env}-" + pysecrets.token_hex(8), SecretType.API_KEY,
                           environment=env)
    vault.grant("dev_team", ["read"], environment="development")
    with vault.security_context("dev_team"):
        print(f"  dev_team reads development: {masked(vault.get_secret('database_url', 'development'))}")
        try:
            vault.get_secret("database_url", "production")
        except AccessDenied:
            print("  dev_team reads production: AccessDenied (a development grant never opens production)")
    report = import_toml(vault, '[db]\nuser = "app"\npassword = "from-secrets-toml"\nport = 5432\n', "staging")
    print(f"  imported a secrets.toml into staging: {report.summary()}")

    section("4. st.secrets replacement")
    st_secrets = VaultSecrets(vault=vault)  # in an app: from vault_core.streamlit import secrets
    staging = st_secrets.for_environment(Environment.STAGING)
    print(f"  {st_secrets!r}")
    print(f"  staging db.port = {staging.db.port!r} (typed), db.password = {masked(staging.db.password)}")

    section("5. Rotation: custom and automatic")
    old = vault.get_secret("stripe_api_key", "production")
    version = vault.rotate_secret(stripe_id, lambda: "sk_live_" + pysecrets.token_hex(12))
    print(f"  custom generator: stripe_api_key now version {version}, changed: "
          f"{vault.get_secret('stripe_api_key', 'production') != old}")
    vault.store_secret("jwt_signing_key", "initial-key", SecretType.ENCRYPTION_KEY, environment="production",
                       rotation_interval_days=30)
    before = st_secrets["jwt_signing_key"]
    real_clock = vault.clock
    vault.clock = lambda: real_clock() + 31 * US_PER_DAY  # a month later (the clock is injectable)
    if hasattr(vault, "rotate_due"):  # what the scheduler / `vault-console rotate --due` runs
        rotated = len(vault.rotate_due().rotated)
    else:
        due = [m for m in vault.list_secrets("production")
               if m.next_rotation_at is not None and m.next_rotation_at.timestamp() * 1e6 <= vault.clock()]
        for meta in due:
            vault.rotate_secret(meta.id)
        rotated = len(due)
    vault.clock = real_clock
    print(f"  automatic: {rotated} secret(s) due after 30 days rotated with the built-in generator")
    print(f"  st.secrets sees the rotation on the next access: {st_secrets['jwt_signing_key'] != before}")

    section("6. Integrations: DatabaseManager and ConfigManager")
    from examples.config_manager import ConfigManager
    from examples.database_manager import DatabaseManager

    vault.store_secret("framework_db_path", str(folder / "framework.db"), environment="production")
    manager = DatabaseManager()
    with manager.connect_framework() as conn:
        conn.execute("create table if not exists t (x)")
    print(f"  DatabaseManager: framework db at {manager.framework_db_path.name}, timer db "
          f"{manager.timer_db_path.name} (default: no secret stored)")
    config = ConfigManager(Environment.PRODUCTION)
    apis = config.get_external_apis()
    print(f"  ConfigManager: pool_size {config.get_database_config()['pool_size']}, "
          f"apis configured: {sorted(k for k, v in apis.items() if v)}")

    section("7. Audit and monitoring")
    for entry in vault.get_audit_log(secret_id=stripe_id, limit=8):
        flag = "" if entry["success"] else f"   ({entry['outcome']}: {entry['details'][:60]})"
        print(f"  {entry['timestamp']:%H:%M:%S} {entry['user_id']:<16} {entry['operation']:<8}{flag}")
    health = vault.get_vault_health()
    print(f"  health: {health['total_secrets']} secrets {health['by_environment']}, "
          f"rotation due {health['rotation_due']}, expiring soon {health['expiring_soon']}")
    check = vault.verify_audit_log()
    print(f"  audit chain verified: {getattr(check, 'ok', check)}")

    section("8. Performance (a few hundred operations)")
    timings("store_secret (new)", timed(
        lambda i: vault.store_secret(f"perf/key_{i}", pysecrets.token_hex(16), environment="testing"), 100))
    timings("get_secret (decrypt + audit)", timed(
        lambda i: vault.get_secret(f"perf/key_{i % 100}", "testing"), 200))
    perf = st_secrets.for_environment("testing")
    perf["perf/key_0"]
    timings("secrets[...] cached", timed(lambda i: perf["perf/key_0"], 300))
    timings("list_secrets (100)", timed(lambda i: vault.list_secrets("testing", limit=100), 20))
    timings("rotate_secret", timed(lambda i: vault.rotate_secret(name=f"perf/key_{i}", environment="testing"), 20))
    vault.storage.dispose()
    print("\nDone: every value above was read through the audited, access-checked vault.")


if __name__ == "__main__":
    with tempfile.TemporaryDirectory(prefix="vault-demo-") as tmp:
        main(Path(tmp))
    sys.exit(0)
