"""The rules cache holds no lock while it reads: a thread holding the database lock may be next to ask.

CI found the deadlock on PostgreSQL (4 processes x 4 threads, ``test_processes_and_threads_on_one_
postgres_database`` hung for 600 s): thread 1 held the state row (``FOR UPDATE``) and waited for the
cache's lock; thread 2 held that lock while its row check's rescan waited for the state row.
"""

from __future__ import annotations

import threading

from vault_core import open_vault
from vault_core.service.rules import RulesCache
from vault_core.storage import repos


def _blocking_first_read(monkeypatch):
    """``list_rules`` whose first call waits until released (the others pass straight through)."""
    real, entered, release, calls = repos.rules.list_rules, threading.Event(), threading.Event(), []

    def list_rules(tx):
        calls.append(1)
        if len(calls) == 1:
            entered.set()
            assert release.wait(10)
        return real(tx)

    monkeypatch.setattr(repos.rules, "list_rules", list_rules)
    return entered, release


def test_a_second_reader_is_not_held_behind_a_compile_in_progress(tmp_path, monkeypatch):
    vault = open_vault(tmp_path / "v", principal="owner")
    vault.grant("svc", ["read"], environment="development", pattern="app/*")
    cache, storage = RulesCache(), vault.storage
    entered, release = _blocking_first_read(monkeypatch)

    def first():
        with storage.transaction(write=False, durable=False) as tx:
            cache.at(tx, 7)

    t1 = threading.Thread(target=first)
    t1.start()
    assert entered.wait(10)
    got = []
    t2 = threading.Thread(target=lambda: got.append(_compile(storage, cache, 7)))
    t2.start()
    t2.join(5)
    stuck = t2.is_alive()
    release.set()
    t1.join(10)
    t2.join(10)
    assert not stuck, "the second reader waited for the first one's compile"
    assert got[0].version == 7 and any(r.subject == "svc" for r in got[0].rules)


def test_a_compile_begun_before_forget_is_not_published(tmp_path, monkeypatch):
    vault = open_vault(tmp_path / "v", principal="owner")
    cache, storage = RulesCache(), vault.storage
    entered, release = _blocking_first_read(monkeypatch)
    t1 = threading.Thread(target=_compile, args=(storage, cache, 3))
    t1.start()
    assert entered.wait(10)
    cache.forget()  # a restore landed meanwhile
    release.set()
    t1.join(10)
    assert cache._compiled is None


def _compile(storage, cache, version):
    with storage.transaction(write=False, durable=False) as tx:
        return cache.at(tx, version)
