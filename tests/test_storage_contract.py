"""The storage contract: one suite, run unchanged on SQLite and on PostgreSQL.

Storage sees opaque bytes only; these tests never use a data key. The protected tables (principals,
rules, sessions, key records) are checked with a row key handed down from above (``Storage.seal``):
the suite hands it a fixed one and proves that rows changed behind its back are refused.
"""

from __future__ import annotations

import json

import pytest

from sqlalchemy import text

from vault_core.crypto.rows import RowSeal
from vault_core.errors import IntegrityError
from vault_core.storage import Storage, sqlite_url
from vault_core.storage.engine import MIGRATIONS
from vault_core.storage import repos

NOW = 1_700_000_000_000_000


@pytest.fixture(params=["sqlite", "postgres"])
def storage(request, tmp_path):
    url = sqlite_url(tmp_path / "s.db") if request.param == "sqlite" else request.getfixturevalue("pg_url")
    s = Storage(url)
    s.migrate()
    s.seal = RowSeal(bytes(32))
    with s.transaction() as tx:
        repos.state.init_state(tx, vault_id="t", created_at=NOW, owner="o", rules_version=1, audit_seq=0,
                               audit_mac=bytes(32))
    yield s
    s.dispose()


def _secret(tx, sid, env="production", name="db.password", version=1, blob=b"\x01opaque"):
    repos.secrets.insert_secret(tx, id=sid, environment=env, name=name, secret_type="password", description="",
                                tags="[]", salt=bytes(16), current_version=version, max_versions=20, created_at=NOW,
                                created_by="o", updated_at=NOW, updated_by="o")
    repos.versions.insert_version(tx, secret_id=sid, version=version, ciphertext=blob, key_term=1, state="current",
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
        row = repos.secrets.read_current(tx, "production", "db.password")
        assert bytes(row["ciphertext"]) == blob and row["id"] == "a" * 32
        assert repos.secrets.read_current(tx, "staging", "db.password") is None
        assert repos.secrets.find_secret(tx, "production", "db.password")["secret_type"] == "password"


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
        assert repos.secrets.find_secret(tx, "production", "db.password") is None


def test_cas_update_only_on_expected_version(storage):
    with storage.transaction() as tx:
        _secret(tx, "a" * 32)
    with storage.transaction() as tx:
        assert repos.secrets.cas_update_secret(tx, "a" * 32, 1, current_version=2) is True
        assert repos.secrets.cas_update_secret(tx, "a" * 32, 1, current_version=3) is False
        assert repos.secrets.secret_by_id(tx, "a" * 32)["current_version"] == 2


def test_versions_states_prune_and_purge(storage):
    sid = "a" * 32
    with storage.transaction() as tx:
        _secret(tx, sid)
        for v in range(2, 6):
            repos.versions.insert_version(tx, secret_id=sid, version=v, ciphertext=b"x", key_term=1, state="old",
                                          created_at=NOW,
                                          created_by="o")
        repos.versions.set_version_state(tx, sid, 5, "previous")
        repos.versions.prune_versions(tx, sid, below=4, keep=[1])
        assert [v["version"] for v in repos.versions.list_versions(tx, sid)] == [5, 4, 1]
        repos.secrets.purge_secret(tx, sid)
        assert repos.versions.list_versions(tx, sid) == [] and repos.secrets.secret_by_id(tx, sid) is None


def test_keyset_listing_with_filters(storage):
    with storage.transaction() as tx:
        for i in range(25):
            _secret(tx, f"{i:032d}", env="production" if i % 2 else "staging", name=f"app.key{i:02d}")
        repos.secrets.update_secret(tx, f"{3:032d}", tags=json.dumps(["pci"]), deleted_at=None)
        repos.secrets.update_secret(tx, f"{5:032d}", deleted_at=NOW)
    with storage.transaction(write=False) as tx:
        seen, after = [], None
        while True:
            page = repos.secrets.list_secrets(tx, after=after, limit=7)
            seen += [(r["environment"], r["name"]) for r in page]
            if len(page) < 7:
                break
            after = (page[-1]["environment"], page[-1]["name"])
        assert seen == sorted(seen) and len(seen) == 24  # one is deleted
        assert [r["name"] for r in repos.secrets.list_secrets(tx, tag="pci")] == ["app.key03"]
        assert len(repos.secrets.list_secrets(tx, environments=["staging"])) == 13
        assert [r["name"] for r in repos.secrets.list_secrets(tx, only_deleted=True)] == ["app.key05"]
        assert [r["name"] for r in repos.secrets.list_secrets(tx, prefix="app.key1", environments=["production"])] == \
            ["app.key11", "app.key13", "app.key15", "app.key17", "app.key19"]
        assert repos.secrets.list_secrets(tx, contains="%") == []  # LIKE wildcards are escaped


def test_audit_append_moves_head_and_counts(storage):
    base = dict(ts=NOW, principal="p", roles="", client_ip=None, forwarded_for=None, forwarded_trusted=False,
                user_agent=None, session_id=None, operation="read", environment="production", secret_id=None,
                secret_name="n", version=None, outcome="allowed", reason="")
    with storage.transaction() as tx:
        for seq in (1, 2, 3):
            repos.audit.append_audit(tx, dict(base, seq=seq, ts=NOW + seq, prev_mac=bytes(32), mac=bytes([seq]) * 32),
                                     day=19675)
    with storage.transaction(write=False) as tx:
        state = repos.state.get_state(tx)
        assert state["audit_seq"] == 3 and bytes(state["audit_mac"]) == bytes([3]) * 32
        assert [r["seq"] for r in repos.audit.iter_audit(tx)] == [1, 2, 3]
        assert [r["seq"] for r in repos.audit.query_audit(tx, filters={}, before=(NOW + 3, 3), limit=10)] == [2, 1]
        assert [dict(r)["count"] for r in repos.audit.audit_daily_counts(tx, 19675)] == [3]


def test_rules_and_principals(storage):
    with storage.transaction() as tx:
        rid = repos.rules.insert_rule(tx, subject_kind="user", subject="bob", environment="*", pattern="db.*",
                                      levels="read",
                                      effect="allow", secret_id=None, created_at=NOW, created_by="o", note="")
        repos.principals.insert_principal(tx, name="bob", kind="user", roles='["ops"]', created_at=NOW, updated_at=NOW)
        v = repos.state.bump_rules_version(tx)
    with storage.transaction() as tx:
        assert repos.rules.get_rule(tx, rid)["pattern"] == "db.*" and repos.state.rules_version(tx) == v == 2
        assert repos.principals.get_principal(tx, "bob")["roles"] == '["ops"]'
        repos.rules.delete_rule(tx, rid)
        assert repos.rules.list_rules(tx) == []


def test_wrapped_keys_and_encryption_counter(storage):
    with storage.transaction() as tx:
        repos.keys.put_wrapped_key(tx, "data", 1, b"w1", NOW)
        repos.keys.count_encryptions(tx, 1, 5)
        repos.keys.count_encryptions(tx, 1)
        repos.keys.rewrap_key(tx, "data", 1, b"w2")
    with storage.transaction(write=False) as tx:
        (row,) = repos.keys.wrapped_keys_of(tx, "data")
        assert row["encryptions"] == 6 and bytes(row["wrapped"]) == b"w2"


def test_migrations_build_exactly_the_declared_schema(storage):
    """Alembic's autogenerate finds nothing to add: the migrations and schema.py agree."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from vault_core.storage.schema import metadata

    with storage.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []


# -- console users: sessions and failed logins --------------------------------------------------
def _principal(tx, name="bob", roles='["ops"]'):
    repos.principals.insert_principal(tx, name=name, kind="user", roles=roles, created_at=NOW, updated_at=NOW)


def test_login_attempts_reserve_count_settle_and_clear(storage):
    from vault_core.storage.repos import users

    def counts(tx, source, since=0):
        return users.attempt_counts(tx, "bob", source, source_since=since, account_since=0)

    with storage.transaction() as tx:
        ids = [users.add_attempt(tx, "bob", "10.0.0.1", ts) for ts in (NOW, NOW + 10, NOW + 20)]
        other = users.add_attempt(tx, "bob", "10.0.0.2", NOW + 30)
        users.add_attempt(tx, "eve", "10.0.0.1", NOW + 20)
    assert len(set(ids)) == 3
    with storage.transaction() as tx:
        assert counts(tx, "10.0.0.1") == (3, NOW + 20, 4)  # pending attempts count
        assert counts(tx, "10.0.0.1", since=NOW + 10) == (2, NOW + 20, 4)
        assert counts(tx, "10.9.9.9") == (0, None, 4)
        users.settle_attempt(tx, ids[0], "bob", "10.0.0.1", ok=False)  # a failure stays counted
        assert counts(tx, "10.0.0.1") == (3, NOW + 20, 4)
        users.settle_attempt(tx, other, "bob", "10.0.0.2", ok=True)  # a success forgets its source only
        assert counts(tx, "10.0.0.2") == (0, None, 3) and counts(tx, "10.0.0.1")[0] == 3
        users.clear_failures(tx, "bob", before=NOW + 10)
        assert counts(tx, "10.0.0.1") == (2, NOW + 20, 2)
        users.clear_failures(tx, "bob")
        assert counts(tx, "10.0.0.1") == (0, None, 0)
        assert users.attempt_counts(tx, "eve", "10.0.0.1", source_since=0, account_since=0) == (1, NOW + 20, 1)


def test_sessions_join_revoke_list_and_prune(storage):
    from vault_core.storage.repos import users

    with storage.transaction() as tx:
        _principal(tx)
        for sid, expires in (("s1", NOW + 100), ("s2", NOW + 200), ("s3", NOW - 1)):
            users.insert_session(tx, id=sid, principal="bob", created_at=NOW, expires_at=expires, epoch=0,
                                 client_ip="10.0.0.1", user_agent="ua")
    with storage.transaction() as tx:
        joined = users.session_with_principal(tx, "s1")
        assert joined["principal"] == "bob" and joined["roles"] == '["ops"]' and not joined["disabled"]
        assert users.session_with_principal(tx, "nope") is None and users.get_session(tx, "nope") is None
        assert users.get_session(tx, "s2")["expires_at"] == NOW + 200
        assert [s["id"] for s in users.active_sessions(tx, "bob", NOW)] in (["s1", "s2"], ["s2", "s1"])
        assert users.revoke_session(tx, "s1", NOW + 1) is True
        assert users.revoke_session(tx, "s1", NOW + 2) is False  # already revoked
        assert [s["id"] for s in users.active_sessions(tx, None, NOW)] == ["s2"]
        assert users.revoke_sessions_of(tx, "bob", NOW + 3) == 2  # s2, and s3 (expired, not revoked)
        assert users.active_sessions(tx, "bob", NOW) == []
        assert users.prune_sessions(tx, NOW + 2) == 2  # s3 expired, s1 revoked before NOW + 2
        assert users.get_session(tx, "s2") is not None


# -- rotation: the lease, due secrets, pending versions, re-encryption ------------------------------
def test_lease_one_holder_until_expiry(storage):
    from vault_core.storage import repos

    with storage.transaction() as tx:
        assert repos.leases.acquire_lease(tx, "sched", "a", NOW, 100) is True
        assert repos.leases.acquire_lease(tx, "sched", "b", NOW + 50, 100) is False
        assert repos.leases.acquire_lease(tx, "sched", "a", NOW + 50, 100) is True  # renewal
        assert repos.leases.lease_holder(tx, "sched")["expires_at"] == NOW + 150
        assert repos.leases.acquire_lease(tx, "sched", "b", NOW + 150, 100) is True  # expired: taken over
        repos.leases.release_lease(tx, "sched", "a")  # not the holder: nothing happens
        assert repos.leases.lease_holder(tx, "sched")["holder"] == "b"
        repos.leases.release_lease(tx, "sched", "b")
        assert repos.leases.acquire_lease(tx, "sched", "a", NOW + 151, 100) is True
        assert repos.leases.lease_holder(tx, "other") is None


def test_due_rotations_claimed_once(storage):
    from vault_core.storage import repos

    with storage.transaction() as tx:
        for i, due in enumerate((NOW - 20, NOW - 10, NOW + 10)):
            _secret(tx, f"{i:032d}", name=f"k{i}")
            repos.secrets.update_secret(tx, f"{i:032d}", next_rotation_at=due, expires_at=NOW + 5 if i == 2 else None)
    with storage.transaction() as tx:
        soon = repos.secrets.upcoming(tx, NOW + 10, NOW + 5, 10)
        assert sorted(r["name"] for r in soon) == ["k0", "k1", "k2"]  # k2 by its schedule and its expiry: once
        assert [r["name"] for r in repos.secrets.upcoming(tx, NOW - 15, NOW - 15, 10)] == ["k0"]
        assert repos.secrets.due_secret_ids(tx, NOW, 10) == [f"{0:032d}", f"{1:032d}"]
        assert repos.secrets.due_secret_ids(tx, NOW, 1) == [f"{0:032d}"]
        assert repos.secrets.claim_due(tx, f"{0:032d}", NOW, NOW + 100) is True
        assert repos.secrets.claim_due(tx, f"{0:032d}", NOW, NOW + 100) is False  # no longer due
        assert repos.secrets.due_secret_ids(tx, NOW, 10) == [f"{1:032d}"]


def test_pending_versions_and_blobs(storage):
    from vault_core.storage import repos

    sid = "a" * 32
    with storage.transaction() as tx:
        _secret(tx, sid, blob=b"one")
        repos.versions.insert_version(tx, secret_id=sid, version=2, ciphertext=b"two", key_term=1, state="pending",
                                      created_at=NOW + 1, created_by="o")
    with storage.transaction() as tx:
        pending = repos.versions.pending_versions(tx, sid)
        assert [(p["version"], bytes(p["ciphertext"])) for p in pending] == [(2, b"two")]
        assert bytes(repos.versions.version_blob(tx, sid, 1)) == b"one"
        assert repos.versions.version_blob(tx, sid, 9) is None
        assert repos.versions.delete_pending(tx, sid, 2, b"other") is False  # not the one we staged
        assert repos.versions.delete_pending(tx, sid, 1) is False  # current, not pending
        assert repos.versions.delete_pending(tx, sid, 2, b"two") is True
        assert repos.versions.pending_versions(tx, sid) == []


def test_rotation_events_newest_first(storage):
    from vault_core.storage import repos

    base = dict(principal="p", roles="", client_ip=None, forwarded_for=None, forwarded_trusted=False,
                user_agent=None, session_id=None, environment="production", secret_name="n", version=None,
                outcome="allowed", reason="", prev_mac=bytes(32), mac=bytes(32))
    with storage.transaction() as tx:
        for seq, op, sid in ((1, "rotate", "a"), (2, "read", "a"), (3, "revert", "b"), (4, "rotate", "a")):
            repos.audit.append_audit(tx, dict(base, seq=seq, ts=NOW + seq, operation=op, secret_id=sid), day=1)
    with storage.transaction(write=False) as tx:
        assert [r["seq"] for r in repos.audit.rotation_events(tx, ("rotate", "revert"), None, 10)] == [4, 3, 1]
        assert [r["seq"] for r in repos.audit.rotation_events(tx, ("rotate", "revert"), "a", 1)] == [4]


def test_reencryption_terms_rewrite_and_jobs(storage):
    from vault_core.storage import repos

    sid = "a" * 32
    with storage.transaction() as tx:
        repos.keys.put_wrapped_key(tx, "data", 1, b"w1", NOW)
        repos.keys.put_wrapped_key(tx, "data", 2, b"w2", NOW)
        repos.keys.put_wrapped_key(tx, "audit", 1, b"wa", NOW)
        _secret(tx, sid)
        repos.versions.insert_version(tx, secret_id=sid, version=2, ciphertext=b"v2", key_term=2, state="old",
                                      created_at=NOW,
                                      created_by="o")
    with storage.transaction() as tx:
        assert [r["term"] for r in repos.keys.data_terms(tx)] == [1, 2]
        (below,) = repos.versions.versions_below(tx, 2, 10)
        assert (below["version"], below["name"], below["environment"]) == (1, "db.password", "production")
        assert repos.versions.count_below(tx, 2) == 1 and repos.versions.versions_per_term(tx) == {1: 1, 2: 1}
        rows = [dict(sid=sid, ver=1, old_term=1, blob=b"re", new_term=2),
                dict(sid=sid, ver=2, old_term=1, blob=b"no", new_term=2)]  # v2 is not under term 1
        assert repos.versions.rewrite_versions(tx, rows) == 1 and repos.versions.rewrite_versions(tx, []) == 0
        assert repos.versions.count_below(tx, 2) == 0 and bytes(repos.versions.version_blob(tx, sid, 2)) == b"v2"
        repos.keys.retire_term(tx, 1, NOW + 5)
        assert [r["retired_at"] for r in repos.keys.data_terms(tx)] == [NOW + 5, None]
        job = repos.jobs.open_job(tx, 2, NOW, total=3)
        repos.jobs.advance_job(tx, job["id"], 2)
        again = repos.jobs.open_job(tx, 2, NOW + 1, total=4)  # resumed: same job, done so far + what is left
        assert again["id"] == job["id"] and again["total"] == 6
        repos.jobs.finish_job(tx, job["id"], NOW + 9)
        (row,) = repos.jobs.jobs(tx)
        assert (row["done"], row["finished_at"]) == (2, NOW + 9)
        assert repos.jobs.open_job(tx, 2, NOW + 10, total=1)["id"] != job["id"]


# -- backup and operator queries ---------------------------------------------------------------------
def test_backup_snapshot_helpers(storage):
    from vault_core.storage import snapshot as backup

    with storage.transaction() as tx:
        _secret(tx, "a" * 32)
    head_revision = storage.migrate()
    with storage.engine.connect() as conn:
        names = [t.name for t in backup.data_tables(conn)]
        assert "alembic_version" not in names and names.index("secrets") < names.index("secret_versions")
        assert backup.schema_revision(conn) == head_revision
        counts = backup.table_counts(conn)
        assert counts["secrets"] == 1 and counts["secret_versions"] == 1 and counts["vault_state"] == 1
        head = backup.head_of(conn)
        assert head == {"vault_id": "t", "audit": {"seq": 0, "mac": "00" * 32}}


def test_backup_jsonl_round_trip_and_copy(storage, tmp_path):
    import base64
    import io

    from vault_core.errors import IntegrityError
    from vault_core.storage import snapshot as backup

    def encode(v):
        return {"b": base64.b64encode(bytes(v)).decode()} if isinstance(v, (bytes, memoryview)) else v

    def decode(v):
        return base64.b64decode(v["b"]) if isinstance(v, dict) else v

    blob = bytes(range(256))
    with storage.transaction() as tx:
        _secret(tx, "a" * 32, blob=blob)
    out = io.StringIO()
    with storage.engine.connect() as conn:
        counts = backup.export_jsonl(conn, out, encode)
    assert counts["secret_versions"] == 1
    rows = list(backup.read_jsonl(iter(out.getvalue().splitlines()), decode))
    assert {t for t, _ in rows} >= {"secrets", "secret_versions", "vault_state"}
    target = Storage(sqlite_url(tmp_path / "copy.db"))
    target.migrate()
    target.seal = RowSeal(bytes(32))  # the same row key: the copied rows keep their MACs
    try:
        with target.engine.begin() as conn:
            loaded = backup.load_rows(conn, iter(rows))
        assert loaded == {k: v for k, v in counts.items() if v}
        with target.transaction(write=False) as tx:
            assert bytes(repos.secrets.read_current(tx, "production", "db.password")["ciphertext"]) == blob
        with storage.engine.connect() as src, target.engine.begin() as dst:
            assert backup.copy_all(src, dst)["secrets"] == 1  # replaces, does not add
        with target.engine.connect() as conn:
            assert backup.table_counts(conn)["secrets"] == 1
    finally:
        target.dispose()
    with pytest.raises(IntegrityError, match="line 1 is malformed"):
        list(backup.read_jsonl(iter(["{not json"]), decode))


def test_login_failures_since_counts_every_principal(storage):
    from vault_core.storage.repos import users

    with storage.transaction() as tx:
        users.add_attempt(tx, "bob", "10.0.0.1", NOW)
        users.add_attempt(tx, "eve", "10.0.0.1", NOW + 5)
    with storage.transaction(write=False) as tx:
        assert users.count_failures_since(tx, NOW + 1) == 1 and users.count_failures_since(tx, 0) == 2


# -- application helpers: versions, never values --------------------------------------------------------
def test_live_versions_of_one_environment(storage):
    from vault_core.storage.repos.secrets import live_versions

    with storage.transaction() as tx:
        _secret(tx, "a" * 32, name="a")
        _secret(tx, "b" * 32, name="b", version=3)
        _secret(tx, "c" * 32, name="c")
        _secret(tx, "d" * 32, name="a", env="staging")
        repos.secrets.update_secret(tx, "c" * 32, deleted_at=NOW)
    with storage.transaction(write=False) as tx:
        assert sorted(live_versions(tx, "production")) == [("a", 1, "[]"), ("b", 3, "[]")]
        assert live_versions(tx, "production", ["b", "c"]) == [("b", 3, "[]")]
        assert live_versions(tx, "development") == []


def test_counters_and_deleted_rules(storage):
    with storage.transaction() as tx:
        _secret(tx, "a" * 32)
        repos.secrets.count_secret(tx, "production", "password", 1)
        repos.secrets.count_secret(tx, "production", "password", 1)
        repos.secrets.count_secret(tx, "staging", "api_key", 1)
        repos.secrets.count_secret(tx, "staging", "api_key", -1)
        repos.rules.insert_rule(tx, subject_kind="user", subject="bob", environment="*", pattern="*", levels="read",
                                effect="allow", secret_id="a" * 32, created_at=NOW, created_by="o", note="")
        repos.rules.delete_rules_of_secret(tx, "a" * 32)
        assert repos.rules.list_rules(tx) == []
        assert [tuple(r.values()) for r in repos.secrets.count_secrets_by(tx)] == [("production", "password", 2)]
        repos.secrets.recount_secrets(tx)
        assert [tuple(r.values()) for r in repos.secrets.count_secrets_by(tx)] == [("production", "password", 1)]
        assert bytes(repos.versions.get_version(tx, "a" * 32, 1)["ciphertext"]) == b"\x01opaque"


def test_protected_rows_changed_behind_the_seal_are_refused(storage):
    with storage.transaction() as tx:
        repos.principals.insert_principal(tx, name="p", kind="user", roles='["viewer"]', created_at=NOW,
                                          updated_at=NOW)
        rule_id = repos.rules.insert_rule(tx, subject_kind="user", subject="p", environment="*", pattern="*",
                                          levels="read", effect="allow", created_at=NOW, created_by="o", note="")
    with storage.engine.begin() as conn:
        conn.execute(text("UPDATE principals SET roles = '[\"admin\"]' WHERE name = 'p'"))
    with storage.transaction(write=False) as tx, pytest.raises(IntegrityError, match="principals"):
        repos.principals.get_principal(tx, "p")
    with storage.transaction() as tx:
        saved = dict(repos.rules.get_rule(tx, rule_id))
        repos.rules.delete_rule(tx, rule_id)
    with storage.engine.begin() as conn:  # the deleted row, MAC and all, brought back
        conn.execute(repos.integrity.PROTECTED["access_rules"].insert().values(**saved))
    with storage.transaction(write=False) as tx, pytest.raises(IntegrityError, match="digest"):
        repos.rules.list_rules(tx)
    with storage.transaction(write=False) as tx:
        assert len(repos.integrity.problems(tx)) == 2
