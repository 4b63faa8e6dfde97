"""The one audited attempt: validate → check access → act → write its audit row, in one transaction.

A denial or a failure rolls the change back and records the attempt in a
transaction of its own; if the audit row cannot be written, the operation
fails and returns nothing. Every operation of every service runs here.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy.exc import OperationalError, SQLAlchemyError

from .. import metrics as _metrics
from ..access import CompiledRules, rule_from_row
from ..context import SecurityContext, current_context
from ..errors import AccessDenied, AuditFailure, StorageError, ValidationError, VaultError
from ..storage import Storage, repos
from ..storage.tx import Tx
from ..types import US_PER_DAY, AccessLevel, Clock, Environment, default_environment
from ..validate import canonical_name, printable
from . import audit_gate
from .group_commit import GroupCommit, audit_row
from .keys import KeyHolder
from .rules import RulesCache

_UNFETCHED: Any = object()
NO_NAME: Any = object()  # "this operation names no secret" (unlike name=None, which is bad input)


class NotAudited(Exception):
    """Raised inside an attempt that turned out to be no operation at all (e.g. a rotation another process did).

    The transaction rolls back, nothing is recorded, and it propagates to the caller.
    """


def environment_value(environment: Any) -> str:
    """The canonical text of an environment (``VAULT_ENVIRONMENT`` when None). Raises ``ValidationError``."""
    return (default_environment() if environment is None else Environment.parse(environment)).value


class Attempt:
    """One audited operation in progress (see ``Runner.attempt``)."""

    __slots__ = ("tx", "ctx", "operation", "environment", "name", "secret_id", "version", "reason", "outcome",
                 "rules", "roles", "state", "value_hash", "bootstrap", "current")

    def __init__(self, tx: Tx, ctx: SecurityContext, operation: str, state, rules: CompiledRules):
        self.tx, self.ctx, self.operation, self.state, self.rules = tx, ctx, operation, state, rules
        self.environment: str | None = None
        self.name: str | None = None
        self.secret_id: str | None = None
        self.version: int | None = None
        self.value_hash: str | None = None  # keyed HMAC of a value this attempt wrote
        self.reason = ""
        self.outcome = "allowed"  # "failed": the block commits its change (a clean-up) and records a failure
        self.roles = rules.roles(ctx.user_id, ctx.roles)
        self.bootstrap: Callable[[Attempt], bool] | None = None  # set by the runner on an embedded vault
        self.current: Any = _UNFETCHED  # read_current of (environment, name), when fetched with the state

    def current_row(self):
        """Metadata and current ciphertext of the secret (environment, name) (``repos.secrets.read_current``):
        a read's row, fetched with the vault state in the same statement when the runner could."""
        if self.current is not _UNFETCHED:
            return self.current
        return repos.secrets.read_current(self.tx, self.environment, self.name)

    def require(self, level: AccessLevel, environment: str | None = None, name: str | None = None) -> None:
        """Raise ``AccessDenied`` unless the caller holds ``level`` on (environment, name)."""
        env = environment or self.environment
        nm = name or self.name
        if env is None or nm is None:
            raise ValidationError("give a secret name (and environment) or a secret_id")
        decision = self.rules.check(self.ctx.user_id, self.roles, env, nm, level)
        if not decision.allowed and level in _BOOTSTRAP_LEVELS and self.bootstrap is not None \
                and self.bootstrap(self):
            decision = self.rules.check(self.ctx.user_id, self.roles, env, nm, level)
        if not decision.allowed:
            raise AccessDenied(f"{self.ctx.user_id} may not {level.value} {env}/{nm}: {decision.reason}")

    def require_role(self, *roles: str) -> None:
        """Raise ``AccessDenied`` unless the caller holds one of ``roles``."""
        if not (self.roles & set(roles)) and "admin" in roles and self.operation in _BOOTSTRAP_OPERATIONS \
                and self.bootstrap is not None:
            self.bootstrap(self)
        if not (self.roles & set(roles)):
            raise AccessDenied(f"{self.ctx.user_id} needs one of the roles: {', '.join(roles)}")

    def target(self, row) -> None:
        """Record which secret (and version) this attempt touched."""
        self.secret_id = row["id"]
        self.environment = row["environment"]
        self.name = row["name"]
        self.version = row.get("current_version") if hasattr(row, "get") else None


# An embedded vault's first writer becomes its administrator (see Runner.bootstrap): what counts as a write.
_BOOTSTRAP_LEVELS = frozenset({AccessLevel.WRITE, AccessLevel.ADMIN})
_BOOTSTRAP_OPERATIONS = frozenset({"rule_add", "roles_set", "user_add"})


class Caller:
    """Who is calling: the thread's security context, else the process identity (refused in strict mode)."""

    def __init__(self, process_identity: str, strict: bool):
        self.process_identity = process_identity
        self.strict = strict

    def current(self) -> SecurityContext:
        """The caller. Raises ``AccessDenied`` in strict mode when no context is set."""
        ctx = current_context()
        if ctx is not None:
            return ctx
        if self.strict:
            raise AccessDenied("this vault is in strict mode: every call needs a security context")
        return SecurityContext(user_id=self.process_identity, is_process=True)


class Runner:
    """Runs every operation as one audited attempt; the only writer of audit rows for operations."""

    def __init__(self, storage: Storage, keys: KeyHolder, rules: RulesCache, clock: Clock, caller: Caller):
        self.storage, self.keys, self.rules, self.clock, self.caller = storage, keys, rules, clock, caller
        # Reads' audit rows go through the group commit (None: each read commits its own row).
        self.group: GroupCommit | None = GroupCommit(storage, clock)

    @contextmanager
    def attempt(self, operation: str, *, name: Any = NO_NAME, environment: Any = None, durable: bool = True,
                audited: bool = True) -> Iterator[Attempt]:
        """Run one audited operation (see the module docstring).

        ``audited=False`` is for metadata-only reads (listing): they run in a
        read transaction and only a denial or failure is recorded. ``durable=False``
        with ``audited=True`` is a value read (its block must not write): while other reads are
        under way it runs in a read transaction and its audit row is committed by the group
        commit (``group_commit.py``) before this returns. Raises
        ``Sealed``, ``AccessDenied``, ``ValidationError``, ``StorageError``,
        ``AuditFailure`` and whatever the block raises (recorded first).
        """
        keys = self.keys.get()
        audit_gate.check(self, operation)  # fail closed while a required audit device is too far behind
        ctx = self.caller.current()
        env_text = name_text = None
        try:
            if environment is not None or name is not NO_NAME:
                env_text = environment_value(environment)
            if name is not NO_NAME:
                name_text = canonical_name(name)
        except ValidationError as exc:
            self.record(ctx, operation, "failed", str(exc), None,
                        printable(name, 300) if isinstance(name, str) else None)
            raise
        att: Attempt | None = None
        started, done = time.perf_counter(), False
        reading = audited and not durable and self.group is not None
        grouped = reading and self.group.enter()  # a lone read keeps to one transaction
        locked = audited and not grouped
        try:
            with self.storage.transaction(durable=durable, write=locked) as tx:
                # An audited operation locks the chain head (PostgreSQL; SQLite's BEGIN IMMEDIATE
                # already serialises) in the same query that reads the rules version. Locking only
                # at the audit row would take a second round trip: measured, a read went 1.3 -> 1.8 ms.
                prefetch = grouped and env_text is not None and name_text is not None
                if prefetch:  # a read by name: its secret comes with the state, one statement
                    state, current = repos.secrets.state_and_current(tx, env_text, name_text)
                else:
                    state = repos.state.get_state(tx, lock=locked)
                att = Attempt(tx, ctx, operation, state, self.rules.at(tx, state["rules_version"]))
                att.environment, att.name = env_text, name_text
                if prefetch:
                    att.current = current
                if locked and not self.caller.strict and not ctx.is_process:
                    att.bootstrap = self._bootstrap
                yield att
                if locked:
                    self.append(tx, att.state, keys.audit_key, ctx, operation, att.outcome, att.reason,
                                **_fields(att))
            if grouped:  # the value leaves the with block only after the commit holding its row
                self.group.commit(keys.audit_key, ctx, operation, att.outcome, att.reason, _fields(att))
            done = True
        except NotAudited:
            started = None  # not an operation: nothing to record or measure
            raise
        except AuditFailure:
            raise
        except AccessDenied as exc:
            self.record(ctx, operation, "denied", str(exc), *_where(att, env_text, name_text))
            raise
        except StorageError as exc:
            try:  # the database may be down or full: then the original error is what the caller needs
                self.record(ctx, operation, "failed", str(exc), *_where(att, env_text, name_text))
            except (StorageError, AuditFailure):
                pass
            raise
        except VaultError as exc:
            self.record(ctx, operation, "failed", str(exc), *_where(att, env_text, name_text))
            raise
        except SQLAlchemyError as exc:
            raise self.storage.error(exc) from None
        except Exception as exc:  # e.g. a custom generator that raised: record it, never its message
            self.record(ctx, operation, "failed", f"{type(exc).__name__} raised during {operation}",
                        *_where(att, env_text, name_text))
            raise
        finally:  # metrics hook (vault_core.metrics): outcome and duration, never arguments
            if reading:
                self.group.leave()
            if started is not None:
                _metrics.observe(operation, None if done else sys.exc_info()[1], time.perf_counter() - started)

    @contextmanager
    def checks(self, operation: str, *, name: Any = None, environment: Any = None) -> Iterator[None]:
        """Argument checks made before an attempt: a refusal here is recorded exactly as one inside it
        (one ``failed`` row naming the reason, never the value). Raises what the block raises."""
        try:
            yield
        except ValidationError as exc:
            env = environment.value if isinstance(environment, Environment) else environment
            self.record(self.caller.current(), operation, "failed", str(exc),
                        printable(env, 16) if isinstance(env, str) else None,
                        printable(name, 300) if isinstance(name, str) else None)
            raise

    def _bootstrap(self, att: Attempt) -> bool:
        """Make the caller the administrator of an embedded vault that has none but its owner.

        Only while the vault is untouched: no secret, no rule but the built-in ones, no principal but its
        owner and the built-in ``system:`` identities. The design note's first example writes as
        ``admin_user`` into such a vault.
        The process that opened an embedded (non-strict) vault holds its master key, so letting the first
        principal that writes in a security context become its administrator grants nothing that process
        could not take; it is recorded as a ``bootstrap`` row in the same transaction as the write, and
        happens once: after it, deny by default holds for everyone else. Strict vaults never do this
        (``vault-console serve``/``init`` make the first admin). True if the caller became admin.
        """
        owner = att.state["owner"]
        if not _untouched(att.tx, owner):
            return False
        now, user = self.clock(), att.ctx.user_id
        row = repos.principals.get_principal(att.tx, user)
        if row is None:
            repos.principals.insert_principal(att.tx, name=user, kind="user", roles='["admin"]', created_at=now,
                                              updated_at=now)
        else:
            roles = sorted({*json.loads(row["roles"]), "admin"})
            repos.principals.update_principal(att.tx, user, roles=json.dumps(roles), updated_at=now,
                                              session_epoch=row["session_epoch"] + 1)
        version = repos.state.bump_rules_version(att.tx)
        self.append(att.tx, att.state, self.keys.get().audit_key, att.ctx, "bootstrap", "allowed",
                    f"{user} became the administrator of this embedded vault (its first writer; "
                    f"no administrator but the owner {owner})")
        att.state = repos.state.get_state(att.tx)
        # compiled for this attempt only: the shared cache must never hold rules of a transaction that may roll back
        rules = [rule_from_row(r) for r in repos.rules.list_rules(att.tx)]
        roles = {p["name"]: json.loads(p["roles"]) for p in repos.principals.list_principals(att.tx)
                 if not p["disabled"]}
        att.rules = CompiledRules(version, rules, roles)
        att.roles = att.rules.roles(user, att.ctx.roles)
        return True

    def append(self, tx: Tx, state, audit_key: bytes, ctx: SecurityContext, operation: str, outcome: str,
               reason: str, **fields: Any) -> None:
        """Chain one row to the head ``state`` read at the start of ``tx``, MACed with ``audit_key``.

        Raises ``StorageError`` when the database itself fails, else ``AuditFailure``.
        """
        ts = self.clock()
        try:
            row = audit_row(audit_key, state["audit_seq"] + 1, state["audit_mac"], ts, ctx, operation, outcome,
                            reason, **fields)
            repos.audit.append_audit(tx, row, ts // US_PER_DAY)
        except OperationalError as exc:  # the database itself failed (down, full): say so
            raise self.storage.error(exc) from None
        except SQLAlchemyError as exc:
            raise AuditFailure(f"the audit row could not be written: {self.storage.error(exc)}; "
                               "the operation was not performed") from None
        except Exception as exc:
            raise AuditFailure(f"the audit row could not be written ({type(exc).__name__}); "
                               "the operation was not performed") from None

    def record(self, ctx: SecurityContext, operation: str, outcome: str, reason: str,
               environment: str | None = None, name: str | None = None, secret_id: str | None = None) -> None:
        """Record an attempt (denied, failed, or an event) in a transaction of its own.

        Raises ``Sealed``, ``StorageError`` or ``AuditFailure``.
        """
        keys = self.keys.get()
        try:
            with self.storage.transaction(durable=False) as tx:
                state = repos.state.get_state(tx, lock=True)
                self.append(tx, state, keys.audit_key, ctx, operation, outcome, reason, environment=environment,
                            secret_name=name, secret_id=secret_id)
        except SQLAlchemyError as exc:
            raise self.storage.error(exc) from None

    def record_event(self, operation: str, outcome: str = "allowed", reason: str = "", *,
                     environment: str | None = None, secret_id: str | None = None, name: str | None = None) -> None:
        """Write an audit row for an event that is not a vault operation (exports, backups), as the current caller.

        Only ever in the current caller's name: nobody writes a row for another principal.
        Raises ``Sealed``, ``AccessDenied`` (strict mode, no context), ``StorageError`` or ``AuditFailure``.
        """
        self.record(self.caller.current(), operation, outcome, reason, environment, name, secret_id)


def _untouched(tx: Tx, owner: str) -> bool:
    """Nobody has set this vault up yet: no secret, only built-in rules, only the owner and system identities."""
    return (all(p["name"] == owner or p["name"].startswith("system:") for p in repos.principals.list_principals(tx))
            and all((r["note"] or "").startswith("built-in") for r in repos.rules.list_rules(tx))
            and not repos.secrets.any_secret(tx))


def _fields(att: Attempt) -> dict[str, Any]:
    return dict(environment=att.environment, secret_id=att.secret_id, secret_name=att.name, version=att.version,
                value_hash=att.value_hash)


def _where(att: Attempt | None, environment: str | None, name: str | None) -> tuple:
    """(environment, name, secret_id) for a failure row: what the attempt was asked, and the secret it found."""
    return environment, name, att.secret_id if att is not None else None
