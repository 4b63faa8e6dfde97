"""``VaultSQLConnection`` against the real PostgreSQL server with password authentication."""

from __future__ import annotations

import secrets as pysecrets
from pathlib import Path

import psycopg
import pytest
import sqlalchemy
import streamlit as st
from sqlalchemy import text
from streamlit.connections import SQLConnection
from streamlit.testing.v1 import AppTest

import vault_core.vault as vault_module
from tests.pg_password import pg_app_role, pg_password_server  # noqa: F401  (fixtures)
from vault_core import setup_vault
from vault_core.integrations.connection import VaultSQLConnection
from vault_core.streamlit import SESSION_KEY

pytestmark = pytest.mark.postgres
APP = Path(__file__).parent / "apps" / "vault_sql_app.py"
ENV = "production"
PASSWORD = "connections/db/password"  # "/" separates sections as "." does


@pytest.fixture
def app_vault(tmp_path, monkeypatch, pg_app_role):
    """The default vault (as the app's process identity) holding connections.db for the role."""
    monkeypatch.setenv("VAULT_ENVIRONMENT", ENV)
    v = setup_vault(tmp_path / "vault", principal="app-service")
    v.store_secret("connections.db.url", pg_app_role.url(), environment=ENV)  # no password in the URL
    v.store_secret(PASSWORD, pg_app_role.password, environment=ENV)
    yield v
    st.cache_resource.clear()  # the connections st.connection cached (their engines are closed)
    vault_module._default = None
    v.storage.dispose()


def _alter_role(role):
    return lambda new: role.set_password(new)


def _page(at) -> str:
    assert not at.exception, at.exception
    return at.text[0].value


def _password_reads(vault) -> list[dict]:
    return [r for r in vault.get_audit_log(limit=1000, operation="read") if r["secret_name"] == PASSWORD]


def test_rotation_keeps_the_running_app_working_and_locks_out_the_old_password(app_vault, pg_app_role):
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.run()
    assert _page(at) == f"user:{pg_app_role.role} pets:ada,bob,cyd"
    reads = _password_reads(app_vault)
    assert [(r["principal"], r["outcome"]) for r in reads] == [("app-service", "allowed")]

    old = pg_app_role.password
    new_version = app_vault.rotate_secret(name=PASSWORD, environment=ENV,
                                          generator=lambda: pysecrets.token_urlsafe(24),
                                          apply=_alter_role(pg_app_role), test=pg_app_role.login)
    assert new_version == 2
    new = app_vault.get_secret(PASSWORD, ENV)
    at.run()  # the pooled connection stays logged in
    assert _page(at).endswith("pets:ada,bob,cyd")
    at.button[0].click().run()  # the pool is emptied: the next query needs a new login
    assert _page(at) == f"user:{pg_app_role.role} pets:ada,bob,cyd"
    assert len(_password_reads(app_vault)) > len(reads)  # the new login read the password again

    # A plain st.connection configured with the old password is locked out.
    plain = SQLConnection("old", url=pg_app_role.url(old))
    with pytest.raises(sqlalchemy.exc.OperationalError) as refused:
        with plain.session as session:
            session.execute(text("SELECT 1"))
    assert "password authentication failed" in str(refused.value)
    assert old not in str(refused.value) and new not in str(refused.value)
    plain.engine.dispose()


def test_a_login_between_apply_and_promotion_uses_the_pending_password(app_vault, pg_app_role):
    conn = VaultSQLConnection("db")
    seen: list[str] = []

    def apply(new):
        pg_app_role.set_password(new)
        conn.engine.dispose()  # the database already wants the new value; CURRENT is still the old one
        with conn.engine.connect() as db:
            seen.append(db.execute(text("SELECT current_user")).scalar_one())

    app_vault.rotate_secret(name=PASSWORD, environment=ENV, generator=lambda: pysecrets.token_urlsafe(24),
                            apply=apply, test=pg_app_role.login)
    assert seen == [pg_app_role.role]
    versions = [r["version"] for r in _password_reads(app_vault)]
    assert versions == [2, 1]  # (newest first) CURRENT, refused by the database; then PENDING, accepted
    conn.engine.dispose()
    with conn.engine.connect() as db:  # after promotion: CURRENT works at the first try
        assert db.execute(text("SELECT count(*) FROM pets")).scalar_one() == 3
    conn.reset()


def test_the_engine_never_holds_the_password(app_vault, pg_app_role):
    conn = VaultSQLConnection("db")
    with conn.engine.connect() as db:
        db.execute(text("SELECT 1"))
    assert conn.engine.url.password is None
    assert pg_app_role.password not in repr(conn.engine.url) + repr(conn._secrets) + repr(conn.engine.pool)
    assert "password" not in conn._secrets
    conn.reset()


def test_a_changed_setting_builds_a_new_engine(app_vault, pg_app_role, pg_password_server):
    conn = VaultSQLConnection("db")
    first = conn.engine
    assert conn.engine is first  # nothing changed: the same engine
    other = f"vault_app_other_{pysecrets.token_hex(4)}"
    pg_password_server.create_database(other)
    app_vault.update_secret("connections.db.url", ENV, value=pg_app_role.url().rsplit("/", 1)[0] + "/" + other)
    assert conn.engine is not first
    with conn.engine.connect() as db:
        assert db.execute(text("SELECT current_database()")).scalar_one() == other
    conn.reset()


def test_a_wrong_password_in_the_vault_is_refused_without_echo(app_vault, pg_app_role):
    app_vault.update_secret(PASSWORD, ENV, value="not-the-password-Zq8")
    conn = VaultSQLConnection("db")
    with pytest.raises(sqlalchemy.exc.OperationalError) as refused:
        with conn.engine.connect():
            pass
    assert "not-the-password-Zq8" not in str(refused.value) and pg_app_role.password not in str(refused.value)
    conn.reset()


def test_session_scope_reads_as_the_console_user(app_vault, pg_app_role):
    app_vault.add_principal("alice")
    app_vault.grant("alice", ["read"], environment=ENV, pattern="connections*")
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.session_state["per_user"] = True
    at.session_state[SESSION_KEY] = ("alice", [], None)
    at.run()
    assert _page(at) == f"user:{pg_app_role.role} pets:ada,bob,cyd"
    assert {r["principal"] for r in _password_reads(app_vault)} == {"alice"}

    at = AppTest.from_file(str(APP), default_timeout=60)  # mallory holds no grant: refused, audited
    at.session_state["per_user"] = True
    at.session_state[SESSION_KEY] = ("mallory", [], None)
    at.run()
    assert [e.value for e in at.error] == ["denied"] and not at.text
    assert app_vault.get_audit_log(limit=10, principal="mallory", outcome="denied")

    at = AppTest.from_file(str(APP), default_timeout=60)  # nobody logged in: refused
    at.session_state["per_user"] = True
    at.run()
    assert [e.value for e in at.error] == ["denied"] and not at.text


def test_old_password_login_really_is_refused_by_the_server(pg_app_role):
    """The fixture's premise: this role's logins are checked (the rest of the server trusts)."""
    pg_app_role.login(pg_app_role.password)
    with pytest.raises(psycopg.OperationalError):
        pg_app_role.login("wrong")


def test_the_example_app_lists_the_pets(app_vault, pg_app_role):
    at = AppTest.from_file(str(Path(__file__).parent.parent / "examples" / "vault_connection_app.py"),
                           default_timeout=60)
    at.run()
    assert not at.exception and not at.error
    assert list(at.dataframe[0].value["name"]) == ["ada", "bob", "cyd"]


def test_streamlits_secrets_signal_never_makes_a_connection_read(app_vault, pg_app_role):
    """A cached connection outliving its vault must not open a default one on st.secrets' change signal."""
    from streamlit.runtime.secrets import secrets_singleton

    conn = VaultSQLConnection("db")
    vault_module._default = None  # as after the app's vault was closed
    secrets_singleton.file_change_listener.send("vault")
    assert vault_module._default is None and conn._raw_instance is not None
    conn.reset()
