"""One background thread of a kind per vault in this process: the rotation scheduler, the audit deliverer."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from .errors import ValidationError


class PerVault:
    """The running thread of each vault (by identity), started once and stopped on request."""

    def __init__(self) -> None:
        self._threads: dict[int, Any] = {}
        self._lock = threading.Lock()

    def start(self, vault: Any, interval_s: Any, make: Callable[[float], Any], same: Callable[[Any], bool]) -> Any:
        """The vault's live thread if ``same(thread)``, else a new ``make(interval_s)``, started.

        Raises ``ValidationError`` for an interval that is not a positive number of seconds.
        """
        if not isinstance(interval_s, (int, float)) or isinstance(interval_s, bool) or interval_s <= 0:
            raise ValidationError("interval_s must be a positive number of seconds")
        with self._lock:
            thread = self._threads.get(id(vault))
            if thread is not None and thread.is_alive() and same(thread):
                return thread
            thread = self._threads[id(vault)] = make(float(interval_s))
            thread.start()
            return thread

    def stop(self, vault: Any, timeout: float | None) -> bool:
        """Stop the vault's thread; False if none ran. Raises nothing."""
        with self._lock:
            thread = self._threads.pop(id(vault), None)
        if thread is None:
            return False
        thread.stop(timeout)
        return True
