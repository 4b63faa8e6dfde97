"""The compiled access rules, shared by every operation and recompiled only after a change."""

from __future__ import annotations

import json
import threading

from ..access import CompiledRules, rule_from_row
from ..storage import repos
from ..storage.tx import Tx


class RulesCache:
    """The rules snapshot at the newest ``rules_version`` seen (by any process sharing the database).

    No lock is held while the rules are read: the reading transaction may wait on a database lock
    (PostgreSQL: a row check that rescans locks the state row) held by another thread of this process
    that is itself about to ask for the rules. Two threads may then compile the same version; the
    second one's snapshot simply replaces the first.
    """

    def __init__(self) -> None:
        self._compiled: CompiledRules | None = None
        self._generation = 0  # moved by ``forget``: a compile begun before it is not published
        self._lock = threading.Lock()

    def at(self, tx: Tx, version: int) -> CompiledRules:
        """The compiled rules at ``version``, read in ``tx`` when this process has not compiled them yet.

        Raises ``IntegrityError`` when a rule or principal row fails its check, ``StorageError`` /
        SQLAlchemy errors when the database fails."""
        compiled = self._compiled
        if compiled is not None and compiled.version == version:
            return compiled
        generation = self._generation
        rules = [rule_from_row(r) for r in repos.rules.list_rules(tx)]
        roles = {p["name"]: json.loads(p["roles"]) for p in repos.principals.list_principals(tx)
                 if not p["disabled"]}
        compiled = CompiledRules(version, rules, roles)
        with self._lock:
            if self._generation == generation:
                self._compiled = compiled
        return compiled

    def forget(self) -> None:
        """Drop the snapshot (after a restore: the same version number may now hold other rules)."""
        with self._lock:
            self._generation += 1
            self._compiled = None
