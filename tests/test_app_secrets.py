"""Zero-change adoption: the vault feeds the real ``st.secrets`` of an unmodified app."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest
import streamlit as st
from streamlit import config as st_config
from streamlit.runtime.secrets import secrets_singleton
from streamlit.testing.v1 import AppTest

import vault_core.vault as vault_module
from vault_core import ValidationError, setup_vault
from vault_core.integrations.app_secrets import SecretsFeed, replace_streamlit_secrets, vault_app

APP = Path(__file__).parent / "apps" / "plain_sql_app.py"
ENV = "production"


@pytest.fixture
def secrets_files(tmp_path):
    """st.secrets reads only this test's secrets.toml (absent unless a test writes it); restored after."""
    path = tmp_path / "secrets.toml"
    old = st_config.get_option("secrets.files")
    st_config.set_option("secrets.files", [str(path)])
    replace_streamlit_secrets(None)
    yield path
    replace_streamlit_secrets(None)
    st_config.set_option("secrets.files", old)
    st.cache_resource.clear()


@pytest.fixture
def app_vault(tmp_path, monkeypatch, secrets_files):
    monkeypatch.setenv("VAULT_ENVIRONMENT", ENV)
    v = setup_vault(tmp_path / "vault", principal="app-service")
    yield v
    vault_module._default = None
    v.storage.dispose()


def _database(path: Path, label: str) -> str:
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE things (label TEXT)")
        db.execute("INSERT INTO things VALUES (?)", (label,))
    return f"sqlite:///{path}"


def _environ_holds(text: str) -> bool:
    return any(text in v for v in os.environ.values())


# -- the one wrapper around Streamlit internals --------------------------------------------------
def test_replace_adds_replaces_and_removes_keys_beside_the_secrets_file(secrets_files):
    secrets_files.write_text('[from_file]\na = "1"\n')
    heard = []

    def listener(sender):
        heard.append(sender)

    secrets_singleton.file_change_listener.connect(listener)
    replace_streamlit_secrets({"db": {"url": "u1"}, "gone": {"x": 1}})
    assert st.secrets["db"]["url"] == "u1" and st.secrets.gone.x == 1 and st.secrets.from_file.a == "1"
    replace_streamlit_secrets({"db": {"url": "u2"}})
    assert st.secrets.db.url == "u2" and "gone" not in st.secrets and st.secrets.from_file.a == "1"
    assert heard == ["vault", "vault"]  # each replacement: every st.connection re-checks its section
    replace_streamlit_secrets(None)
    assert "db" not in st.secrets and st.secrets.from_file.a == "1"
    secrets_singleton.file_change_listener.disconnect(listener)


def test_replace_undoes_streamlits_environ_copies_and_refuses_bad_types(secrets_files):
    replace_streamlit_secrets({"loose_key_zq": "loose-value-Zq8"})  # Streamlit's own rule: into os.environ
    assert os.environ.get("loose_key_zq") == "loose-value-Zq8"
    replace_streamlit_secrets({})
    assert "loose_key_zq" not in os.environ and not secrets_singleton.load_if_toml_exists()
    with pytest.raises(TypeError):
        replace_streamlit_secrets({"s": {"b": b"bytes"}})


# -- the feed --------------------------------------------------------------------------------
def test_unmodified_app_reads_its_url_from_the_vault_and_follows_changes(app_vault, tmp_path):
    url_a, url_b = _database(tmp_path / "a.db", "from-a"), _database(tmp_path / "b.db", "from-b")
    app_vault.store_secret("connections.sql.url", url_a, environment=ENV)
    feed = SecretsFeed()
    assert feed.refresh(strict=True) and not feed.refresh()  # nothing changed: nothing copied
    at = AppTest.from_file(str(APP), default_timeout=30)
    at.run()
    assert not at.exception and at.text[0].value == "labels:from-a"
    assert not _environ_holds(str(tmp_path / "a.db"))

    app_vault.update_secret("connections.sql.url", ENV, value=url_b)  # a rotated URL
    assert feed.refresh()
    at.run()
    assert at.text[0].value == "labels:from-b"
    assert not _environ_holds(str(tmp_path / "b.db"))

    app_vault.delete_secret("connections.sql.url", ENV)  # a deleted secret disappears
    assert feed.refresh()
    assert not secrets_singleton.load_if_toml_exists()  # no key left at all (Streamlit: "no secrets")
    at.run()
    assert at.exception  # Streamlit: no configuration for st.connection("sql")


def test_the_feed_thread_picks_up_a_change(app_vault, tmp_path):
    app_vault.store_secret("connections/sql/url", "sqlite:///one.db", environment=ENV)  # "/" as "."
    feed = SecretsFeed()
    feed.refresh()
    feed.start(interval=0.05)
    try:
        app_vault.update_secret("connections/sql/url", ENV, value="sqlite:///two.db")
        for _ in range(600):  # wait for it (an upper bound, not a threshold)
            if st.secrets.connections.sql.url == "sqlite:///two.db":
                break
            feed._stop.wait(0.05)
        assert st.secrets.connections.sql.url == "sqlite:///two.db"
    finally:
        feed.stop()


def test_secrets_without_a_section_are_refused_unless_asked(app_vault):
    app_vault.store_secret("api_key_zq", "loose-value-Zq9", environment=ENV)
    app_vault.store_secret("smtp.host", "mail.local", environment=ENV)
    with pytest.raises(ValidationError) as refused:
        SecretsFeed().refresh(strict=True)
    assert "api_key_zq" in str(refused.value) and "loose-value" not in str(refused.value)
    assert not secrets_singleton.load_if_toml_exists()  # refused: nothing was copied
    assert SecretsFeed().refresh()  # not strict (a running app): left out, the rest is served
    assert "api_key_zq" not in st.secrets and st.secrets.smtp.host == "mail.local"
    assert not _environ_holds("loose-value-Zq9")
    assert SecretsFeed(top_level=True).refresh()  # asked explicitly: Streamlit's os.environ copy
    assert st.secrets.api_key_zq == os.environ["api_key_zq"] == "loose-value-Zq9"
    replace_streamlit_secrets(None)
    assert "api_key_zq" not in os.environ


def test_reads_are_the_service_identitys_and_audited(app_vault):
    app_vault.store_secret("smtp.password", "pw", environment=ENV)
    app_vault.add_principal("alice")
    with app_vault.security_context("alice"):  # whoever is in context, the feed reads as the app
        SecretsFeed().refresh()
    rows = [r for r in app_vault.get_audit_log(limit=50, operation="read") if r["secret_name"] == "smtp.password"]
    assert [(r["principal"], r["outcome"]) for r in rows] == [("app-service", "allowed")]


def test_vault_app_builds_an_st_app_and_refuses_static_secrets(app_vault):
    app = vault_app(str(APP), environment=ENV)
    assert isinstance(app, st.App)
    with pytest.raises(TypeError):
        vault_app(str(APP), secrets={"connections": {}})


def test_the_pinned_streamlit_is_the_one_installed():
    """replace_streamlit_secrets relies on internals read in this version: the pin must hold."""
    from importlib.metadata import version

    from vault_core.integrations.app_secrets import STREAMLIT_VERSIONS

    assert STREAMLIT_VERSIONS == ">=1.67,<1.68" and version("streamlit").split(".")[:2] == ["1", "67"]
    pyproject = (Path(__file__).parent.parent / "pyproject.toml").read_text()
    assert f'"streamlit{STREAMLIT_VERSIONS}"' in pyproject


def test_the_lifespan_copies_at_startup_refuses_loose_secrets_and_stops_its_thread(app_vault):
    import asyncio

    from vault_core.integrations.app_secrets import vault_lifespan

    app_vault.store_secret("app.greeting", "hello", environment=ENV)

    async def serve(lifespan):
        async with lifespan(None) as state:
            assert st.secrets.app.greeting == "hello"
            return state["vault_secrets_feed"]

    feed = asyncio.run(serve(vault_lifespan(interval=0.05)))
    assert feed._thread is None  # stopped with the app
    app_vault.store_secret("loose_zq", "x", environment=ENV)
    with pytest.raises(ValidationError, match="loose_zq"):
        asyncio.run(serve(vault_lifespan()))  # the app does not start

