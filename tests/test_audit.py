"""The audit log: one row per attempt, fail closed, tamper-evident chain, search, export."""

from __future__ import annotations

import csv
import io
import json
import logging
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import delete, select, update

from vault_core import AccessDenied, AuditFailure, ValidationError, open_vault
from vault_core.storage import repos
from vault_core.storage.schema import audit_log, secret_versions, secrets

CANARY = "canary-8c1f-do-not-leak"


def _rows(vault):
    with vault.storage.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(select(audit_log).order_by(audit_log.c.seq))]


def test_each_operation_writes_exactly_one_row_with_fields(vault):
    ops = [
        ("store", lambda: vault.store_secret("db.pw", CANARY, environment="production")),
        ("read", lambda: vault.get_secret("db.pw", "production")),
        ("reveal", lambda: vault.reveal_secret("db.pw", "production")),
        ("update", lambda: vault.update_secret("db.pw", "production", value=CANARY + "2")),
        ("rotate", lambda: vault.rotate_secret(name="db.pw", environment="production")),
        ("delete", lambda: vault.delete_secret("db.pw", "production")),
        ("restore", lambda: vault.restore_secret("db.pw", "production")),
        ("rule_add", lambda: vault.grant("bob", ["read"])),
        ("roles_set", lambda: vault.set_roles("bob", ["ops"])),
        ("purge", lambda: vault.purge_secret("db.pw", "production")),
    ]
    ua = "Mozilla/5.0 " + "x" * 600 + "\r\nInjected: yes"
    with vault.security_context("owner", "203.0.113.9", ua, roles=("admin",), session_id="s-1",
                                forwarded_for="198.51.100.1, 10.0.0.1"):
        for op, call in ops:
            before = len(_rows(vault))
            call()
            rows = _rows(vault)
            assert len(rows) == before + 1, op
            row = rows[-1]
            assert (row["operation"], row["outcome"], row["principal"]) == (op, "allowed", "owner")
            assert row["client_ip"] == "203.0.113.9" and row["session_id"] == "s-1"
            assert row["forwarded_for"] == "198.51.100.1, 10.0.0.1" and row["forwarded_trusted"] is False
            assert len(row["user_agent"]) == 512 and "\r" not in row["user_agent"] and "\n" not in row["user_agent"]
            assert "admin" in row["roles"]
            if op not in ("rule_add", "roles_set"):
                assert row["secret_name"] == "db.pw" and row["environment"] == "production" and row["secret_id"]
    dumped = json.dumps(_rows(vault), default=str)
    assert CANARY not in dumped


def test_denied_and_failed_attempts_are_recorded(vault):
    vault.store_secret("x", "v")
    with vault.security_context("mallory", "192.0.2.7"):
        with pytest.raises(AccessDenied):
            vault.get_secret("x")
    with pytest.raises(ValidationError):
        vault.get_secret("bad name!")
    rows = vault.get_audit_log(limit=2)
    assert [(r["operation"], r["outcome"]) for r in rows] == [("read", "failed"), ("read", "denied")]
    assert rows[1]["user_id"] == "mallory" and rows[1]["client_ip"] == "192.0.2.7" and not rows[1]["success"]
    assert "no rule grants read" in rows[1]["details"]


def test_audit_write_failure_fails_closed(vault, monkeypatch):
    vault.store_secret("k", "original")
    before = _rows(vault)

    def broken(self, row, day):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(repos.audit, "append_audit", broken)
    monkeypatch.setattr(repos.audit, "append_audit_batch", broken)  # reads' rows: the group commit
    with pytest.raises(AuditFailure) as err:
        vault.get_secret("k")
    assert "original" not in str(err.value)
    with pytest.raises(AuditFailure):
        vault.update_secret("k", value="changed")
    with pytest.raises(AuditFailure):
        vault.store_secret("new", "x")
    monkeypatch.undo()
    assert vault.get_secret("k") == "original" and vault.get_secret("new") is None
    assert len(_rows(vault)) == len(before) + 2  # only the two reads just made


@pytest.fixture
def chained(vault):
    for i in range(10):
        vault.store_secret(f"s{i}", f"v{i}")
    assert vault.verify_audit_log().ok
    return vault


def _tamper(vault, stmt):
    with vault.storage.engine.begin() as conn:
        conn.execute(stmt)


def test_edited_row_is_named(chained):
    _tamper(chained, update(audit_log).where(audit_log.c.seq == 5).values(principal="someone-else"))
    report = chained.verify_audit_log()
    assert not report.ok and report.first_bad_seq == 5 and "edited" in report.problem


def test_deleted_row_is_named(chained):
    _tamper(chained, delete(audit_log).where(audit_log.c.seq == 4))
    report = chained.verify_audit_log()
    assert not report.ok and report.first_bad_seq == 4 and "missing" in report.problem


def test_inserted_row_is_named(chained):
    rows = _rows(chained)
    with chained.storage.engine.begin() as conn:  # shift rows 6.. up by one and insert a forged row 6
        for r in reversed(rows[5:]):
            conn.execute(update(audit_log).where(audit_log.c.seq == r["seq"]).values(seq=r["seq"] + 1))
        forged = dict(rows[5], seq=6, principal="forger", prev_mac=rows[4]["mac"])
        conn.execute(audit_log.insert().values(**forged))
    report = chained.verify_audit_log()
    assert not report.ok and report.first_bad_seq == 6


def test_reordered_rows_are_named(chained):
    rows = _rows(chained)
    a, b = rows[2], rows[3]
    cols = [c for c in a if c != "seq"]
    with chained.storage.engine.begin() as conn:
        conn.execute(update(audit_log).where(audit_log.c.seq == 3).values(**{c: b[c] for c in cols}))
        conn.execute(update(audit_log).where(audit_log.c.seq == 4).values(**{c: a[c] for c in cols}))
    report = chained.verify_audit_log()
    assert not report.ok and report.first_bad_seq == 3


def test_cut_off_tail_is_caught_by_the_head_mac_and_by_a_checkpoint(chained):
    checkpoint = chained.audit_checkpoint()
    last = checkpoint["seq"]
    _tamper(chained, delete(audit_log).where(audit_log.c.seq >= last - 1))
    prev = _rows(chained)[-1]
    from vault_core.storage.schema import vault_state

    # without the key, the head cannot be moved back: the state row's MAC covers it
    _tamper(chained, update(vault_state).values(audit_seq=prev["seq"], audit_mac=prev["mac"]))
    report = chained.verify_audit_log()
    assert not report.ok and "vault_state" in report.problem
    report = chained.verify_audit_log(checkpoint=checkpoint)
    assert not report.ok and "before the checkpoint" in report.problem


def test_tail_and_state_rolled_back_together_need_a_checkpoint(chained):
    from vault_core.storage.schema import vault_state

    with chained.storage.engine.connect() as conn:
        saved = dict(conn.execute(select(vault_state)).first()._mapping)
    for i in range(3):
        chained.get_secret(f"s{i}")
    checkpoint = chained.audit_checkpoint()
    _tamper(chained, delete(audit_log).where(audit_log.c.seq > saved["audit_seq"]))
    _tamper(chained, update(vault_state).values(**saved))
    # a consistent older copy of the log and its state (a rollback): only an external checkpoint tells
    assert chained.verify_audit_log().ok
    report = chained.verify_audit_log(checkpoint=checkpoint)
    assert not report.ok and "before the checkpoint" in report.problem


def test_audit_hash_finds_writes_of_a_leaked_value(vault):
    vault.store_secret("a", "leaked-value")
    vault.store_secret("b", "other")
    vault.update_secret("b", value="leaked-value")
    h = vault.audit_hash("leaked-value")
    assert len(h) == 64 and h != vault.audit_hash("other")
    found = vault.find_value("leaked-value")
    assert [(r["secret_name"], r["operation"]) for r in found] == [("b", "update"), ("a", "store")]
    assert all(r["value_hash"] == h for r in found)


def test_filters_and_keyset_pages(vault):
    t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
    clock = [int(t0.timestamp() * 1e6)]

    def tick():
        clock[0] += 3_600_000_000
        return clock[0]

    vault.clock = tick
    vault.set_roles("ann", ["readers"])
    vault.grant("readers", ["read"], subject_kind="role", environment="staging")
    for i in range(30):
        vault.store_secret(f"k{i}", "v", environment="staging")
        with vault.security_context("ann"):
            vault.get_secret(f"k{i}", "staging")
            if i % 10 == 0:
                with pytest.raises(AccessDenied):
                    vault.get_secret(f"k{i}", "production")
    ann = vault.get_audit_log(principal="ann", limit=1000)
    assert len(ann) == 33 and all(r["user_id"] == "ann" for r in ann)
    assert len(vault.get_audit_log(principal="ann", outcome="denied")) == 3
    assert len(vault.get_audit_log(operation="store", environment="staging", limit=1000)) == 30
    since = t0 + timedelta(hours=20)
    window = vault.get_audit_log(principal="ann", since=since, until=since + timedelta(hours=10), limit=1000)
    assert window and all(since <= r["timestamp"] < since + timedelta(hours=10) for r in window)
    from vault_core import audit_cursor

    pages, cursor = [], None
    while True:
        page = vault.get_audit_log(principal="ann", limit=7, cursor=cursor)
        if not page:
            break
        pages += page
        cursor = audit_cursor(page[-1])
    assert [r["seq"] for r in pages] == [r["seq"] for r in ann]
    counts = vault.audit_counts(days=400)
    assert sum(c["count"] for c in counts if c["operation"] == "store") == 30


def test_injection_strings_in_filters_are_plain_values(vault):
    vault.store_secret("k", "v")
    assert vault.get_audit_log(operation="_") == []  # a plain value, not a LIKE wildcard
    for evil in ("' OR 1=1 --", "%", "*", "store\x00"):
        with pytest.raises(ValidationError):
            vault.get_audit_log(operation=evil)
    with pytest.raises(ValidationError):
        vault.get_audit_log(principal="x' OR '1'='1")
    with pytest.raises(ValidationError):
        vault.get_audit_log(outcome="maybe")


def test_export_csv_neutralises_formulas_and_is_audited(vault):
    with vault.security_context("owner", "1.2.3.4", user_agent="=HYPERLINK(\"http://evil\")", roles=("admin",)):
        vault.store_secret("k", CANARY)
        vault.get_secret("k")
    text = "".join(vault.export_audit("csv", principal="owner"))
    rows = list(csv.DictReader(io.StringIO(text)))
    assert rows and all(not r["user_agent"].startswith("=") for r in rows if r["user_agent"])
    assert any(r["user_agent"].startswith("'=HYPERLINK") for r in rows)
    lines = "".join(vault.export_audit("jsonl", operation="read")).splitlines()
    assert lines and all(json.loads(line)["operation"] == "read" for line in lines)
    assert CANARY not in text and CANARY not in "\n".join(lines)
    assert vault.get_audit_log(operation="audit_export", limit=5)[0]["details"] == "format=jsonl"


def test_reading_the_log_needs_admin_or_auditor(vault):
    vault.set_roles("rita", ["auditor"])
    with vault.security_context("rita"):
        assert vault.get_audit_log(limit=1)
        assert vault.verify_audit_log().ok
    with vault.security_context("nobody"):
        with pytest.raises(AccessDenied):
            vault.get_audit_log()
        with pytest.raises(AccessDenied):
            list(vault.export_audit("csv"))


def test_canary_never_in_logs_errors_or_database_file(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    v = open_vault(tmp_path / "v", principal="owner")
    v.store_secret("canary", CANARY)
    assert v.get_secret("canary") == CANARY
    v.rotate_secret(name="canary")
    v.update_secret("canary", value=CANARY)
    try:
        v.store_secret("canary", CANARY, cas=0)
    except Exception as exc:  # Conflict
        assert CANARY not in str(exc)
    text = "".join(v.export_audit("csv")) + "".join(v.export_audit("jsonl"))
    assert CANARY not in text and CANARY not in caplog.text
    v.storage.dispose()
    for f in Path(tmp_path / "v").iterdir():
        assert CANARY.encode() not in f.read_bytes(), f.name


WORKER = """
import sys, threading
from vault_core import open_vault
v = open_vault(sys.argv[1], database_url=sys.argv[2] or None, principal="owner")
def work(t):
    for i in range(25):
        v.store_secret(f"p{sys.argv[3]}.t{t}.k{i % 5}", f"v{i}")
        v.get_secret(f"p{sys.argv[3]}.t{t}.k{i % 5}")
threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
[t.start() for t in threads]; [t.join() for t in threads]
"""


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_concurrent_writers_two_processes_four_threads(tmp_path, request, backend):
    url = request.getfixturevalue("pg_url") if backend == "postgres" else ""
    v = open_vault(tmp_path / "v", database_url=url or None, principal="owner")
    env = {"PYTHONPATH": str(Path(__file__).parent.parent)}
    import os

    procs = [subprocess.Popen([sys.executable, "-c", WORKER, str(tmp_path / "v"), url, str(p)],
                              env={**os.environ, **env}, stderr=subprocess.PIPE, text=True) for p in range(2)]
    for p in procs:
        assert p.wait(timeout=300) == 0, p.stderr.read()
    report = v.verify_audit_log()
    assert report.ok, report
    assert report.rows_checked >= 2 * 4 * 50
    with v.storage.engine.connect() as conn:
        n_versions = conn.execute(select(secret_versions.c.version)).all()
        n_secrets = conn.execute(select(secrets.c.id)).all()
    assert len(n_secrets) == 40 and len(n_versions) == 200


def test_verify_reports_its_progress_up_to_every_row(vault):
    for i in range(5):
        vault.store_secret(f"p{i}", "v")
    seen: list[tuple[int, int]] = []
    report = vault.verify_audit_log(progress=lambda done, total: seen.append((done, total)))
    assert report.ok and seen and seen[-1] == (report.rows_checked, report.rows_checked)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)


def test_raw_rows_are_the_tables_columns_in_chain_order():
    from vault_core.audit import RAW_COLUMNS
    from vault_core.storage.schema import audit_log

    assert RAW_COLUMNS == tuple(c.key for c in audit_log.c)  # verify_raw reads the driver's tuples by position
