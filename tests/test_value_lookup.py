"""The value lookup ("did this value pass through?") is an audited, permissioned, rate-limited privilege,
and a strict vault answers nobody without a context (issue 15, items 5 and 6)."""

from __future__ import annotations

import pytest

from vault_core import AccessDenied, open_vault
from vault_core.storage import Storage, sqlite_url
from vault_core.types import US_PER_MIN
from vault_core.vault import Vault

CANARY = "canary-value-9f8e7d"


class Clock:
    def __init__(self):
        self.now = 1_800_000_000_000_000

    def __call__(self):
        self.now += 1
        return self.now


@pytest.fixture
def timed(tmp_path):
    clock = Clock()
    folder = tmp_path / "v"
    folder.mkdir(mode=0o700)
    storage = Storage(sqlite_url(folder / "vault.db"))
    storage.migrate()
    v = Vault(storage, vault_dir=folder, clock=clock, process_identity="owner")
    v.unlock(create=True)
    v.store_secret("api.key", CANARY)
    v.set_roles("rita", ["auditor"])
    v.set_roles("vic", ["viewer"])
    yield v, clock
    storage.dispose()


def _lookups(v):
    return [r for r in v.get_audit_log(limit=1000) if r["operation"] == "value_lookup"]


def test_each_lookup_is_audited_without_the_value_or_its_hash(timed):
    v, _ = timed
    with v.security_context("rita", "10.0.0.5"):
        assert len(v.find_value(CANARY)) == 1
        v.audit_hash("a guess")
    rows = _lookups(v)
    assert [(r["principal"], r["outcome"]) for r in rows] == [("rita", "allowed")] * 2
    digest = v.audit_hash(CANARY)
    for r in rows:
        assert CANARY not in str(r) and digest not in str(r) and r["value_hash"] is None


def test_a_lookup_needs_the_auditor_or_admin_role_and_a_refusal_is_audited(timed):
    v, _ = timed
    with v.security_context("vic", "10.0.0.6"), pytest.raises(AccessDenied):
        v.find_value(CANARY)
    with v.security_context("vic", "10.0.0.6"), pytest.raises(AccessDenied):
        v.audit_hash(CANARY)
    assert [(r["principal"], r["outcome"]) for r in _lookups(v)] == [("vic", "denied")] * 2


def test_ten_lookups_a_minute_then_refused_until_the_minute_passes(timed):
    v, clock = timed
    with v.security_context("rita", "10.0.0.5"):
        for i in range(10):
            v.find_value(f"guess-{i}")
        with pytest.raises(AccessDenied, match="10 value lookups a minute"):
            v.find_value(CANARY)
        with pytest.raises(AccessDenied, match="10 value lookups a minute"):
            v.audit_hash(CANARY)  # the hash is the same oracle: counted alike
        clock.now += US_PER_MIN
        assert len(v.find_value(CANARY)) == 1
    outcomes = [r["outcome"] for r in _lookups(v)]
    assert outcomes.count("allowed") == 11 and outcomes.count("denied") == 2


def test_a_strict_vault_answers_nobody_without_a_context(tmp_path):
    v = open_vault(tmp_path / "s", strict=True, principal="owner")
    try:
        with pytest.raises(AccessDenied):
            v.status()
        with pytest.raises(AccessDenied):
            v.audit_hash("x")
        with v.security_context("someone", "10.0.0.7"):
            assert v.status()["strict"] is True  # status needs a caller, not a right
    finally:
        v.storage.dispose()
