"""Nothing lost: racing check-and-set writers, and kill -9 during writes."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from vault_core import Conflict, open_vault

WORKERS = Path(__file__).parent / "workers"
ROOT = Path(__file__).parent.parent


def _env():
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def test_racing_cas_threads_exactly_one_wins(any_vault):
    any_vault.store_secret("race", "v1")
    barrier = threading.Barrier(8)
    results = []

    def racer(i):
        barrier.wait()
        try:
            any_vault.update_secret("race", value=f"t{i}", cas=1)
            results.append("won")
        except Conflict:
            results.append("conflict")

    threads = [threading.Thread(target=racer, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["conflict"] * 7 + ["won"]
    assert any_vault.get_metadata("race").current_version == 2
    assert len(any_vault.get_audit_log(name="race", operation="update", outcome="failed")) == 7


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_racing_cas_processes_exactly_one_wins(tmp_path, request, backend):
    url = request.getfixturevalue("pg_url") if backend == "postgres" else ""
    v = open_vault(tmp_path / "v", database_url=url or None, principal="owner")
    v.store_secret("race", "v1")
    go = tmp_path / "go"
    procs = [subprocess.Popen([sys.executable, str(WORKERS / "cas_racer.py"), str(tmp_path / "v"), url, str(go)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
             for _ in range(4)]
    time.sleep(2.0)  # let them all import and open the vault
    go.touch()
    outs = [p.communicate(timeout=120) for p in procs]
    results = sorted(o[0].strip() for o in outs)
    assert results == ["conflict", "conflict", "conflict", "won"], outs
    assert v.get_metadata("race").current_version == 2
    assert v.verify_audit_log().ok


def test_kill_9_loop_loses_no_acknowledged_write(tmp_path):
    """A writer is SIGKILLed at random points 20 times; every acknowledged write survives."""
    folder = tmp_path / "v"
    open_vault(folder, principal="owner").storage.dispose()
    acked: dict[str, str] = {}
    rng = random.Random(1234)
    start = 0
    for _round in range(20):
        proc = subprocess.Popen([sys.executable, str(WORKERS / "acked_writer.py"), str(folder), str(start)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
        # wait for the first acknowledgement, then kill at a random point
        first = proc.stdout.readline()
        assert first, proc.stderr.read()
        time.sleep(rng.uniform(0.0, 0.15))
        os.kill(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        for line in [first, *out.splitlines()]:
            if line.strip():
                name, value = line.split()
                acked[name] = value
        start += 10_000
        vault = open_vault(folder, principal="owner")
        assert vault.storage.integrity_check() == "ok"
        for name, value in acked.items():
            # the stored value is the acknowledged one, or a later write that committed
            # before the kill but was never acknowledged; never an older one
            stored = vault.get_secret(name)
            assert stored is not None and int(stored.split("-")[1]) >= int(value.split("-")[1]), name
        report = vault.verify_audit_log()
        assert report.ok, report
        vault.storage.dispose()
    assert len(acked) > 20
