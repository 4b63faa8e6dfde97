"""Background WAL checkpoints (storage/checkpoint.py): commits never checkpoint inline; the thread survives fork."""

from __future__ import annotations

import json
import os
import time

import pytest

from vault_core import open_vault
from vault_core.storage.checkpoint import SAFETY_PAGES


def _wait(predicate, what: str, bound: float = 60.0) -> None:
    deadline = time.monotonic() + bound
    while not predicate():
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.005)


@pytest.fixture
def small_vault(tmp_path):
    v = open_vault(tmp_path / "vault", principal="owner")
    yield v
    v.storage.dispose()


def test_commits_leave_checkpoints_to_the_thread(small_vault):
    storage = small_vault.storage
    with storage.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == SAFETY_PAGES
    cp = storage.checkpointer
    assert cp.alive()
    before = cp.checkpoints
    for i in range(20):
        small_vault.store_secret(f"cp/s{i}", "v")
    _wait(lambda: cp.checkpoints > before, "a background checkpoint")
    _wait(lambda: cp.last is not None and cp.last[1] == cp.last[2] > 0, "every WAL frame copied")
    assert small_vault.get_secret("cp/s19") == "v" and storage.integrity_check() == "ok"


def test_a_forked_child_gets_its_own_checkpoint_thread_and_fresh_connections(small_vault):
    small_vault.store_secret("before-fork", "p")
    cp = small_vault.storage.checkpointer
    parent_thread = cp.thread
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report, then leave without running the parent's atexit/cleanup
        code = 1
        try:
            report = {"alive": cp.alive(), "new_thread": cp.thread is not parent_thread}
            before = cp.checkpoints
            for i in range(20):
                small_vault.store_secret(f"child/s{i}", "c")
            deadline = time.monotonic() + 60
            while cp.checkpoints == before and time.monotonic() < deadline:
                time.sleep(0.005)
            report["checkpointed"] = cp.checkpoints > before
            report["read"] = small_vault.get_secret("before-fork")
            os.write(write_fd, json.dumps(report).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write_fd)
    with os.fdopen(read_fd) as f:
        report = json.loads(f.read() or "{}")
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert report == {"alive": True, "new_thread": True, "checkpointed": True, "read": "p"}
    assert cp.alive() and cp.thread is parent_thread  # the parent's thread is untouched
    assert small_vault.get_secret("child/s19") == "c"  # the child's writes, seen by the parent
    assert small_vault.verify_audit_log().ok
