"""Concurrency: several processes × threads on one database (design statement 18).

No StorageError (or any error) reaches a caller, no lost update (each counter's final value equals
its acknowledged cas increments), conflicts surface as ``Conflict`` and are retried, chain verifies.
"""

from __future__ import annotations

import json
import subprocess
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from .common import check_consistency, open_test_vault, worker_cmd, worker_env
from .load_worker import COUNTERS, ENV, ROTATED


@dataclass
class LoadFigures:
    backend: str
    processes: int
    threads: int
    operations: int = 0
    increments: int = 0
    conflicts: int = 0
    rotations: int = 0
    rule_changes: int = 0
    reads: int = 0
    lost_updates: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors and not self.problems and self.lost_updates == 0


def run_load(workdir: Path, ops_per_thread: int, url: str | None = None, processes: int = 4,
             threads: int = 4) -> LoadFigures:
    vault_dir = workdir / "vault"
    vault = open_test_vault(vault_dir, url)
    figures = LoadFigures("postgresql" if url else "sqlite", processes, threads)
    try:
        for name in COUNTERS:
            vault.store_secret(name, "0", environment=ENV, max_versions=1000)
        for name in ROTATED:
            vault.store_secret(name, "seed-value", environment=ENV, secret_type="api_key")
        procs = [subprocess.Popen(worker_cmd("load_worker.py", str(vault_dir), url or "-", str(w), str(threads),
                                             str(ops_per_thread)),
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=worker_env())
                 for w in range(processes)]
        total: Counter = Counter()
        for proc in procs:
            stdout, stderr = proc.communicate(timeout=600)
            if proc.returncode != 0:
                figures.problems.append(f"worker exited {proc.returncode}: {stderr[-6000:]}")
                continue
            total.update(json.loads(stdout.strip().splitlines()[-1]))
        figures.errors = {k[len("errors:"):]: v for k, v in total.items() if k.startswith("errors:")}
        figures.conflicts, figures.rotations = total["conflicts"], total["rotations"]
        figures.rule_changes, figures.reads = total["rule_changes"], total["reads"]
        figures.operations = processes * threads * ops_per_thread
        for name in COUNTERS:
            acked = total["inc:" + name]
            figures.increments += acked
            final = int(vault.get_secret(name, ENV))
            if final != acked:
                figures.lost_updates += abs(acked - final)
                figures.problems.append(f"{name}: value {final} but {acked} acknowledged increments")
        report = check_consistency(vault)
        if not report.ok:
            figures.problems.append(f"consistency: {report.integrity} {report.chain_ok} {report.problems[:3]}")
    finally:
        vault.storage.dispose()
    return figures
