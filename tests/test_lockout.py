"""Guessing against the login throttle (issue 17): reserve-then-check, per-source locks, account cap.

Threads and processes, on SQLite and PostgreSQL. bcrypt is counted: the throttle's promise is about how
many guesses ever reach it, not about timing.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import bcrypt
import pytest

from vault_core import AccessDenied, lockout, open_vault
from vault_core.errors import AccountLocked, LoginFailed

PW = "plum kite saddle 77"
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def guarded(any_vault):
    any_vault.bcrypt_rounds = 4
    any_vault.add_user("alice", PW, ["operator"], must_change_password=False)
    return any_vault


@pytest.fixture
def bcrypt_calls(monkeypatch):
    calls, lock, real = [], threading.Lock(), bcrypt.checkpw

    def counting(password, hashed):
        with lock:
            calls.append(password)
        return real(password, hashed)

    monkeypatch.setattr(bcrypt, "checkpw", counting)
    return calls


def test_parallel_guesses_then_the_right_password_are_refused_in_threads(guarded, bcrypt_calls):
    outcomes, lock = [], threading.Lock()
    barrier = threading.Barrier(23)

    def guess(i):
        barrier.wait()
        try:
            guarded.verify_login("alice", f"wrong guess {i:02d}", "198.51.100.20")
            result = "ok"
        except AccountLocked:
            result = "locked"
        except LoginFailed:
            result = "failed"
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=guess, args=(i,)) for i in range(23)]
    for t in threads:
        t.start()
    time.sleep(0.05)
    deadline = time.monotonic() + 30
    while _attempts(guarded, "198.51.100.20") < 2 and time.monotonic() < deadline:
        time.sleep(0.005)  # a slow start (PostgreSQL connects 23 clients): wait until two guesses are in
    with pytest.raises(AccountLocked, match="try again after"):
        guarded.verify_login("alice", PW, "198.51.100.20")  # started 50 ms later: refused, never checked
    for t in threads:
        t.join()
    assert outcomes.count("ok") == 0 and len(outcomes) == 23
    assert outcomes.count("failed") == len([c for c in bcrypt_calls if c != PW.encode()])
    assert len(bcrypt_calls) <= lockout.SOURCE_LIMIT  # at most the limit ever reach bcrypt
    assert PW.encode() not in bcrypt_calls
    denied = guarded.get_audit_log(operation="login", outcome="denied", limit=100)
    assert len(denied) == 24 and all(PW not in str(r) and "wrong guess" not in str(r) for r in denied)


def test_parallel_guesses_from_processes_reach_bcrypt_at_most_the_limit(guarded, tmp_path):
    url = "" if guarded.storage.backend == "sqlite" else guarded.storage.url
    go = tmp_path / "go"
    procs = [subprocess.Popen([sys.executable, "-m", "tests.workers.login_guesser", str(guarded.vault_dir), url,
                               str(go), "alice", "203.0.113.50", *[f"proc {p} guess {i}" for i in range(6)]],
                              cwd=ROOT, stdout=subprocess.PIPE, text=True) for p in range(4)]
    time.sleep(3)  # every worker has opened the vault and waits for the go file
    go.touch()
    deadline = time.monotonic() + 30
    while _attempts(guarded, "203.0.113.50") < 2 and time.monotonic() < deadline:
        time.sleep(0.005)  # the right password goes in as soon as two guesses are in (one typo is free)
    with pytest.raises(AccountLocked):
        guarded.verify_login("alice", PW, "203.0.113.50")
    results = [json.loads(p.communicate(timeout=120)[0].strip().splitlines()[-1]) for p in procs]
    assert sum(r["checks"] for r in results) <= lockout.SOURCE_LIMIT
    outcomes = [o for r in results for o in r["outcomes"]]
    assert len(outcomes) == 24 and "ok" not in outcomes and outcomes.count("locked") >= 24 - lockout.SOURCE_LIMIT


def _attempts(vault, ip: str) -> int:
    from vault_core.storage import repos

    with vault.storage.transaction(write=False) as tx:
        return repos.users.attempt_counts(tx, "alice", lockout.source_of(ip), source_since=0, account_since=0)[0]


class Clock:
    def __init__(self):
        self.now = 1_900_000_000_000_000

    def __call__(self):
        return self.now


def test_progressive_delay_then_lock_per_source_not_for_the_owner_elsewhere(guarded):
    guarded.clock = clock = Clock()
    with pytest.raises(LoginFailed):
        guarded.verify_login("alice", "typo one here", "192.0.2.1")
    with pytest.raises(LoginFailed):  # a single typo costs nothing: the next try is checked at once
        guarded.verify_login("alice", "typo two here", "192.0.2.1")
    with pytest.raises(AccountLocked, match="too soon"):
        guarded.verify_login("alice", PW, "192.0.2.1")  # 1 s after the second failure
    for wait in (1, 2, 4):
        clock.now += wait * 1_000_000
        with pytest.raises(LoginFailed):
            guarded.verify_login("alice", "still guessing", "192.0.2.1")
    clock.now += 60_000_000
    with pytest.raises(AccountLocked, match="5 failed logins from this address"):
        guarded.verify_login("alice", PW, "192.0.2.1")
    assert guarded.check_session(guarded.verify_login("alice", PW, "192.0.2.99")) is not None  # the owner


def test_ipv6_sources_are_counted_by_their_64(guarded):
    assert lockout.source_of("2001:db8:1:2::5") == lockout.source_of("2001:db8:1:2:ffff::9") == "2001:db8:1:2::/64"
    assert lockout.source_of("::ffff:192.0.2.7") == "192.0.2.7" and lockout.source_of(None) == "local"
    guarded.clock = clock = Clock()
    for i in range(5):
        with pytest.raises(LoginFailed):
            guarded.verify_login("alice", f"guess {i} here", f"2001:db8:1:2::{i + 1:x}")
        clock.now += 10_000_000
    with pytest.raises(AccountLocked):
        guarded.verify_login("alice", PW, "2001:db8:1:2::abcd")
    guarded.verify_login("alice", PW, "2001:db8:1:3::1")


def test_a_hundred_failures_from_many_sources_lock_the_account_until_an_admin_unlocks(guarded):
    guarded.clock = clock = Clock()
    for i in range(lockout.ACCOUNT_LIMIT):
        with pytest.raises(LoginFailed):
            guarded.verify_login("alice", "distributed guess", f"10.1.{i // 4}.{i % 4 + 1}")
        clock.now += 1_000_000
    with pytest.raises(AccountLocked, match="100 failed logins in 24 hours"):
        guarded.verify_login("alice", PW, "10.200.0.1")
    with pytest.raises(AccountLocked, match="the account is locked"):
        guarded.verify_login("alice", PW, "10.200.0.2")
    guarded.unlock_user("alice")
    assert guarded.check_session(guarded.verify_login("alice", PW, "10.200.0.2")) is not None


def test_current_password_checks_count_toward_the_same_throttle(guarded, bcrypt_calls):
    guarded.clock = clock = Clock()
    with guarded.security_context("alice", "192.0.2.44", roles=["operator"]):
        for i in range(lockout.SOURCE_LIMIT):
            with pytest.raises(AccessDenied, match="current password is wrong"):
                guarded.set_password("alice", "brand new passphrase 9", current_password=f"guess {i} here")
            clock.now += 10_000_000
        bcrypt_calls.clear()
        for i in range(7):
            with pytest.raises(AccountLocked):
                guarded.set_password("alice", "brand new passphrase 9", current_password=f"more {i} guesses")
        with pytest.raises(AccountLocked):  # the right one, too, once the source is locked
            guarded.set_password("alice", "brand new passphrase 9", current_password=PW)
    assert bcrypt_calls == []
    with pytest.raises(AccountLocked):
        guarded.verify_login("alice", PW, "192.0.2.44")  # logins from that source share the counter
    rows = guarded.get_audit_log(operation="password_set", outcome="denied", limit=50)
    assert len(rows) == lockout.SOURCE_LIMIT + 8 and all("guess" not in r["reason"] for r in rows)


def test_a_replica_sees_the_lock_of_another(guarded):
    guarded.clock = clock = Clock()
    url = None if guarded.storage.backend == "sqlite" else guarded.storage.url
    replica = open_vault(guarded.vault_dir, database_url=url, strict=True, create=False)
    replica.clock = clock
    try:
        for i in range(lockout.SOURCE_LIMIT):
            with pytest.raises(LoginFailed):
                (replica if i % 2 else guarded).verify_login("alice", f"guess {i} here", "192.0.2.80")
            clock.now += 10_000_000
        with pytest.raises(AccountLocked):
            replica.verify_login("alice", PW, "192.0.2.80")
    finally:
        replica.storage.dispose()


def test_an_admin_unlocks_a_throttled_account_from_the_cli(tmp_path):
    from tests.test_cli import err, vc

    v = open_vault(tmp_path / "v", principal="ops")
    v.bcrypt_rounds = 4
    v.add_user("alice", PW, ["operator"], must_change_password=False)
    for i in range(lockout.ACCOUNT_LIMIT):  # 100 sources, one failure each: the account itself locks
        with pytest.raises(LoginFailed):
            v.verify_login("alice", "a wrong guess here", f"10.8.{i // 250}.{i % 250}")
    with pytest.raises(AccountLocked, match="try again after"):
        v.verify_login("alice", PW, "10.9.9.9")
    result = vc(tmp_path / "v", "users", "unlock", "alice")
    assert result.returncode == 0, err(result)
    assert v.check_session(v.verify_login("alice", PW, "10.9.9.9")) is not None
    v.storage.dispose()
