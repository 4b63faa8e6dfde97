"""Fail closed when a required audit device cannot keep up (HashiCorp Vault's rule: no audit, no request).

A required device whose oldest undelivered row is older than its ``max_lag_s`` makes every operation
fail with ``AuditFailure`` until the device has caught up again. The state lives in the database (each
device's cursor), so every replica refuses, whichever one delivers. The runner calls ``check`` once per
operation; the answer is cached for ``ttl_s`` seconds (one small query per process per interval).
Managing devices, reading health and reading the audit log stay open, so an admin can see and fix the outage.
"""

from __future__ import annotations

import threading
import time
import weakref
from typing import Any

from ..errors import AuditFailure
from ..storage import Storage, repos
from ..types import US, Clock

EXEMPT = frozenset({"health", "audit_query", "audit_device_add", "audit_device_remove", "audit_device_list",
                    "audit_device_test"})


class AuditGate:
    """The fail-closed check of one vault (see the module docstring)."""

    def __init__(self, storage: Storage, clock: Clock, ttl_s: float = 0.5):
        self._storage, self._clock, self.ttl_s = storage, clock, ttl_s
        self._lock = threading.Lock()
        self._cached: tuple[float, str | None] | None = None

    def refusal(self) -> str | None:
        """Why operations are refused now, or None. Raises ``StorageError`` / SQLAlchemy errors."""
        now = self._clock()
        with self._storage.transaction(write=False, durable=False) as tx:
            devices = repos.devices.required_cursors(tx)
            if not devices:
                return None
            head = repos.state.get_state(tx)["audit_seq"]
            for d in devices:
                if d["delivered_seq"] >= head:
                    continue
                oldest = repos.audit.rows_after(tx, d["delivered_seq"], 1)
                if oldest and now - oldest[0]["ts"] > d["max_lag_s"] * US:
                    behind = (now - oldest[0]["ts"]) // US
                    return (f"the required audit device {d['name']!r} has not accepted audit rows for {behind} s "
                            f"(bound {d['max_lag_s']} s, {head - d['delivered_seq']} rows waiting): operations "
                            "are refused until it recovers")
        return None

    def check(self, operation: str) -> None:
        """Raise ``AuditFailure`` while a required device is beyond its bound (``EXEMPT`` operations pass)."""
        if operation in EXEMPT:
            return
        cached = self._cached
        if cached is None or time.monotonic() - cached[0] >= self.ttl_s:
            with self._lock:
                try:
                    reason = self.refusal()
                except Exception:  # noqa: BLE001 - an unreachable database fails the operation itself
                    reason = None
                cached = self._cached = (time.monotonic(), reason)
        if cached[1] is not None:
            raise AuditFailure(cached[1])

    def forget(self) -> None:
        """Drop the cached answer (after a delivery or a device change in this process)."""
        self._cached = None


_gates: "weakref.WeakKeyDictionary[Any, AuditGate]" = weakref.WeakKeyDictionary()


def register(runner: Any, gate: AuditGate) -> None:
    """Make ``gate`` the check of ``runner`` (the vault wires it when it builds its services)."""
    _gates[runner] = gate


def check(runner: Any, operation: str) -> None:
    """The runner's one call: raise ``AuditFailure`` if ``runner``'s vault must refuse ``operation`` now."""
    gate = _gates.get(runner)
    if gate is not None:
        gate.check(operation)
