"""A named database lease held for a block: one holder at a time across processes and replicas."""

from __future__ import annotations

import os
import secrets
import socket
import time

from ..storage import Storage, repos
from ..types import US, Clock


def new_holder_id() -> str:
    """A lease holder identity: host, pid and a random part (one per vault object)."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(4)}"


class Lease:
    """Hold lease ``name`` for a block: ``held`` tells whether we won; ``renew()`` extends it."""

    def __init__(self, storage: Storage, clock: Clock, name: str, holder: str, ttl_s: float):
        self._storage, self._clock = storage, clock
        self.name, self.holder, self.ttl_s = name, holder, ttl_s
        self.held = False
        self._renewed = 0.0

    def _take(self) -> bool:
        with self._storage.transaction() as tx:
            self.held = repos.leases.acquire_lease(tx, self.name, self.holder, self._clock(), int(self.ttl_s * US))
        self._renewed = time.monotonic()
        return self.held

    def renew(self) -> bool:
        """Extend the lease once a third of it has passed; False if another process holds it now.

        Raises ``StorageError``.
        """
        if self.held and time.monotonic() - self._renewed > self.ttl_s / 3:
            self._take()
        return self.held

    def __enter__(self) -> "Lease":
        self._take()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.held:
            with self._storage.transaction() as tx:
                repos.leases.release_lease(tx, self.name, self.holder)
            self.held = False
