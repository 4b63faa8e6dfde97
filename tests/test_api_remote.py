"""The Python helpers against a remote vault (issue 21): ``VAULT_ADDR`` + AppRole or token, no vault folder here."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.browser import console_server
from vault_core import EnvironmentSecrets, open_vault
from vault_core.errors import AccessDenied
from vault_core.integrations.remote import RemoteVault, connect

APP = '''
import streamlit as st
from vault_core.streamlit import secrets

st.write(secrets["db_url"])
st.write(secrets.smtp.password)
st.write(",".join(sorted(secrets)))
'''


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    path = tmp_path_factory.mktemp("remote") / "vault"
    vault = open_vault(path, principal="owner")
    machines = vault.machines
    role_id = machines.create_machine("web", token_ttl=600, token_max_ttl=1200)
    secret_id = machines.new_secret_id("web")
    vault.grant("web", ["read"], environment="production", subject_kind="user")
    vault.store_secret("db_url", "postgresql://app@db-1/app", environment="production")
    vault.store_secret("smtp/password", "smtp-pw-1", environment="production")
    vault.store_secret("hidden", "not-for-web", environment="staging")
    with console_server(path) as server:
        yield vault, server, {"VAULT_ADDR": server.url, "VAULT_ROLE_ID": role_id, "VAULT_SECRET_ID": secret_id}
    vault.storage.dispose()


@pytest.fixture
def remote_env(served, tmp_path, monkeypatch):
    _, _, env = served
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("VAULT_PATH", str(tmp_path / "no-vault-here"))
    monkeypatch.setenv("VAULT_ENVIRONMENT", "production")
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    yield tmp_path
    assert not (tmp_path / "no-vault-here").exists()  # nothing local was opened or created


def test_st_secrets_replacement_reads_through_vault_addr_and_sees_a_rotation(served, remote_env):
    vault = served[0]
    at = AppTest.from_string(APP, default_timeout=30).run()
    assert not at.exception
    shown = [m.value for m in at.markdown]
    assert shown == ["postgresql://app@db-1/app", "smtp-pw-1", "db_url,smtp"]
    vault.update_secret("db_url", "production", value="postgresql://app@db-2/app")
    at.run()
    assert at.markdown[0].value == "postgresql://app@db-2/app"  # the version poll saw the rotation
    reads = [r for r in vault.get_audit_log(limit=50) if r["operation"] == "read" and r["user_id"] == "web"]
    assert reads and all(r["success"] for r in reads)


def test_environment_secrets_and_a_denied_environment(served, remote_env):
    remote = connect()
    assert isinstance(remote, RemoteVault) and "secret" not in repr(remote).lower()
    assert EnvironmentSecrets(remote, "production").get("smtp/password") == "smtp-pw-1"
    assert EnvironmentSecrets(remote, "production").get("missing", "dflt") == "dflt"
    with pytest.raises(AccessDenied):
        remote.get_secret("hidden", "staging")


def test_a_revoked_token_stops_working_and_approle_logs_in_again(served, remote_env):
    vault, server, env = served
    remote = RemoteVault(server.url, role_id=env["VAULT_ROLE_ID"], secret_id=env["VAULT_SECRET_ID"])
    assert remote.get_secret("smtp/password", "production") == "smtp-pw-1"
    first = remote._token
    vault.machines.revoke_machine_tokens("web")
    with pytest.raises(AccessDenied):  # a bare token: refused at its next call
        RemoteVault(server.url, token=first).get_secret("smtp/password", "production")
    assert remote.get_secret("smtp/password", "production") == "smtp-pw-1"  # AppRole: a fresh login
    assert remote._token != first


def test_vault_console_run_injects_remote_values_without_the_credential(served, remote_env):
    probe = "import os; print(os.environ['DB_URL']); print('VAULT_SECRET_ID' in os.environ)"
    done = subprocess.run([str(Path(sys.executable).parent / "vault-console"), "run", "--env", "production",
                           "--", sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["postgresql://app@db-2/app", "False"]
