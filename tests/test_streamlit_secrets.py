"""``vault_core.streamlit.secrets``: st.secrets behaviour, identity, audit, freshness, no leaks."""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections.abc import Mapping
from pathlib import Path

import pytest
from streamlit import config as st_config
from streamlit.runtime.secrets import Secrets
from streamlit.testing.v1 import AppTest

import vault_core.vault as vault_module
from vault_core import AccessDenied, Sealed, setup_vault
from vault_core.context import make_context
from vault_core.migration import import_toml
from vault_core.streamlit import SESSION_KEY, Identity, VaultSecrets, secrets, set_identity_provider

CANARY = "canary-Zq8vX3-do-not-leak"
TOML = f'''
api_key = "{CANARY}"
port = 5432
ratio = 0.25
debug = false
hosts = ["a.example", "b.example"]
started = 1979-05-27T07:32:00Z

[db]
user = "app"
password = "pw-\\"quoted\\"\\nline2"
port = 6543

[db.replica]
host = "replica.local"

[[servers]]
name = "alpha"

[[servers]]
name = "beta"
'''
APP = Path(__file__).parent / "apps" / "secrets_app.py"


@pytest.fixture
def st_secrets(tmp_path):
    """A real ``streamlit.runtime.secrets.Secrets`` loaded from the same TOML text."""
    path = tmp_path / "secrets.toml"
    path.write_text(TOML)
    old = st_config.get_option("secrets.files")
    st_config.set_option("secrets.files", [str(path)])
    real = Secrets()
    real._file_watchers_installed = True  # no poll-watcher threads in tests
    real._parse()
    yield real
    real._reset()  # removes what st.secrets exported to os.environ
    st_config.set_option("secrets.files", old)


@pytest.fixture
def ours(vault):
    import_toml(vault, TOML, "development")
    return VaultSecrets("development", vault=vault)


def _plain(value):
    return value.to_dict() if hasattr(value, "to_dict") else value


def _read_rows(vault, **filters):
    return vault.get_audit_log(limit=1000, operation="read", **filters)


# -- behaviour of st.secrets ---------------------------------------------------------
def test_same_keys_nesting_and_values_as_st_secrets(ours, st_secrets):
    assert isinstance(ours, Mapping) and isinstance(ours.db, Mapping)
    assert sorted(ours) == sorted(st_secrets)
    assert len(ours) == len(st_secrets)
    assert ours.to_dict() == st_secrets.to_dict()
    for key in st_secrets:
        assert _plain(ours[key]) == _plain(st_secrets[key]), key
        assert _plain(getattr(ours, key)) == _plain(getattr(st_secrets, key)), key
    assert ours.db.replica.host == st_secrets.db.replica.host == "replica.local"
    assert ours["db"]["password"] == st_secrets["db"]["password"]
    assert sorted(ours.db) == sorted(st_secrets.db) and len(ours.db) == len(st_secrets.db)
    assert ours.db.to_dict() == st_secrets.db.to_dict()
    assert type(ours.port) is int and type(ours.debug) is bool and ours.servers == st_secrets.servers
    assert ("db" in ours) and ("db" in st_secrets) and ("nope" not in ours) and ("nope" not in st_secrets)
    assert ("replica" in ours.db) and ("replica" in st_secrets.db)
    assert ours.get("nope", 7) == st_secrets.get("nope", 7) == 7
    assert ours.db.get("nope") is None and st_secrets.db.get("nope") is None


@pytest.mark.parametrize("access", ["item", "attr", "nested_item", "nested_attr"])
def test_missing_keys_raise_the_same_errors_naming_the_key(ours, st_secrets, access):
    def attempt(s):
        if access == "item":
            return s["nope"]
        if access == "attr":
            return s.nope
        if access == "nested_item":
            return s.db["nope"]
        return s.db.replica.nope

    errors = []
    for mapping in (ours, st_secrets):
        with pytest.raises((KeyError, AttributeError)) as info:
            attempt(mapping)
        errors.append(info.value)
    assert type(errors[0]) is type(errors[1])
    wanted = 'has no attribute "nope"' if access.endswith("attr") else 'has no key "nope"'
    assert all(wanted in str(e) for e in errors)


def test_writes_are_refused_like_st_secrets(ours, st_secrets):
    def messages(s):
        out = []
        for action in (lambda: s.__setitem__("x", 1), lambda: setattr(s, "x", 1), lambda: s.__delitem__("port"),
                       lambda: s.db.__setitem__("x", 1), lambda: setattr(s.db, "x", 1)):
            with pytest.raises(TypeError) as info:
                action()
            out.append(str(info.value))
        return out

    assert messages(ours) == messages(st_secrets)


def test_lookups_fold_case_and_reject_bad_keys_as_missing(ours):
    assert ours["API_KEY"] == ours.API_KEY == CANARY
    assert ours.DB.Password == ours.db.password
    for bad in ("no such key", "../db", 3, ""):
        with pytest.raises(KeyError):
            ours[bad]
        assert bad not in ours


# -- identity, access and audit -----------------------------------------------------------
def test_reads_are_audited_once_then_served_from_cache(vault, ours):
    before = len(_read_rows(vault, name="api_key"))
    assert ours["api_key"] == CANARY
    assert ours.api_key == CANARY
    assert ours.get("api_key") == CANARY
    rows = _read_rows(vault, name="api_key")
    assert len(rows) == before + 1 and rows[0]["outcome"] == "allowed" and rows[0]["principal"] == "owner"


def test_rotation_is_seen_on_the_next_access(any_vault):
    import_toml(any_vault, TOML, "development")
    mapping = VaultSecrets("development", vault=any_vault)
    assert mapping.api_key == CANARY
    for _ in range(3):
        new_version = any_vault.rotate_secret(name="api_key", environment="development")
        fresh = any_vault.get_secret("api_key", "development")
        assert mapping["api_key"] == fresh != CANARY
        assert any_vault.get_metadata("api_key", "development").current_version == new_version
    any_vault.update_secret("db.port", "development", value="7000")  # typed values stay typed
    assert mapping.db.port == 7000


def test_denied_read_raises_access_denied_and_is_audited(vault, ours):
    vault.add_principal("bob")
    vault.grant("bob", ["read"], environment="development", pattern="db.*")
    with vault.security_context("bob", "10.0.0.7"):
        assert ours.db.user == "app"
        assert "api_key" not in ours and sorted(ours) == ["db"]  # listing shows only what bob may read
        with pytest.raises(AccessDenied):
            ours["api_key"]
        with pytest.raises(AccessDenied):
            ours.get("api_key", "default")  # never a silent default
        with pytest.raises(PermissionError):
            ours.port
    denied = vault.get_audit_log(limit=10, principal="bob", outcome="denied")
    assert {r["secret_name"] for r in denied} == {"api_key", "port"} and len(denied) == 3
    assert all(r["client_ip"] == "10.0.0.7" and r["operation"] == "read" for r in denied)


def test_revoked_grant_stops_cached_reads_at_once(vault, ours):
    vault.add_principal("carol")
    rule = vault.grant("carol", ["read"], environment="development")
    with vault.security_context("carol"):
        assert ours.api_key == CANARY
    vault.revoke(rule)
    with vault.security_context("carol"):
        with pytest.raises(AccessDenied):
            ours.api_key


def test_cache_is_never_shared_between_identities(vault, ours):
    for user in ("alice", "bob"):
        vault.add_principal(user)
        vault.grant(user, ["read"], environment="development", pattern="api_key")
    with vault.security_context("alice", session_id="s1"):
        assert ours.api_key == CANARY
    with vault.security_context("bob", session_id="s2"):
        assert ours.api_key == CANARY
    with vault.security_context("alice", session_id="s3"):  # same user, other session: its own cache
        assert ours.api_key == CANARY
    rows = _read_rows(vault, name="api_key")
    assert [(r["principal"], r["session_id"]) for r in reversed(rows)] == [
        ("alice", "s1"), ("bob", "s2"), ("alice", "s3")]


def test_environments_are_separate(vault, monkeypatch):
    vault.store_secret("jwt_secret", "dev-value", environment="development")
    vault.store_secret("jwt_secret", "staging-value", environment="staging")
    mapping = VaultSecrets(vault=vault)
    monkeypatch.setenv("VAULT_ENVIRONMENT", "staging")
    assert mapping.jwt_secret == "staging-value"
    monkeypatch.setenv("VAULT_ENVIRONMENT", "development")
    assert mapping.jwt_secret == "dev-value"
    assert mapping.for_environment("staging").jwt_secret == "staging-value"
    assert mapping.for_environment("staging") is mapping.for_environment("STAGING")
    assert "jwt_secret" not in mapping.for_environment("production")


def test_sealed_vault_refuses_even_cached_values(vault, ours):
    assert ours.api_key == CANARY
    vault.seal()
    with pytest.raises(Sealed):
        ours.api_key


def test_no_value_in_repr_environ_or_logs(vault, ours, caplog):
    caplog.set_level(logging.DEBUG)
    assert ours.to_dict()["api_key"] == CANARY
    texts = [repr(ours), str(ours), repr(ours.db), str(ours.db.replica)]
    assert "api_key" in texts[0] and "db.password" in texts[0]
    assert not any(CANARY in t or "line2" in t for t in texts)
    assert not any(CANARY in v for v in os.environ.values())
    assert CANARY not in caplog.text
    vault.seal()
    assert "Sealed" in repr(ours) and CANARY not in repr(ours)


def test_threads_read_consistently_through_rotations(vault, ours):
    values = {vault.get_secret("api_key", "development")}
    errors: list[BaseException] = []
    stop = threading.Event()

    def reader():
        try:
            while not stop.is_set():
                assert ours.api_key in values
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=reader) for _ in range(4)]
    for t in threads:
        t.start()
    for i in range(1, 6):
        values.add(f"value-{i}")  # allowed before it is written: readers may see it at once
        vault.store_secret("api_key", f"value-{i}", environment="development")
    stop.set()
    for t in threads:
        t.join()
    assert not errors
    assert ours.api_key == "value-5"


# -- inside Streamlit --------------------------------------------------------------------
@pytest.fixture
def default_vault(tmp_path, monkeypatch):
    monkeypatch.delenv("VAULT_ENVIRONMENT", raising=False)
    v = setup_vault(tmp_path / "vault", principal="owner")
    import_toml(v, TOML, "development")
    yield v
    vault_module._default = None
    set_identity_provider(None)
    v.storage.dispose()


def _run_app(identity):
    at = AppTest.from_file(str(APP), default_timeout=30)
    if identity is not None:
        at.session_state[SESSION_KEY] = identity
    at.run()
    assert not at.exception
    return at


def test_app_reads_as_the_session_user(default_vault):
    default_vault.add_principal("alice")
    default_vault.grant("alice", ["read"], environment="development", pattern="db.*")
    at = _run_app(("alice", ["dev"], None))
    digest = hashlib.sha256(default_vault.get_secret("db.password", "development").encode()).hexdigest()[:16]
    assert [t.value for t in at.text] == [f"digest:{digest}", "port:6544"]
    reads = _read_rows(default_vault, principal="alice")
    assert {r["secret_name"] for r in reads} == {"db.password", "db.port"}
    assert all(r["roles"] == "dev" and r["session_id"] for r in reads)  # the Streamlit session id
    # A rotation is on the page at the next rerun.
    default_vault.rotate_secret(name="db.password", environment="development")
    at.run()
    digest2 = hashlib.sha256(default_vault.get_secret("db.password", "development").encode()).hexdigest()[:16]
    assert at.text[0].value == f"digest:{digest2}" != f"digest:{digest}"
    assert CANARY not in str([e for e in at.main])


def test_app_user_without_grant_is_denied_not_served_from_another_session(default_vault):
    default_vault.add_principal("alice")
    default_vault.grant("alice", ["read"], environment="development", pattern="db.*")
    assert not _run_app(Identity("alice")).error
    at = _run_app({"user_id": "mallory", "roles": []})
    assert [e.value for e in at.error] == ["denied"] and not at.text
    denied = default_vault.get_audit_log(limit=10, principal="mallory", outcome="denied")
    assert denied and denied[0]["secret_name"] == "db"  # the section is not even visible to mallory


def test_app_without_identity_reads_as_the_process(default_vault):
    at = _run_app(None)
    assert at.text[1].value == "port:6544"
    assert _read_rows(default_vault, name="db.port")[0]["principal"] == "owner"


def test_identity_provider_hook_wins_over_session_state(default_vault):
    default_vault.add_principal("svc-report")
    set_identity_provider(lambda: Identity("svc-report", (), "fixed-session"))
    at = _run_app(("alice", [], None))
    assert [e.value for e in at.error] == ["denied"]
    assert default_vault.get_audit_log(limit=5, principal="svc-report", outcome="denied")


def test_module_mapping_uses_the_default_vault(default_vault):
    assert secrets.db.user == "app" and secrets.for_environment("production").get("db") is None


def test_max_age_relaxes_only_a_database_without_a_change_signal(any_vault):
    any_vault.store_secret("token", "v1", environment="development")
    mapping = VaultSecrets("development", vault=any_vault, max_age=3600)
    assert mapping.token == "v1"
    any_vault.store_secret("token", "v2", environment="development")
    assert mapping.token == "v2"  # both backends signal changes (PostgreSQL: LISTEN/NOTIFY)


# -- "/" separates sections as "." does (issue 19) ------------------------------------------
def test_slash_names_form_sections_like_dotted_ones(vault):
    vault.store_secret("smtp/password", "pw-slash", environment="development")
    vault.store_secret("smtp/host", "mail.local", environment="development")
    vault.store_secret("smtp.port", "25", environment="development")
    mapping = VaultSecrets("development", vault=vault)
    assert mapping.smtp.password == mapping["smtp"]["password"] == mapping["smtp/password"] == "pw-slash"
    assert sorted(mapping.smtp) == ["host", "password", "port"] and "smtp" in mapping
    assert "password" in mapping.smtp and "smtp.password" in mapping
    assert mapping.to_dict() == {"smtp": {"host": "mail.local", "password": "pw-slash", "port": "25"}}
    # Both spellings of one path: the dotted one wins, everywhere.
    vault.store_secret("smtp.password", "pw-dotted", environment="development")
    assert mapping.smtp.password == mapping.to_dict()["smtp"]["password"] == "pw-dotted"
    assert mapping["smtp/password"] == "pw-dotted" and len(mapping.smtp) == 3


def test_fixed_identities_ignore_the_caller(vault):
    vault.store_secret("api_key", "k", environment="development")
    vault.add_principal("alice")
    as_process = VaultSecrets("development", vault=vault, identity=None)
    as_caller = VaultSecrets("development", vault=vault)
    with vault.security_context("alice"):
        assert as_process.api_key == "k"  # the app's service identity, whoever is in context
        with pytest.raises(AccessDenied):
            as_caller.api_key
    assert [r["principal"] for r in _read_rows(vault, name="api_key", outcome="allowed")] == ["owner"]
    as_alice = VaultSecrets("development", vault=vault, identity=make_context("alice"))
    with pytest.raises(AccessDenied):
        as_alice.api_key  # outside any context, still alice
    with pytest.raises(ValueError):
        VaultSecrets("development", vault=vault, identity="alice")


def test_underscore_attributes_are_probes_that_open_no_vault(monkeypatch):
    """pytest's collection (and IPython's display) probe attributes like ``_pytestfixturefunction``:
    that used to open the default vault, creating ./.vault in the working directory."""
    monkeypatch.setattr(vault_module, "_default", None)
    for probe in ("_pytestfixturefunction", "_repr_html_", "_ipython_canary_method_should_not_exist_"):
        assert getattr(secrets, probe, None) is None
    assert vault_module._default is None


def test_underscore_names_are_read_by_item_access(ours, vault):
    vault.store_secret("_private", "p", environment="development")
    vault.store_secret("db._inner", "i", environment="development")
    assert ours["_private"] == "p" and ours.db["_inner"] == "i"
    with pytest.raises(AttributeError):
        ours.db._inner
