"""The scheduler: lease, rotate_due once per secret across processes (SQLite file and PostgreSQL), thread."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from vault_core import AccessDenied, open_vault
from vault_core.rotation import SCHEDULER_LEASE, SCHEDULER_PRINCIPAL
from vault_core.scheduler import start_scheduler, stop_scheduler
from vault_core.service.lease import Lease
from vault_core.storage import repos

ROOT = Path(__file__).parent.parent
DAY_US = 86_400_000_000
LATER = 2 * DAY_US  # workers look two days ahead: every 1-day secret is due


def _later(vault):
    vault.clock = lambda: time.time_ns() // 1000 + LATER
    return vault


def test_lease_one_holder_expiry_and_renewal(any_vault):
    s = any_vault.storage
    with s.transaction() as tx:
        assert repos.leases.acquire_lease(tx, "job", "a", 1_000, 500)
    with s.transaction() as tx:
        assert not repos.leases.acquire_lease(tx, "job", "b", 1_200, 500)  # a holds it until 1_500
        assert repos.leases.acquire_lease(tx, "job", "a", 1_300, 500)  # renewal by the holder
    with s.transaction() as tx:
        assert not repos.leases.acquire_lease(tx, "job", "b", 1_700, 500)
        assert repos.leases.acquire_lease(tx, "job", "b", 1_800, 500)  # expired: b takes over
        repos.leases.release_lease(tx, "job", "a")  # a no longer holds it: no effect
    with s.transaction() as tx:
        assert repos.leases.lease_holder(tx, "job")["holder"] == "b"
        repos.leases.release_lease(tx, "job", "b")
        assert repos.leases.acquire_lease(tx, "job", "c", 1_900, 500)


def test_lease_keeper_excludes_a_second_vault_object(vault):
    other = open_vault(vault.vault_dir, principal="owner")
    try:
        with Lease(vault.storage, vault.clock, SCHEDULER_LEASE, "first-holder", 60) as first:
            assert first.held
            with Lease(other.storage, other.clock, SCHEDULER_LEASE, "second-holder", 60) as second:
                assert not second.held
                assert other.rotate_due().lease is False
        with Lease(other.storage, other.clock, SCHEDULER_LEASE, "second-holder", 60) as again:
            assert again.held
    finally:
        other.storage.dispose()


def test_rotate_due_runs_as_the_scheduler_once(any_vault):
    due = [any_vault.store_secret(f"due.{i}", "old", rotation_interval_days=1) for i in range(5)]
    later = any_vault.store_secret("later", "old", rotation_interval_days=30)
    any_vault.store_secret("never", "old")
    gone = any_vault.store_secret("gone", "old", rotation_interval_days=1)
    any_vault.delete_secret(secret_id=gone)
    assert any_vault.rotate_due().results == []  # nothing due yet
    _later(any_vault)
    run = any_vault.rotate_due(limit=3)
    assert run.lease and len(run.rotated) == 3
    run = any_vault.rotate_due(limit=3)
    assert len(run.rotated) == 2 and any_vault.rotate_due().results == []
    assert {r["secret_id"] for r in any_vault.rotation_history() if r["outcome"] == "allowed"} == set(due)
    for sid in due:
        meta = any_vault.get_metadata(secret_id=sid)
        assert meta.current_version == 2 and meta.next_rotation_at > meta.last_rotated_at
        rows = any_vault.get_audit_log(secret_id=sid, operation="rotate", outcome="allowed")
        assert [r["principal"] for r in rows] == [SCHEDULER_PRINCIPAL]
    assert any_vault.get_metadata(secret_id=later).current_version == 1
    assert any_vault.verify_audit_log().ok
    assert json.dumps(run.to_dict())  # the CLI prints it


def test_rotate_due_needs_admin_or_rotator_and_the_rule_can_be_revoked(vault):
    sid = vault.store_secret("s", "old", rotation_interval_days=1)
    with vault.security_context("nobody"):
        with pytest.raises(AccessDenied):
            vault.rotate_due()
    _later(vault)
    builtin = [r for r in vault.list_rules() if r.note == "built-in: scheduled rotation"]
    assert len(builtin) == 1 and builtin[0].subject == "rotator"
    vault.revoke(builtin[0].id)  # an admin may switch scheduled rotation off
    run = vault.rotate_due()
    assert run.failed and vault.get_metadata(secret_id=sid).current_version == 1
    denied = vault.get_audit_log(secret_id=sid, operation="rotate", outcome="denied")
    assert denied and denied[0]["principal"] == SCHEDULER_PRINCIPAL
    assert vault.rotate_due().results == []  # pushed back, not retried in a tight loop


def test_failed_scheduled_rotation_with_registered_hooks_is_retried_later(vault):
    attempts = []

    def test_hook(value):
        attempts.append(value)
        return len(attempts) > 1  # the target system refuses the first new value

    vault.register_generator("flaky", lambda: f"value-{len(attempts)}", test=test_hook)
    sid = vault.store_secret("flaky.secret", "v1", rotation_interval_days=1, generator="flaky")
    _later(vault)
    run = vault.rotate_due()
    assert len(run.failed) == 1 and vault.get_secret(secret_id=sid) == "v1"
    assert vault.rotate_due().results == []  # retried after rotation_retry_s, not now
    vault.clock = lambda: time.time_ns() // 1000 + LATER + vault.rotation_retry_s * 1_000_000 + 1
    run = vault.rotate_due()
    assert len(run.rotated) == 1 and vault.get_secret(secret_id=sid) == "value-1"


def test_background_thread_is_idempotent_and_rotates(vault):
    sid = vault.store_secret("bg", "old", rotation_interval_days=1)
    _later(vault)
    thread = start_scheduler(vault, interval_s=0.05)
    try:
        assert start_scheduler(vault, interval_s=0.05) is thread
        deadline = time.monotonic() + 30
        # the run is counted after rotate_due returns, so wait for both (not just the new version)
        while (vault.get_metadata(secret_id=sid).current_version == 1 or thread.runs == 0) \
                and time.monotonic() < deadline:
            time.sleep(0.02)
        assert vault.get_metadata(secret_id=sid).current_version == 2
        assert thread.last_error is None and thread.runs >= 1
    finally:
        assert stop_scheduler(vault)
    assert not thread.is_alive() and not stop_scheduler(vault)


# -- two processes, one database -------------------------------------------------------------------
WORKER = r"""
import json, sys, time
from pathlib import Path
from vault_core import open_vault
from vault_core.scheduler import run_due
folder, url, go, lease_s = sys.argv[1], sys.argv[2] or None, Path(sys.argv[3]), float(sys.argv[4])
vault = open_vault(folder, database_url=url, principal="owner")
vault.clock = lambda: time.time_ns() // 1000 + %d
vault.scheduler_lease_s = lease_s
while not go.exists():
    time.sleep(0.005)
rotated, runs = [], 0
deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    run = run_due(vault, limit=5)
    runs += 1
    rotated += [r.secret_id for r in run.rotated]
    if run.lease and not run.results:
        break
    time.sleep(0.001)
print(json.dumps({"rotated": rotated, "runs": runs}))
""" % LATER


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
@pytest.mark.parametrize("lease_s", [60.0, 0.000001], ids=["lease", "no-lease"])
def test_two_processes_rotate_each_due_secret_exactly_once(tmp_path, request, backend, lease_s):
    """With a working lease, and with a lease that expires at once (so both work together):
    the in-transaction re-check alone still makes every rotation happen once."""
    url = request.getfixturevalue("pg_url") if backend == "postgres" else ""
    folder = tmp_path / "vault"
    vault = open_vault(folder, database_url=url or None, principal="owner")
    ids = [vault.store_secret(f"svc.{i:02d}", f"old-{i}", rotation_interval_days=1) for i in range(50)]
    go = tmp_path / "go"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, str(folder), url, str(go), str(lease_s)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for _ in range(2)]
    time.sleep(1.0)  # let both import and open the vault before the start signal
    go.touch()
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-2000:] for o in outs]
    results = [json.loads(o[0]) for o in outs]
    per_process = Counter(sid for r in results for sid in r["rotated"])
    assert sorted(per_process) == sorted(ids) and set(per_process.values()) == {1}
    for sid in ids:
        rows = vault.get_audit_log(secret_id=sid, operation="rotate", outcome="allowed")
        assert len(rows) == 1 and rows[0]["principal"] == SCHEDULER_PRINCIPAL
        versions = vault.list_versions(secret_id=sid)
        assert [v.version for v in versions] == [2, 1]
        assert vault.get_secret(secret_id=sid, version=1).startswith("old-")
    assert vault.verify_audit_log().ok
    vault.storage.dispose()


def test_clock_saved_and_restored_around_a_jump(vault):
    """``saved = vault.clock; vault.clock = lambda: saved() + later; vault.clock = saved`` (the demo's idiom)."""
    saved = vault.clock
    vault.clock = lambda: saved() + 10 * 86_400_000_000
    jumped = vault.clock()
    vault.clock = saved
    assert jumped - vault.clock() > 9 * 86_400_000_000
    vault.store_secret("after.jump", "v")  # every service reads the restored clock
    assert vault.get_metadata("after.jump").created_at.timestamp() * 1e6 <= vault.clock()
