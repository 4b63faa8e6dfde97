"""Bad input gets a specific ValidationError that never echoes the value, and changes nothing."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from vault_core import ValidationError
from vault_core.validate import canonical_name
from vault_core.storage.schema import access_rules, secret_versions, secrets

CANARY = "canary-Zq9-value-never-echoed"


def _snapshot(vault):
    with vault.storage.engine.connect() as conn:
        return tuple(conn.execute(select(func.count()).select_from(t)).scalar_one()
                     for t in (secrets, secret_versions, access_rules))


BAD_NAMES = ["", "   ", "a" * 257, "bad\x00name", "tab\tname", "new\nline", "../etc/passwd", "a//b", "a/../b",
             "/abs", "trailing/", "dot.", "has space", "<img src=x onerror=alert(1)>", "semi;colon", "qu'ote",
             "Ωmega", "\u202eevil", None, 42, b"bytes", ["list"]]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_bad_names_are_refused_without_change(vault, name):
    before = _snapshot(vault)
    with pytest.raises(ValidationError) as err:
        vault.store_secret(name, CANARY)
    assert CANARY not in str(err.value)
    assert _snapshot(vault) == before


@pytest.mark.parametrize("value,match", [
    ("x" * (64 * 1024 + 1), "larger than the limit"),
    (b"\x00" * (64 * 1024 + 1), "larger than the limit"),
    (CANARY + "\x00", "NUL"),
    (12345, "must be str or bytes"),
    (None, "must be str or bytes"),
    ({"a": 1}, "must be str or bytes"),
    ("\ud800" + CANARY, "not valid Unicode"),
])
def test_bad_values_are_refused_without_echo(vault, value, match):
    before = _snapshot(vault)
    with pytest.raises(ValidationError, match=match) as err:
        vault.store_secret("ok.name", value)
    assert CANARY not in str(err.value) and "xxxx" not in str(err.value)
    assert _snapshot(vault) == before


def test_configurable_value_limit(tmp_path):
    from vault_core import open_vault

    v = open_vault(tmp_path / "v", max_value_bytes=10, principal="owner")
    v.store_secret("a", "0123456789")
    with pytest.raises(ValidationError, match="10 bytes"):
        v.store_secret("b", "0123456789X")


@pytest.mark.parametrize("kwargs,match", [
    ({"environment": "prod"}, "unknown Environment"),
    ({"environment": 3}, "Environment must be"),
    ({"secret_type": "ssh"}, "unknown SecretType"),
    ({"rotation_interval_days": 0}, "rotation_interval_days"),
    ({"rotation_interval_days": "30"}, "rotation_interval_days"),
    ({"description": "x" * 2001}, "description"),
    ({"description": "nul\x00"}, "NUL"),
    ({"tags": "notalist"}, "tags must be a list"),
    ({"tags": ["ok", 5]}, "each tag"),
    ({"tags": ["a\nb"]}, "each tag"),
    ({"cas": -1}, "cas"),
    ({"cas": True}, "cas"),
    ({"access_policy": ["admin"]}, "access_policy"),
    ({"access_policy": {"bob": ["superuser"]}}, "AccessLevel"),
    ({"expires_at": "2030-01-01"}, "expires_at"),
])
def test_bad_arguments(vault, kwargs, match):
    before = _snapshot(vault)
    with pytest.raises(ValidationError, match=match):
        vault.store_secret("ok.name", CANARY, **kwargs)
    assert _snapshot(vault) == before


def test_bad_read_arguments(vault):
    vault.store_secret("k", "v")
    for kwargs in ({"version": 0}, {"version": "1"}, {"label": "latest"}):
        with pytest.raises(ValidationError):
            vault.get_secret("k", **kwargs)
    for kwargs in ({"limit": 0}, {"limit": 100_000}, {"cursor": "no-slash"}, {"search": "x" * 300}):
        with pytest.raises(ValidationError):
            vault.list_secrets(**kwargs)


def test_validation_failures_are_audited_without_value(vault):
    with pytest.raises(ValidationError):
        vault.store_secret("bad name", CANARY)
    row = vault.get_audit_log(limit=1)[0]
    assert row["outcome"] == "failed" and row["operation"] == "store"
    assert CANARY not in str(row)


@pytest.mark.parametrize("variant", ["DB.Password", "  db.password  ", "ｄｂ.password", "DB.PASSWORD\t".strip(),
                                     "db.pass\u0077ord"])
def test_name_variants_share_one_canonical_form(variant):
    assert canonical_name(variant) == "db.password"


def _message(bad: str) -> str:
    try:
        canonical_name(bad)
    except ValidationError as exc:
        return str(exc)
    raise AssertionError(bad)


# every way a name can be refused; a message from this fixed set cannot echo its input
NAME_MESSAGES = {_message(bad) for bad in ("", "a" * 2000, "a" * 300, "a\x00", "a b", "a..b", "a/", "é")}


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_canonicalisation_is_idempotent_or_refuses(text):
    try:
        once = canonical_name(text)
    except ValidationError as exc:
        assert str(exc) in NAME_MESSAGES
        return
    assert canonical_name(once) == once
    assert once == once.strip().lower() and ".." not in once and "//" not in once and len(once) <= 256
