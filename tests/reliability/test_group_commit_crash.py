"""kill -9 while many threads read through the group commit: no value handed out without its audit row.

Each reader appends a secret's name to a log only after ``get_secret`` returned its value; after
each kill, every name must have at least as many committed ``read`` audit rows as the log shows
returned values, the chain must verify, and the database must be sound. Seen failing with a
variant that handed the row to a thread and returned the value at once (40 of 40 names short).
"""

from __future__ import annotations

import random
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest

from .common import all_audit_rows, open_test_vault, scaled, worker_cmd, worker_env
from .reader import SECRETS_PER_THREAD

THREADS = 8


def _seed(vault) -> None:
    for t in range(THREADS):
        for j in range(SECRETS_PER_THREAD):
            name = f"g{t}/s{j}"
            vault.store_secret(name, f"value-{name}", environment="production")


def _returned(log: Path) -> Counter:
    lines = log.read_text().splitlines() if log.exists() else []
    assert not [x for x in lines if x.startswith("WRONG")], "a reader got a wrong value"
    return Counter(x for x in lines if x and x != "READY")


def _wait_ready(log: Path, proc: subprocess.Popen) -> None:
    for _ in range(6000):
        if log.exists() and "READY" in log.read_text():
            return
        assert proc.poll() is None, f"reader exited early ({proc.returncode})"
        time.sleep(0.01)
    raise AssertionError("reader did not start")


def run_reader_kills(tmp_path: Path, kills: int, url: str | None, seed: int) -> dict:
    vault_dir = tmp_path / "vault"
    vault = open_test_vault(vault_dir, url)
    _seed(vault)
    vault.storage.dispose()
    rng = random.Random(seed)
    total = Counter()
    for k in range(kills):
        log = tmp_path / f"returned-{k}.log"
        args = [str(vault_dir), str(log), str(THREADS)] + ([url] if url else [])
        proc = subprocess.Popen(worker_cmd("reader.py", *args), env=worker_env(), stderr=subprocess.PIPE)
        try:
            _wait_ready(log, proc)
            time.sleep(0.2 + rng.random() * 0.8)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        total += _returned(log)
    vault = open_test_vault(vault_dir, url)
    try:
        audited = Counter(r["secret_name"] for r in all_audit_rows(vault, operation="read") if r["success"])
        report = vault.verify_audit_log()
        integrity = vault.storage.integrity_check()
    finally:
        vault.storage.dispose()
    return {"returned": total, "audited": audited, "verified": report.ok, "integrity": integrity}


def _assert_no_value_without_row(out: dict) -> None:
    returned, audited = out["returned"], out["audited"]
    assert sum(returned.values()) > 0  # the readers really handed out values before the kills
    short = {n: (c, audited[n]) for n, c in returned.items() if audited[n] < c}
    assert short == {}, f"values handed out without their committed audit row: {short}"
    assert out["verified"] and out["integrity"] == "ok"


@pytest.mark.slow
def test_kill9_group_commit_sqlite_no_value_without_its_audit_row(tmp_path):
    _assert_no_value_without_row(run_reader_kills(tmp_path, scaled(6), None, seed=31))


@pytest.mark.slow
@pytest.mark.postgres
def test_kill9_group_commit_postgres_no_value_without_its_audit_row(tmp_path, pg_url):
    _assert_no_value_without_row(run_reader_kills(tmp_path, scaled(4), pg_url, seed=32))
