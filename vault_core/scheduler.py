"""The rotation scheduler: a database lease, a background thread, and a drain-once helper for cron.

However many processes or replicas run it, each due rotation happens once:
the lease (a ``leases`` row with an expiry, taken by a conditional UPDATE or
an INSERT that does nothing on conflict) lets one process work at a time,
and each rotation re-checks ``next_rotation_at <= now`` inside its own
transaction, so a process whose lease ran out mid-batch still cannot rotate
a secret a second time.

    from vault_core.scheduler import start_scheduler
    start_scheduler(vault, interval_s=60)      # idempotent: one thread per vault per process
"""

from __future__ import annotations

import os
import secrets
import socket
import threading
import time
from typing import TYPE_CHECKING, Any

from .rotation import SCHEDULER_PRINCIPAL, RotationRun
from .storage import repos

if TYPE_CHECKING:
    from .vault import Vault

DEFAULT_LEASE_S = 60.0


def holder_id(vault: Any) -> str:
    """This vault object's identity as a lease holder (host, pid, random)."""
    return vault.__dict__.setdefault(
        "_lease_holder", f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(4)}")


class LeaseKeeper:
    """Hold a named lease for a block: ``held`` tells whether we won; ``renew()`` extends it."""

    def __init__(self, vault: Any, name: str, ttl_s: float | None = None):
        self.vault, self.name = vault, name
        self.ttl_s = ttl_s or getattr(vault, "scheduler_lease_s", DEFAULT_LEASE_S)
        self.holder = holder_id(vault)
        self.held = False
        self._renewed = 0.0

    def _take(self) -> bool:
        with self.vault.storage.transaction() as tx:
            self.held = repos.leases.acquire_lease(tx, self.name, self.holder, self.vault.clock(),
                                                   int(self.ttl_s * 1e6))
        self._renewed = time.monotonic()
        return self.held

    def renew(self) -> bool:
        """Extend the lease once a third of it has passed; False if another process holds it now."""
        if self.held and time.monotonic() - self._renewed > self.ttl_s / 3:
            self._take()
        return self.held

    def __enter__(self) -> "LeaseKeeper":
        self._take()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.held:
            with self.vault.storage.transaction() as tx:
                repos.leases.release_lease(tx, self.name, self.holder)
            self.held = False


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


_threads: dict[int, SchedulerThread] = {}
_threads_lock = threading.Lock()


def start_scheduler(vault: "Vault", interval_s: float = 60.0, *, limit: int = 100) -> SchedulerThread:
    """Start the background scheduler for ``vault`` once per process; later calls return the same thread."""
    if not isinstance(interval_s, (int, float)) or isinstance(interval_s, bool) or interval_s <= 0:
        from .errors import ValidationError

        raise ValidationError("interval_s must be a positive number of seconds")
    with _threads_lock:
        thread = _threads.get(id(vault))
        if thread is not None and thread.is_alive() and thread.vault is vault:
            return thread
        thread = _threads[id(vault)] = SchedulerThread(vault, float(interval_s), limit)
        thread.start()
        return thread


def stop_scheduler(vault: "Vault", timeout: float | None = 10.0) -> bool:
    """Stop the scheduler thread of ``vault`` in this process; False if none ran."""
    with _threads_lock:
        thread = _threads.pop(id(vault), None)
    if thread is None:
        return False
    thread.stop(timeout)
    return True
