"""The compiled access rules, shared by every operation and recompiled only after a change."""

from __future__ import annotations

import json
import threading

from ..access import CompiledRules, rule_from_row
from ..storage import repos
from ..storage.tx import Tx


class RulesCache:
    """The rules snapshot at the newest ``rules_version`` seen (by any process sharing the database)."""

    def __init__(self) -> None:
        self._compiled: CompiledRules | None = None
        self._lock = threading.Lock()

    def at(self, tx: Tx, version: int) -> CompiledRules:
        """The compiled rules at ``version``, read in ``tx`` when this process has not compiled them yet."""
        compiled = self._compiled
        if compiled is not None and compiled.version == version:
            return compiled
        with self._lock:
            compiled = self._compiled
            if compiled is None or compiled.version != version:
                rules = [rule_from_row(r) for r in repos.rules.list_rules(tx)]
                roles = {p["name"]: json.loads(p["roles"]) for p in repos.principals.list_principals(tx)
                         if not p["disabled"]}
                compiled = self._compiled = CompiledRules(version, rules, roles)
        return compiled

    def forget(self) -> None:
        """Drop the snapshot (after a restore: the same version number may now hold other rules)."""
        with self._lock:
            self._compiled = None
