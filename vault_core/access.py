"""Access rules: compiled once per change, checked on every call. Deny by default.

A rule is (subject, environment or ``*``, name pattern, levels, allow/deny).
The subject is a user, a role, or ``any`` (matches a user or a role of that
name, as the seed's ``access_policy={principal: [...]}`` reads). An explicit
deny beats any allow; ADMIN implies READ, WRITE and ROTATE; a rule in one
environment never reaches another. The built-in role ``admin`` holds ADMIN
everywhere.
"""

from __future__ import annotations

import fnmatch
import re
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from .types import AccessLevel

ANY_ENV = "*"
ADMIN_ROLE = "admin"
_IMPLIED = {
    AccessLevel.ADMIN: frozenset(AccessLevel),
    AccessLevel.READ: frozenset({AccessLevel.READ}),
    AccessLevel.WRITE: frozenset({AccessLevel.WRITE}),
    AccessLevel.ROTATE: frozenset({AccessLevel.ROTATE}),
}


@dataclass(frozen=True)
class Rule:
    id: int
    subject_kind: str  # user, role, any
    subject: str
    environment: str  # an environment value or "*"
    pattern: str
    levels: frozenset[AccessLevel]
    effect: str  # allow, deny
    secret_id: str | None = None
    created_by: str = ""
    note: str = ""

    def matches(self, environment: str, name: str) -> bool:
        if self.environment != ANY_ENV and self.environment != environment:
            return False
        return _matcher(self.pattern)(name)

    def describe(self) -> str:
        levels = ",".join(sorted(level.value for level in self.levels))
        return (f"rule {self.id}: {self.effect} {levels} to {self.subject_kind} {self.subject} "
                f"on {self.environment}/{self.pattern}")

    def to_dict(self) -> dict:
        return {"id": self.id, "subject_kind": self.subject_kind, "subject": self.subject,
                "environment": self.environment, "pattern": self.pattern,
                "levels": sorted(level.value for level in self.levels), "effect": self.effect,
                "secret_id": self.secret_id, "created_by": self.created_by, "note": self.note}


BUILTIN_ADMIN = Rule(0, "role", ADMIN_ROLE, ANY_ENV, "*", frozenset({AccessLevel.ADMIN}), "allow",
                     note="built-in: the admin role holds ADMIN everywhere")

_MATCHERS: dict[str, object] = {}


def _matcher(pattern: str):
    m = _MATCHERS.get(pattern)
    if m is None:
        if "*" in pattern or "?" in pattern:
            m = re.compile(fnmatch.translate(pattern)).match
        else:
            m = pattern.__eq__
        if len(_MATCHERS) < 100_000:
            _MATCHERS[pattern] = m
    return m


@dataclass(frozen=True)
class Decision:
    """The outcome of a check, with the rules that decided it (for humans and audit)."""

    allowed: bool
    level: AccessLevel
    reason: str


class CompiledRules:
    """An immutable, thread-safe snapshot of the rules and principals at one version."""

    def __init__(self, version: int, rules: Iterable[Rule], roles_of: Mapping[str, Iterable[str]]):
        self.version = version
        self.rules = [BUILTIN_ADMIN, *rules]
        self.roles_of = {p: frozenset(r) for p, r in roles_of.items()}
        # Exact-name rules (every access_policy rule) are found by dict lookup;
        # only glob rules are scanned, so 10,000 per-secret rules cost nothing.
        self._exact: dict[tuple[str, str, str], list[Rule]] = {}
        self._globs: dict[tuple[str, str], list[Rule]] = {}
        for rule in self.rules:
            if "*" in rule.pattern or "?" in rule.pattern:
                self._globs.setdefault((rule.subject_kind, rule.subject), []).append(rule)
            else:
                self._exact.setdefault((rule.subject_kind, rule.subject, rule.pattern), []).append(rule)
        self._cache: OrderedDict[tuple, tuple] = OrderedDict()
        self._lock = threading.Lock()

    def roles(self, principal: str, extra: Iterable[str] = ()) -> frozenset[str]:
        """Stored roles of a principal plus the roles its context claims."""
        return self.roles_of.get(principal, frozenset()) | frozenset(extra)

    def _subjects(self, principal: str, roles: frozenset[str]) -> list[tuple[str, str]]:
        keys = [("user", principal), ("any", principal)]
        for role in roles:
            keys += [("role", role), ("any", role)]
        return keys

    def _candidates(self, principal: str, roles: frozenset[str], name: str | None = None) -> list[Rule]:
        """Rules of the principal and its roles: globs, plus exact rules for ``name`` (all when None)."""
        out: list[Rule] = []
        for kind, subject in self._subjects(principal, roles):
            out += self._globs.get((kind, subject), ())
            if name is not None:
                out += self._exact.get((kind, subject, name), ())
        if name is None:
            keys = set(self._subjects(principal, roles))
            out += [r for (k, s_, _p), rules in self._exact.items() if (k, s_) in keys for r in rules]
        return out

    def evaluate(self, principal: str, roles: frozenset[str], environment: str, name: str) -> tuple:
        """(granted levels, rule per granted level, denied levels, deny rule per level)."""
        key = (principal, roles, environment, name)
        with self._lock:
            hit = self._cache.get(key)
        if hit is not None:
            return hit
        allow: dict[AccessLevel, Rule] = {}
        deny: dict[AccessLevel, Rule] = {}
        for rule in self._candidates(principal, roles, name):
            if not rule.matches(environment, name):
                continue
            if rule.effect == "deny":
                for level in rule.levels:
                    deny.setdefault(level, rule)
            else:
                for level in rule.levels:
                    for implied in _IMPLIED[level]:
                        allow.setdefault(implied, rule)
        granted = frozenset(allow) - frozenset(deny)
        result = (granted, allow, frozenset(deny), deny)
        with self._lock:
            self._cache[key] = result
            if len(self._cache) > 50_000:
                self._cache.popitem(last=False)
        return result

    def check(self, principal: str, roles: frozenset[str], environment: str, name: str,
              level: AccessLevel) -> Decision:
        _granted, allow, _denied, deny = self.evaluate(principal, roles, environment, name)
        if level in deny:
            return Decision(False, level, f"denied by {deny[level].describe()}")
        if level in allow:
            return Decision(True, level, f"allowed by {allow[level].describe()}")
        return Decision(False, level, f"no rule grants {level.value} on {environment}/{name}")

    def has_any(self, principal: str, roles: frozenset[str], environment: str, name: str) -> bool:
        return bool(self.evaluate(principal, roles, environment, name)[0])

    def covers(self, principal: str, roles: frozenset[str], environment: str, pattern: str) -> bool:
        """True when the principal holds ADMIN on every name the pattern can match.

        A grant is allowed only inside the granter's own ADMIN scope: some
        ADMIN allow rule whose environment and pattern include the new one,
        and no deny of ADMIN that could touch it.
        """
        rules = self._candidates(principal, roles)
        for rule in rules:
            if rule.effect == "deny" and AccessLevel.ADMIN in rule.levels and _overlaps(rule, environment, pattern):
                return False
        for rule in rules:
            if rule.effect != "allow" or AccessLevel.ADMIN not in rule.levels:
                continue
            if rule.environment not in (ANY_ENV, environment):
                continue
            if rule.pattern == "*" or rule.pattern == pattern or (
                    "*" in rule.pattern and fnmatch.fnmatchcase(pattern, rule.pattern)):
                return True
        return False


def _overlaps(rule: Rule, environment: str, pattern: str) -> bool:
    if environment != ANY_ENV and rule.environment not in (ANY_ENV, environment):
        return False
    return (rule.pattern == "*" or pattern == "*" or fnmatch.fnmatchcase(pattern, rule.pattern)
            or fnmatch.fnmatchcase(rule.pattern, pattern))


def parse_levels(levels: Iterable) -> frozenset[AccessLevel]:
    from .errors import ValidationError

    if isinstance(levels, (str, AccessLevel)):
        levels = [levels]
    try:
        out = frozenset(AccessLevel.parse(level) for level in levels)
    except TypeError:
        raise ValidationError("levels must be a list of AccessLevel values") from None
    if not out:
        raise ValidationError("a rule needs at least one level")
    return out


def rule_from_row(row: Mapping) -> Rule:
    return Rule(id=row["id"], subject_kind=row["subject_kind"], subject=row["subject"],
                environment=row["environment"], pattern=row["pattern"],
                levels=frozenset(AccessLevel(v) for v in row["levels"].split(",") if v),
                effect=row["effect"], secret_id=row["secret_id"], created_by=row["created_by"],
                note=row["note"])
