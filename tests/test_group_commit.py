"""The group commit of read-audit rows (service/group_commit.py), on SQLite and PostgreSQL."""

from __future__ import annotations

import threading

from vault_core import AuditFailure
from vault_core.storage import repos

READERS = 8
READS = 40


def _read_concurrently(vault, names) -> list:
    results: list = []
    start = threading.Barrier(len(names))

    def reader(name: str) -> None:
        start.wait()
        for _ in range(READS):
            try:
                results.append(vault.get_secret(name))
            except Exception as exc:  # collected: the test asserts on them
                results.append(exc)

    threads = [threading.Thread(target=reader, args=(n,)) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_concurrent_reads_share_commits_and_every_row_chains(any_vault):
    names = [f"gc/s{i}" for i in range(READERS)]
    for n in names:
        any_vault.store_secret(n, f"v-{n}")
    group = any_vault._runner.group
    results = _read_concurrently(any_vault, names)
    assert sorted(results) == sorted(f"v-{n}" for n in names for _ in range(READS))
    assert 0 < group.batches < group.rows <= READERS * READS  # some commit held more than one reader's row
    reads = any_vault.get_audit_log(operation="read", limit=1000)
    assert len(reads) == READERS * READS and all(r["success"] for r in reads)
    assert any_vault.verify_audit_log().ok


def test_a_failed_group_commit_gives_every_reader_of_the_batch_an_error_and_no_value(vault, monkeypatch):
    names = [f"gc/s{i}" for i in range(4)]
    for n in names:
        vault.store_secret(n, "top-secret-value")

    def broken(tx, rows, days):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(repos.audit, "append_audit_batch", broken)
    monkeypatch.setattr(repos.audit, "append_audit", lambda tx, row, day: broken(tx, [row], [day]))  # lone reads
    results = _read_concurrently(vault, names)
    assert results and all(isinstance(r, AuditFailure) for r in results)
    assert not any("top-secret-value" in str(r) for r in results)
    monkeypatch.undo()
    assert vault.get_secret(names[0]) == "top-secret-value"
    assert vault.verify_audit_log().ok


def test_a_lone_read_commits_its_row_in_its_own_transaction(vault):
    vault.store_secret("one", "v")
    group = vault._runner.group
    assert vault.get_secret("one") == "v" and group.rows == 0
    assert vault.get_audit_log(operation="read", limit=5)[0]["secret_name"] == "one"
