"""Health figures, `vault-console health` exit codes, Prometheus metrics and JSON logs (issue 8)."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import signal
import sqlite3
import subprocess
import sys
import urllib.request
from datetime import datetime, timedelta, timezone

import pytest

from tests.pgserver import start_postgres
from vault_core import AccessDenied, open_vault
from vault_core.logs import REDACTED, configure_logging, get_logger, log_event
from vault_core.metrics import VaultMetrics
from vault_core.storage.schema import login_failures
from vault_core.storage import repos

from vault_core.types import US_PER_DAY, Clock, now_us  # noqa: E402
CANARY = "canary-M3tr1cs-value"


def cli(*args: str, path, env_extra: dict | None = None, input_text: str | None = None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("VAULT_")}
    env.update({"VAULT_PATH": str(path), "VAULT_PRINCIPAL": "owner"}, **(env_extra or {}))
    return subprocess.run([sys.executable, "-m", "vault_core.cli", *args], env=env, input=input_text,
                          capture_output=True, text=True, timeout=120)


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
        return resp.read().decode()


def sample(text: str, metric: str, **labels: str) -> float:
    """The value of one sample in the exposition text (0 when absent)."""
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    pattern = re.escape(metric) + (r"\{" + re.escape(want) + r"\}" if want else "") + r" (\S+)"
    found = re.search(r"^" + pattern + r"$", text, re.M)
    return float(found.group(1)) if found else 0.0


# -- health figures ------------------------------------------------------------------------------------
def test_health_reports_overdue_expired_and_failed_logins(vault):
    base = vault.clock()
    vault.store_secret("rotating", "a", environment="production", rotation_interval_days=1)
    vault.store_secret("expiring", "b", environment="staging",
                       expires_at=datetime.now(timezone.utc) + timedelta(days=2))
    vault.store_secret("plain", "c", environment="staging", secret_type="token")
    with vault.storage.transaction() as tx:
        tx.conn.execute(login_failures.insert(), [{"principal": "eve", "ts": base - 2 * US_PER_DAY},
                                                  {"principal": "eve", "ts": base - 1000},
                                                  {"principal": "bob", "ts": base}])
    health = vault.get_vault_health()
    assert health["by_environment"] == {"production": 1, "staging": 2}
    assert health["by_type"] == {"generic": 2, "token": 1}
    assert health["failed_logins_24h"] == 2  # the two-day-old failure is not counted
    assert health["expiring_soon"] == 1 and health["expired"] == 0 and health["rotation_overdue"] == 0
    assert health["needs_attention"] == []
    vault.clock = lambda: base + 3 * US_PER_DAY  # three days later
    health = vault.get_vault_health()
    assert health["rotation_overdue"] == 1 and health["expired"] == 1
    assert any("overdue" in p for p in health["needs_attention"])
    assert any("expired" in p for p in health["needs_attention"])
    with vault.security_context("nobody"):  # no admin/auditor: no figures
        assert set(vault.get_vault_health()) == {"sealed", "backend", "reachable"}


def test_health_flags_a_worn_out_key_term(vault):
    with vault.storage.transaction() as tx:
        repos.keys.count_encryptions(tx, 1, 2**31)
    problems = vault.get_vault_health()["needs_attention"]
    assert any("key term 1" in p for p in problems)


# -- vault-console health ----------------------------------------------------------------------------------
def test_health_command_exit_codes(tmp_path):
    path = tmp_path / "v"
    v = open_vault(path, principal="owner")
    v.store_secret("db.password", CANARY, environment="production")
    v.storage.dispose()
    ok = cli("--json", "health", path=path)
    assert ok.returncode == 0, ok.stderr
    report = json.loads(ok.stdout)
    assert report["needs_attention"] == [] and report["last_audit_verify"]["ok"] is True
    assert CANARY not in ok.stdout + ok.stderr

    # broken chain: edit one audit row behind the vault's back
    db = path / "vault.db"
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE audit_log SET principal = 'someone-else' WHERE seq = 2")
    conn.close()
    broken = cli("--json", "health", path=path)
    assert broken.returncode == 1
    assert any("audit chain is broken" in p for p in json.loads(broken.stdout)["needs_attention"])
    verify = cli("audit", "verify", path=path)
    assert verify.returncode == 8 and "row 2" in verify.stdout

    # sealed: the master key file is gone
    os.rename(path / "master.key", tmp_path / "master.key.away")
    sealed = cli("--json", "health", path=path)
    assert sealed.returncode == 1
    assert json.loads(sealed.stdout)["sealed"] is True
    assert cli("get", "db.password", "--env", "production", path=path).returncode == 4

    missing = cli("health", path=tmp_path / "no-such-vault")
    assert missing.returncode == 1


def test_health_command_overdue_rotation_exits_1(tmp_path):
    path = tmp_path / "v"
    three_days_ago = Clock(lambda: now_us() - 3 * US_PER_DAY)  # stored then: its 1-day rotation is 2 days overdue
    v = open_vault(path, principal="owner", clock=three_days_ago)
    v.store_secret("api.key", "x", environment="production", rotation_interval_days=1)
    v.storage.dispose()
    out = cli("health", "--no-verify", path=path)
    assert out.returncode == 1 and "overdue for rotation" in out.stdout


def test_health_command_unreachable_postgres_exits_1(tmp_path):
    server = start_postgres(tmp_path / "pg")
    try:
        server.create_database("vault_health")
        url = server.url("vault_health")
        assert cli("init", path=tmp_path / "v", env_extra={"VAULT_DATABASE_URL": url}).returncode == 0
        up = cli("health", path=tmp_path / "v", env_extra={"VAULT_DATABASE_URL": url})
        assert up.returncode == 0, up.stdout + up.stderr
        server.stop()
        down = cli("--json", "health", path=tmp_path / "v", env_extra={"VAULT_DATABASE_URL": url})
        assert down.returncode == 1
        report = json.loads(down.stdout)
        assert report["reachable"] is False
        assert url not in down.stdout + down.stderr  # no connection string in the report
    finally:
        server.stop()


# -- metrics ----------------------------------------------------------------------------------------
def test_metrics_scrape_shows_counters_moving(vault):
    metrics = VaultMetrics(vault, health_ttl=0)
    port = metrics.start(0)
    try:
        before = scrape(port)
        vault.store_secret("svc.token", CANARY, environment="production")
        for _ in range(3):
            assert vault.get_secret("svc.token", "production") == CANARY
        with vault.security_context("stranger"):
            with pytest.raises(AccessDenied):
                vault.get_secret("svc.token", "production")
        after = scrape(port)
        assert sample(after, "vault_operations_total", operation="read", outcome="allowed") == \
            sample(before, "vault_operations_total", operation="read", outcome="allowed") + 3
        assert sample(after, "vault_operations_total", operation="store", outcome="allowed") == 1
        assert sample(after, "vault_operations_total", operation="read", outcome="denied") == 1
        assert sample(after, "vault_operation_duration_seconds_count", operation="read") == 4
        assert sample(after, "vault_secrets", environment="production") == 1
        assert sample(after, "vault_up") == 1 and sample(after, "vault_sealed") == 0
        assert "vault_failed_logins_24h 0.0" in after and "vault_rotation_overdue 0.0" in after
        assert CANARY not in after and "svc.token" not in after  # no values, no secret names
    finally:
        metrics.close()
    vault.get_secret("svc.token", "production")  # after close the hook is gone: nothing breaks


def test_a_strict_vault_reports_up_and_its_gauges(tmp_path):
    """The console's vault is strict (no caller, no access): health is read as system:metrics."""
    owner = open_vault(tmp_path / "v", principal="owner")
    owner.store_secret("db_url", CANARY, environment="production")
    strict = open_vault(tmp_path / "v", strict=True, create=False)
    with pytest.raises(AccessDenied):
        strict.get_vault_health()
    metrics = VaultMetrics(strict, health_ttl=0)
    try:
        text = metrics.render().decode()
        assert sample(text, "vault_up") == 1 and sample(text, "vault_secrets", environment="production") == 1
        assert CANARY not in text and "db_url" not in text
    finally:
        metrics.close()
        strict.storage.dispose()
        owner.storage.dispose()


def test_metrics_command_serves_and_stops(tmp_path):
    path = tmp_path / "v"
    v = open_vault(path, principal="owner")
    v.store_secret("a", "b", environment="staging")
    v.storage.dispose()
    env = {k: val for k, val in os.environ.items() if not k.startswith("VAULT_")}
    env.update(VAULT_PATH=str(path), VAULT_PRINCIPAL="owner")
    proc = subprocess.Popen([sys.executable, "-m", "vault_core.cli", "metrics", "--port", "0", "--health-ttl", "0"],
                            env=env, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stderr.readline()
        port = int(re.search(r":(\d+)/metrics", line).group(1))
        first = sample(scrape(port), "vault_operations_total", operation="health", outcome="allowed")
        text = scrape(port)
        assert sample(text, "vault_operations_total", operation="health", outcome="allowed") == first + 1
        assert sample(text, "vault_secrets", environment="staging") == 1
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0


# -- logs -----------------------------------------------------------------------------------------------
def test_json_logs_redact_value_fields():
    stream = io.StringIO()
    handler = configure_logging(logging.INFO, stream)
    try:
        log = get_logger("test")
        log_event(log, "stored", name="db.password", value=CANARY, password=CANARY, blob=CANARY.encode(),
                  nested={"token": CANARY, "count": 2})
        doc = json.loads(stream.getvalue().splitlines()[-1])
        assert doc["event"] == "stored" and doc["logger"] == "vault_core.test" and doc["level"] == "info"
        assert doc["name"] == "db.password" and doc["nested"]["count"] == 2
        assert doc["value"] == doc["password"] == doc["blob"] == doc["nested"]["token"] == REDACTED
        assert CANARY not in stream.getvalue()
    finally:
        logging.getLogger("vault_core").removeHandler(handler)
