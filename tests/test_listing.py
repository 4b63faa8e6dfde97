"""Listings that name only what changed (issue 19): the st.secrets replacement reads a changed value and the
listing of the same snapshot in one vault call and one transaction, instead of listing everything again.

A delta is only a hint for a cache of metadata (names, versions, tags): values still come from audited
reads, and any doubt (a rule change, a rewritten chain, a long tail) gives a complete listing.
"""

from __future__ import annotations

import pytest

from vault_core import AccessLevel, Listing
from vault_core.streamlit import VaultSecrets
from tests.test_change_signal import _counting_listings


@pytest.fixture
def env_vault(any_vault):
    v = any_vault
    v.store_secret("db/password", "v1", environment="development")
    v.store_secret("api_key", "k1", environment="development", tags=["web"])
    v.store_secret("db/password", "p1", environment="production")
    return v


def test_a_listing_after_a_change_names_only_what_changed(env_vault):
    v = env_vault
    first = v.listing("development")
    assert first.complete and first.entries == {"db/password": (1, ()), "api_key": (1, ("web",))}
    assert "token" not in repr(first) and str(first.token[0]) not in repr(first)
    assert v.get_secret("api_key", "development") == "k1"  # reads change nothing
    same = v.listing("development", first)
    assert not same.complete and same.entries == {}
    v.update_secret("db/password", "development", value="v2")
    v.store_secret("smtp/host", "mail", environment="development")
    v.update_secret("db/password", "production", value="p2")  # another environment: not named
    delta = v.listing("development", same)
    assert not delta.complete and delta.entries == {"db/password": (2, ()), "smtp/host": (1, ())}
    v.delete_secret("api_key", "development")
    gone = v.listing("development", delta)
    assert gone.entries == {"api_key": None}


def test_a_rule_change_or_a_rewritten_chain_lists_everything(env_vault):
    v = env_vault
    first = v.listing("development")
    v.grant("reader", [AccessLevel.READ], environment="development", pattern="db/*")
    after_rule = v.listing("development", first)
    assert after_rule.complete and set(after_rule.entries) == {"db/password", "api_key"}
    seq, _mac, rules = after_rule.token
    forged = Listing({}, True, (seq, bytes(32), rules))  # the row at seq no longer carries that MAC
    assert v.listing("development", forged).complete
    future = Listing({}, True, (seq + 10_000, after_rule.token[1], rules))  # a chain cut back behind it
    assert v.listing("development", future).complete


def test_a_delta_names_only_what_the_caller_may_read(env_vault):
    v = env_vault
    v.grant("reader", [AccessLevel.READ], environment="development", pattern="db/*")
    with v.security_context("reader", "10.0.0.5"):
        first = v.listing("development")
    assert first.entries == {"db/password": (1, ())}
    v.update_secret("api_key", "development", value="k2")
    v.update_secret("db/password", "development", value="v2")
    with v.security_context("reader", "10.0.0.5"):
        delta = v.listing("development", first)
    assert delta.entries == {"db/password": (2, ()), "api_key": None}  # not readable: "gone" for this caller


def test_read_listed_reads_the_value_audited_with_the_listing(env_vault):
    v = env_vault
    first = v.listing("development")
    v.update_secret("db/password", "development", value="v2")
    rows = len(v.get_audit_log(limit=1000))
    value, listing = v.read_listed("db/password", "development", first)
    assert value == "v2" and listing.entries == {"db/password": (2, ())}
    log = v.get_audit_log(limit=1000)
    assert len(log) == rows + 1 and log[0]["operation"] == "read" and log[0]["secret_name"] == "db/password"
    assert "v2" not in str(log[0])
    # a read whose name did not change still carries its entry
    value, listing = v.read_listed("api_key", "development", listing)
    assert value == "k1" and listing.entries == {"api_key": (1, ("web",))}


def _counting_transactions(vault) -> list:
    calls: list = []
    real = vault.storage.transaction

    def counted(*args, **kwargs):
        calls.append(kwargs)
        return real(*args, **kwargs)

    vault.storage.transaction = counted
    return calls


def test_the_mapping_reads_a_changed_value_in_one_call_and_one_transaction(env_vault):
    v = env_vault
    mapping = VaultSecrets("development", vault=v, identity=None)
    assert mapping.db.password == "v1" and mapping["api_key"] == "k1"
    v.update_secret("db/password", "development", value="v2")
    calls, transactions = _counting_listings(v), _counting_transactions(v)
    assert mapping.db.password == "v2"
    assert [c[0] for c in calls] == ["read_listed"] and len(transactions) == 1
    calls.clear()
    assert mapping["api_key"] == "k1" and calls == []  # its version did not move: still cached
    assert sorted(mapping) == ["api_key", "db"] and calls == []


def test_a_deleted_secret_disappears_and_a_new_one_appears(env_vault):
    v = env_vault
    mapping = VaultSecrets("development", vault=v, identity=None)
    assert mapping["api_key"] == "k1"
    v.delete_secret("api_key", "development")
    v.store_secret("smtp/host", "mail", environment="development")
    assert "api_key" not in mapping
    with pytest.raises(KeyError):
        mapping["api_key"]
    assert mapping.smtp.host == "mail" and sorted(mapping) == ["db", "smtp"]
    v.delete_secret("smtp/host", "development")
    with pytest.raises(AttributeError):  # a listed name read after its deletion: gone, not stale
        mapping.smtp.host
    assert mapping.to_dict() == {"db": {"password": "v1"}}


def test_a_restored_backup_lists_everything(vault, tmp_path):
    """A backup taken after a cache's token keeps the chain's prefix, so the link at the token still matches;
    the versions changed after the backup are rolled back without an audit row naming them."""
    vault.store_secret("db/password", "v1", environment="development")
    first = vault.listing("development")
    manifest = vault.backup(tmp_path / "backups")
    vault.update_secret("db/password", "development", value="v2")
    assert vault.listing("development", first).entries == {"db/password": (2, ())}
    vault.restore_backup(manifest["path"])
    after = vault.listing("development", first)
    assert after.complete and after.entries == {"db/password": (1, ())}
