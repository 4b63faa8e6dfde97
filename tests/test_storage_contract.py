"""The storage contract: one suite, run unchanged on SQLite and on PostgreSQL.

Storage sees opaque bytes only; these tests never use a key.
"""

from __future__ import annotations

import json

import pytest

from vault_core.storage import Storage, sqlite_url
from vault_core.storage.engine import MIGRATIONS

NOW = 1_700_000_000_000_000


@pytest.fixture(params=["sqlite", "postgres"])
def storage(request, tmp_path):
    url = sqlite_url(tmp_path / "s.db") if request.param == "sqlite" else request.getfixturevalue("pg_url")
    s = Storage(url)
    s.migrate()
    with s.transaction() as tx:
        tx.init_state(vault_id="t", created_at=NOW, owner="o", rules_version=1, audit_seq=0, audit_mac=bytes(32))
    yield s
    s.dispose()


def _secret(tx, sid, env="production", name="db.password", version=1, blob=b"\x01opaque"):
    tx.insert_secret(id=sid, environment=env, name=name, secret_type="password", description="", tags="[]",
                     salt=bytes(16), current_version=version, max_versions=20, created_at=NOW, created_by="o",
                     updated_at=NOW, updated_by="o")
    tx.insert_version(secret_id=sid, version=version, ciphertext=blob, key_term=1, state="current",
                      created_at=NOW, created_by="o")


def test_migrations_are_recorded_and_idempotent(storage):
    head = storage.migrate()
    assert head == storage.migrate()
    assert (MIGRATIONS / "versions").is_dir()
    with storage.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar_one() == head


def test_secret_rows_round_trip_bytes_exactly(storage):
    blob = bytes(range(256)) * 4
    with storage.transaction() as tx:
        _secret(tx, "a" * 32, blob=blob)
    with storage.transaction(write=False) as tx:
        row = tx.read_current("production", "db.password")
        assert bytes(row["ciphertext"]) == blob and row["id"] == "a" * 32
        assert tx.read_current("staging", "db.password") is None
        assert tx.find_secret("production", "db.password")["secret_type"] == "password"


def test_unique_environment_and_name(storage):
    with storage.transaction() as tx:
        _secret(tx, "a" * 32)
    with pytest.raises(Exception):
        with storage.transaction() as tx:
            _secret(tx, "b" * 32)
    with storage.transaction() as tx:  # same name, other environment is fine
        _secret(tx, "c" * 32, env="staging")


def test_rollback_leaves_nothing(storage):
    with pytest.raises(RuntimeError):
        with storage.transaction() as tx:
            _secret(tx, "a" * 32)
            raise RuntimeError("boom")
    with storage.transaction(write=False) as tx:
        assert tx.find_secret("production", "db.password") is None


def test_cas_update_only_on_expected_version(storage):
    with storage.transaction() as tx:
        _secret(tx, "a" * 32)
    with storage.transaction() as tx:
        assert tx.cas_update_secret("a" * 32, 1, current_version=2) is True
        assert tx.cas_update_secret("a" * 32, 1, current_version=3) is False
        assert tx.secret_by_id("a" * 32)["current_version"] == 2


def test_versions_states_prune_and_purge(storage):
    sid = "a" * 32
    with storage.transaction() as tx:
        _secret(tx, sid)
        for v in range(2, 6):
            tx.insert_version(secret_id=sid, version=v, ciphertext=b"x", key_term=1, state="old", created_at=NOW,
                              created_by="o")
        tx.set_version_state(sid, 5, "previous")
        tx.prune_versions(sid, below=4, keep=[1])
        assert [v["version"] for v in tx.list_versions(sid)] == [5, 4, 1]
        tx.purge_secret(sid)
        assert tx.list_versions(sid) == [] and tx.secret_by_id(sid) is None


def test_keyset_listing_with_filters(storage):
    with storage.transaction() as tx:
        for i in range(25):
            _secret(tx, f"{i:032d}", env="production" if i % 2 else "staging", name=f"app.key{i:02d}")
        tx.update_secret(f"{3:032d}", tags=json.dumps(["pci"]), deleted_at=None)
        tx.update_secret(f"{5:032d}", deleted_at=NOW)
    with storage.transaction(write=False) as tx:
        seen, after = [], None
        while True:
            page = tx.list_secrets(after=after, limit=7)
            seen += [(r["environment"], r["name"]) for r in page]
            if len(page) < 7:
                break
            after = (page[-1]["environment"], page[-1]["name"])
        assert seen == sorted(seen) and len(seen) == 24  # one is deleted
        assert [r["name"] for r in tx.list_secrets(tag="pci")] == ["app.key03"]
        assert len(tx.list_secrets(environments=["staging"])) == 13
        assert [r["name"] for r in tx.list_secrets(only_deleted=True)] == ["app.key05"]
        assert [r["name"] for r in tx.list_secrets(prefix="app.key1", environments=["production"])] == \
            ["app.key11", "app.key13", "app.key15", "app.key17", "app.key19"]
        assert tx.list_secrets(contains="%") == []  # LIKE wildcards are escaped


def test_audit_append_moves_head_and_counts(storage):
    base = dict(ts=NOW, principal="p", roles="", client_ip=None, forwarded_for=None, forwarded_trusted=False,
                user_agent=None, session_id=None, operation="read", environment="production", secret_id=None,
                secret_name="n", version=None, outcome="allowed", reason="")
    with storage.transaction() as tx:
        for seq in (1, 2, 3):
            tx.append_audit(dict(base, seq=seq, ts=NOW + seq, prev_mac=bytes(32), mac=bytes([seq]) * 32), day=19675)
    with storage.transaction(write=False) as tx:
        state = tx.get_state()
        assert state["audit_seq"] == 3 and bytes(state["audit_mac"]) == bytes([3]) * 32
        assert [r["seq"] for r in tx.iter_audit()] == [1, 2, 3]
        assert [r["seq"] for r in tx.query_audit(where=[], before=(NOW + 3, 3), limit=10)] == [2, 1]
        assert [dict(r)["count"] for r in tx.audit_daily_counts(19675)] == [3]


def test_rules_and_principals(storage):
    with storage.transaction() as tx:
        rid = tx.insert_rule(subject_kind="user", subject="bob", environment="*", pattern="db.*", levels="read",
                             effect="allow", secret_id=None, created_at=NOW, created_by="o", note="")
        tx.insert_principal(name="bob", kind="user", roles='["ops"]', created_at=NOW, updated_at=NOW)
        v = tx.bump_rules_version()
    with storage.transaction() as tx:
        assert tx.get_rule(rid)["pattern"] == "db.*" and tx.rules_version() == v == 2
        assert tx.get_principal("bob")["roles"] == '["ops"]'
        tx.delete_rule(rid)
        assert tx.list_rules() == []


def test_wrapped_keys_and_encryption_counter(storage):
    with storage.transaction() as tx:
        tx.put_wrapped_key("data", 1, b"w1", NOW)
        tx.count_encryptions(1, 5)
        tx.count_encryptions(1)
        tx.rewrap_key("data", 1, b"w2")
    with storage.transaction(write=False) as tx:
        (row,) = tx.wrapped_keys("data")
        assert row["encryptions"] == 6 and bytes(row["wrapped"]) == b"w2"


def test_migrations_build_exactly_the_declared_schema(storage):
    """Alembic's autogenerate finds nothing to add: the migrations and schema.py agree."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from vault_core.storage.schema import metadata

    with storage.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []
