"""The seed's integration patterns (examples/), the demo script and the mapping benchmark."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

import vault_core.vault as vault_module
from benchmarks.secrets_mapping_bench import bench
from examples.config_manager import ConfigManager
from examples.database_manager import DatabaseManager, current_user_id
from vault_core import AccessDenied, Environment, setup_vault
from vault_core.migration import import_toml
from vault_core.streamlit import SESSION_KEY

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def default_vault(tmp_path, monkeypatch):
    monkeypatch.setenv("VAULT_ENVIRONMENT", "production")
    v = setup_vault(tmp_path / "vault", principal="owner")
    yield v
    vault_module._default = None
    v.storage.dispose()


def test_config_manager_reads_per_environment(vault):
    vault.store_secret("database_url", "postgresql://prod/app", environment="production")
    vault.store_secret("api_key_openai", "sk-prod", environment="production")
    vault.store_secret("api_key_stripe", "sk-staging", environment="staging")
    prod = ConfigManager(Environment.PRODUCTION, vault)
    assert prod.get_database_config() == {"url": "postgresql://prod/app", "pool_size": 10, "timeout": 30}
    assert prod.get_external_apis() == {"openai": "sk-prod", "stripe": None, "github": None}
    staging = ConfigManager("staging", vault)
    assert staging.get_database_config()["pool_size"] == 5 and staging.get_database_config()["url"] is None
    assert staging.get_external_apis()["stripe"] == "sk-staging"
    assert "sk-" not in repr(prod) + repr(prod.env_secrets)
    vault.add_principal("stranger")
    with vault.security_context("stranger"), pytest.raises(AccessDenied):
        prod.get_database_config()


def test_database_manager_paths_from_the_vault_read_as_the_caller(default_vault, tmp_path):
    default_vault.store_secret("framework_db_path", str(tmp_path / "fw.db"), environment="production")
    manager = DatabaseManager()
    assert manager.framework_db_path == tmp_path / "fw.db" and manager.timer_db_path == Path("task_timer.db")
    with manager.connect_framework() as conn:
        conn.execute("create table t (x)")
    assert (tmp_path / "fw.db").exists()
    assert DatabaseManager(framework_db_path=str(tmp_path / "explicit.db")).framework_db_path.name == "explicit.db"
    default_vault.add_principal("svc-app")
    default_vault.grant("svc-app", ["read"], environment="production", pattern="*_db_path")
    with default_vault.security_context("svc-app", "10.1.2.3"):
        assert current_user_id() == "svc-app"
        assert DatabaseManager().framework_db_path == tmp_path / "fw.db"
    rows = default_vault.get_audit_log(limit=5, principal="svc-app", operation="read")
    assert {r["secret_name"] for r in rows} == {"framework_db_path", "timer_db_path"}
    assert all(r["client_ip"] == "10.1.2.3" for r in rows)
    default_vault.add_principal("nobody")
    with default_vault.security_context("nobody"), pytest.raises(AccessDenied):
        DatabaseManager()


def test_example_streamlit_page(default_vault):
    import_toml(default_vault, '[db]\nuser = "app"\npassword = "twelve-chars"', "production")
    default_vault.add_principal("viewer")
    at = AppTest.from_file(str(ROOT / "examples" / "streamlit_page.py"), default_timeout=30).run()
    assert not at.exception and not at.error
    assert "twelve-chars" not in str(list(at.main))
    at = AppTest.from_file(str(ROOT / "examples" / "streamlit_page.py"), default_timeout=30)
    at.session_state[SESSION_KEY] = ("viewer", [], None)
    at.run()
    assert [e.value for e in at.error] == ["You may not read the database settings."]


def test_demo_script_exits_0(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("VAULT_")}
    res = subprocess.run([sys.executable, str(ROOT / "secrets_vault_demo.py")], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=240)
    assert res.returncode == 0, res.stderr[-3000:]
    out = res.stdout
    for title in ("Basic use", "Access control", "Environments", "Rotation", "DatabaseManager",
                  "Audit and monitoring", "Performance"):
        assert title in out
    assert "audit chain verified: True" in out and "median" in out and "p99" in out
    assert "sk_live_" not in out and "from-secrets-toml" not in out  # values are shown masked
    assert list(tmp_path.iterdir()) == []  # everything lived in a temporary folder


def test_mapping_benchmark_runs(tmp_path, capsys):
    result = bench(tmp_path, cached_n=200, changed_n=5)
    assert set(result) == {"cached", "section_cached", "cached_between_reads", "after_change", "audited_read_floor",
                           "st_secrets_toml"}
    assert result["after_change"]["n"] == 5 and result["st_secrets_toml"]["n"] == 200
    assert "median" in capsys.readouterr().out
