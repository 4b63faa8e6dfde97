"""The rotation scheduler: a background thread and a drain-once helper for cron, over ``Vault.rotate_due``.

It calls the vault's public API only. However many processes or replicas
run it, each due rotation happens once: ``rotate_due`` works under a
database lease (``service/lease.py``) so one process works at a time, and
each rotation re-checks ``next_rotation_at <= now`` inside its own
transaction, so a process whose lease ran out mid-batch still cannot
rotate a secret a second time.

    from vault_core.scheduler import start_scheduler
    start_scheduler(vault, interval_s=60)      # idempotent: one thread per vault per process
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

from .background import PerVault
from .rotation import SCHEDULER_PRINCIPAL, RotationRun

if TYPE_CHECKING:
    from .vault import Vault

def run_due(vault: "Vault", *, limit: int = 100, max_batches: int = 1000) -> RotationRun:
    """Rotate everything due now, batch after batch (the cron command's work), as ``system:scheduler``."""
    total = RotationRun()
    with vault.security_context(SCHEDULER_PRINCIPAL):
        for _ in range(max_batches):
            run = vault.rotate_due(limit=limit)
            total.lease = total.lease or run.lease
            total.results.extend(run.results)
            if not run.lease or len(run.results) < limit or not run.rotated:
                break
    return total


class SchedulerThread(threading.Thread):
    """Runs ``run_due`` every ``interval_s`` seconds until stopped; never raises out of its loop."""

    def __init__(self, vault: "Vault", interval_s: float, limit: int):
        super().__init__(name="vault-rotation-scheduler", daemon=True)
        self.vault, self.interval_s, self.limit = vault, interval_s, limit
        self.stopping = threading.Event()
        self.runs = 0
        self.last_run: dict[str, Any] | None = None
        self.last_error: str | None = None

    def run(self) -> None:
        while not self.stopping.is_set():
            self.tick()
            self.stopping.wait(self.interval_s)

    def tick(self) -> None:
        try:
            run = run_due(self.vault, limit=self.limit)
            self.last_run, self.last_error = {**run.summary(), "at": time.time()}, None
        except Exception as exc:  # noqa: BLE001 - sealed, database down: try again next tick
            self.last_error = type(exc).__name__  # the type only: messages may carry connection details
        self.runs += 1

    def stop(self, timeout: float | None = 10.0) -> None:
        self.stopping.set()
        self.join(timeout)


_running = PerVault()


def start_scheduler(vault: "Vault", interval_s: float = 60.0, *, limit: int = 100) -> SchedulerThread:
    """Start the background scheduler for ``vault`` once per process; later calls return the same thread.

    Raises ``ValidationError`` for a bad interval.
    """
    return _running.start(vault, interval_s, lambda s: SchedulerThread(vault, s, limit), lambda t: t.vault is vault)


def stop_scheduler(vault: "Vault", timeout: float | None = 10.0) -> bool:
    """Stop the scheduler thread of ``vault`` in this process; False if none ran."""
    return _running.stop(vault, timeout)
