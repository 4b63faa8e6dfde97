"""Plumbing every operation shares: unlock, the caller, and the attempt.

An attempt is: validate → check access → act → write its audit row, in one
transaction. A denial or a failure rolls the change back and records the
attempt in a transaction of its own; if the audit row cannot be written,
the operation fails and returns nothing.
"""

from __future__ import annotations

import os
import secrets as pysecrets
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy.exc import OperationalError, SQLAlchemyError

from .. import audit
from .. import metrics as _metrics
from ..access import CompiledRules, rule_from_row
from ..context import SecurityContext, current_context, make_context, process_principal, use_context
from ..crypto import Barrier, Keyring
from ..crypto.keyring import load_keyring, unwrap_key, wrap_key
from ..types import Environment, default_environment
from ..errors import AccessDenied, AuditFailure, InvalidKey, Sealed, StorageError, ValidationError, VaultError
from ..types import US_PER_DAY, AccessLevel, now_us
from ..validate import DEFAULT_MAX_VALUE_BYTES, canonical_name, printable
from ..storage import Storage
from ..storage import repos
from ..storage.tx import Tx


NO_NAME: Any = object()  # "this operation names no secret" (unlike name=None, which is bad input)


class _Keys:
    """Unsealed key material of one vault (never printed)."""

    __slots__ = ("barrier", "audit_key", "hash_key", "cookie_key", "master")

    def __repr__(self) -> str:
        return "_Keys(<redacted>)"


class Attempt:
    """One audited operation in progress (see ``VaultBase.attempt``)."""

    __slots__ = ("vault", "tx", "ctx", "operation", "environment", "name", "secret_id", "version",
                 "reason", "rules", "roles", "state", "value_hash")

    def __init__(self, vault: "VaultBase", tx: Tx, ctx: SecurityContext, operation: str, state):
        self.vault, self.tx, self.ctx, self.operation, self.state = vault, tx, ctx, operation, state
        self.environment: str | None = None
        self.name: str | None = None
        self.secret_id: str | None = None
        self.version: int | None = None
        self.value_hash: str | None = None  # keyed HMAC of a value this attempt wrote
        self.reason = ""
        self.rules: CompiledRules = vault._compiled_rules(tx, state["rules_version"])
        self.roles = self.rules.roles(ctx.user_id, ctx.roles)

    def require(self, level: AccessLevel, environment: str | None = None, name: str | None = None) -> None:
        """Raise ``AccessDenied`` unless the caller holds ``level`` on (environment, name)."""
        env = environment or self.environment
        nm = name or self.name
        if env is None or nm is None:
            raise ValidationError("give a secret name (and environment) or a secret_id")
        decision = self.rules.check(self.ctx.user_id, self.roles, env, nm, level)
        if not decision.allowed:
            raise AccessDenied(f"{self.ctx.user_id} may not {level.value} {env}/{nm}: {decision.reason}")

    def require_role(self, *roles: str) -> None:
        if not (self.roles & set(roles)):
            raise AccessDenied(f"{self.ctx.user_id} needs one of the roles: {', '.join(roles)}")

    def target(self, row) -> None:
        """Record which secret (and version) this attempt touched."""
        self.secret_id = row["id"]
        self.environment = row["environment"]
        self.name = row["name"]
        self.version = row.get("current_version") if hasattr(row, "get") else None


class VaultBase:
    """Opening, unlocking, the caller's identity and the audited attempt."""

    def __init__(self, storage: Storage, *, vault_dir: Path | None = None, strict: bool = False,
                 max_value_bytes: int = DEFAULT_MAX_VALUE_BYTES, clock: Callable[[], int] = now_us,
                 process_identity: str | None = None):
        self.storage = storage
        self.vault_dir = vault_dir
        self.strict = strict
        self.max_value_bytes = max_value_bytes
        self.clock = clock
        self.process_identity = process_identity or process_principal()
        self.key_source: str | None = None
        self._keys: _Keys | None = None
        self._rules: CompiledRules | None = None
        self._rules_lock = threading.Lock()
        self._generators: dict[str, Callable[[], Any]] = {}

    # -- sealing -----------------------------------------------------------------
    @property
    def sealed(self) -> bool:
        return self._keys is None

    def _unsealed(self) -> _Keys:
        keys = self._keys
        if keys is None:
            raise Sealed("the vault is sealed: unlock it with its master key or passphrase")
        return keys

    def seal(self) -> None:
        """Forget the keys held in memory; every operation is refused until unlock."""
        self._keys = None

    def _unlock_with(self, master: bytes) -> None:
        """Unwrap the keyring and the audit/cookie keys; create them on a new vault.

        Also finishes an interrupted master-key change (``crypto.masterkey.resolve_staged``).
        """
        from ..crypto.masterkey import key_file_path, read_key_file, resolve_staged, staged_path

        with self.storage.transaction() as tx:
            rows = repos.keys.wrapped_keys_of(tx)
            if not rows:
                self._initialise(tx, master)
                rows = repos.keys.wrapped_keys_of(tx)
        key_file = key_file_path(self.vault_dir) if self.key_source in ("key-file", "passphrase-file") else None
        try:
            other = {r["purpose"]: unwrap_key(master, r["purpose"], r["term"], r["wrapped"])
                     for r in rows if r["purpose"] != "data"}
        except InvalidKey:
            staged = staged_path(key_file) if key_file is not None else None
            if staged is None or not staged.exists():
                raise
            try:  # a change committed in the database but not yet in the key file
                master = read_key_file(staged)
            except Sealed:
                raise InvalidKey("an interrupted master-key change left master.key.new: "
                                 "unlock with the new passphrase") from None
            other = {r["purpose"]: unwrap_key(master, r["purpose"], r["term"], r["wrapped"])
                     for r in rows if r["purpose"] != "data"}
        if "audit" not in other:
            raise InvalidKey("the vault has no audit key: it was not initialised by this software")
        keyring = load_keyring(master, [r for r in rows if r["purpose"] == "data"])
        storage = self.storage
        keys = _Keys()

        def newest(known: Keyring) -> Keyring:  # key terms added by any process, under the current master key
            with storage.transaction(write=False, durable=False) as rtx:
                return load_keyring(keys.master, repos.keys.wrapped_keys_of(rtx, "data"), known)

        keys.barrier = Barrier(keyring, loader=newest)
        keys.audit_key = other["audit"]
        keys.hash_key = audit.hmac.new(other["audit"], b"vault/audit-hash/v1", "sha256").digest()
        keys.cookie_key = other.get("cookie")
        keys.master = master
        self._keys = keys
        if key_file is not None:
            resolve_staged(key_file, master)

    def _initialise(self, tx: Tx, master: bytes) -> None:
        now = self.clock()
        raw = {purpose: os.urandom(32) for purpose in ("data", "audit", "cookie")}
        for purpose, key in raw.items():
            repos.keys.put_wrapped_key(tx, purpose, 1, wrap_key(master, purpose, 1, key), now)
        if repos.state.get_state(tx) is None:
            repos.state.init_state(tx, vault_id=pysecrets.token_hex(8), created_at=now, owner=self.process_identity,
                                   rules_version=1, audit_seq=0, audit_mac=audit.GENESIS_MAC)
            # Scheduled rotation runs as system:scheduler, whose only right is this
            # visible, revocable rule (ROTATE everywhere for the rotator role),
            # recorded as the first row of the audit chain like any other grant.
            from ..rotation import ROTATOR_ROLE, SCHEDULER_PRINCIPAL

            rule_id = repos.rules.insert_rule(tx, subject_kind="role", subject=ROTATOR_ROLE, environment="*",
                                              pattern="*",
                                              levels="rotate", effect="allow", secret_id=None, created_at=now,
                                              created_by=self.process_identity, note="built-in: scheduled rotation")
            if repos.principals.get_principal(tx, SCHEDULER_PRINCIPAL) is None:
                repos.principals.insert_principal(tx, name=SCHEDULER_PRINCIPAL, kind="service",
                                                  display_name="rotation scheduler",
                                                  roles=f'["{ROTATOR_ROLE}"]', created_at=now, updated_at=now)
            row = audit.make_row(raw["audit"], seq=1, prev_mac=audit.GENESIS_MAC, ts=now,
                                 principal=self.process_identity, roles="", operation="rule_add",
                                 outcome="allowed", reason=f"rule {rule_id}: allow rotate to role {ROTATOR_ROLE} "
                                 f"on */* (built-in: scheduled rotation as {SCHEDULER_PRINCIPAL})")
            repos.audit.append_audit(tx, row, now // US_PER_DAY)
        if repos.principals.get_principal(tx, self.process_identity) is None:
            repos.principals.insert_principal(tx, name=self.process_identity, kind="service",
                                              display_name="vault owner",
                                              roles='["admin"]', created_at=now, updated_at=now)

    # -- the caller ------------------------------------------------------------------
    @contextmanager
    def security_context(self, user_id: str, ip_address: str | None = None, user_agent: str | None = None,
                         roles: tuple[str, ...] | list[str] | None = (), session_id: str | None = None,
                         forwarded_for: str | None = None, forwarded_trusted: bool = False
                         ) -> Iterator[SecurityContext]:
        """Act as ``user_id`` inside the block (per thread / per Streamlit session)."""
        ctx = make_context(user_id, ip_address, user_agent, roles, session_id, forwarded_for, forwarded_trusted)
        with use_context(ctx) as active:
            yield active

    def _caller(self) -> SecurityContext:
        ctx = current_context()
        if ctx is not None:
            return ctx
        if self.strict:
            raise AccessDenied("this vault is in strict mode: every call needs a security context")
        return SecurityContext(user_id=self.process_identity, is_process=True)

    # -- rules snapshot --------------------------------------------------------------------
    def _compiled_rules(self, tx: Tx, version: int) -> CompiledRules:
        """The compiled rules at ``version``; recompiled only after a change (any process)."""
        compiled = self._rules
        if compiled is not None and compiled.version == version:
            return compiled
        with self._rules_lock:
            compiled = self._rules
            if compiled is None or compiled.version != version:
                import json

                rules = [rule_from_row(r) for r in repos.rules.list_rules(tx)]
                roles = {p["name"]: json.loads(p["roles"]) for p in repos.principals.list_principals(tx)
                         if not p["disabled"]}
                compiled = self._rules = CompiledRules(version, rules, roles)
        return compiled

    # -- the attempt ------------------------------------------------------------------------
    @staticmethod
    def _environment(environment: Any) -> str:
        return (default_environment() if environment is None else Environment.parse(environment)).value

    @contextmanager
    def attempt(self, operation: str, *, name: Any = NO_NAME, environment: Any = None, durable: bool = True,
                audited: bool = True) -> Iterator[Attempt]:
        """Run one audited operation (see the module docstring).

        ``audited=False`` is for metadata-only reads (listing): they run in a
        read transaction and only a denial or failure is recorded.
        """
        keys = self._unsealed()
        ctx = self._caller()
        env_text = name_text = None
        try:
            if environment is not None or name is not NO_NAME:
                env_text = self._environment(environment)
            if name is not NO_NAME:
                name_text = canonical_name(name)
        except ValidationError as exc:
            self._record(keys, ctx, operation, "failed", str(exc), environment=None,
                         name=printable(name, 300) if isinstance(name, str) else None)
            raise
        att: Attempt | None = None
        started, done = time.perf_counter(), False
        try:
            with self.storage.transaction(durable=durable, write=audited) as tx:
                # An audited operation locks the chain head (PostgreSQL; SQLite's BEGIN IMMEDIATE
                # already serialises) in the same query that reads the rules version. Locking only
                # at the audit row would take a second round trip: measured, a read went 1.3 -> 1.8 ms.
                state = repos.state.get_state(tx, lock=audited)
                att = Attempt(self, tx, ctx, operation, state)
                att.environment, att.name = env_text, name_text
                yield att
                if audited:
                    self._append(keys, tx, state, att, "allowed", att.reason)
            done = True
        except AccessDenied as exc:
            self._record(keys, ctx, operation, "denied", str(exc), env_text, name_text, _target(att))
            raise
        except AuditFailure:
            raise
        except StorageError as exc:
            try:  # the database may be down or full: then the original error is what the caller needs
                self._record(keys, ctx, operation, "failed", str(exc), env_text, name_text, _target(att))
            except (StorageError, AuditFailure):
                pass
            raise
        except VaultError as exc:
            self._record(keys, ctx, operation, "failed", str(exc), env_text, name_text, _target(att))
            raise
        except SQLAlchemyError as exc:
            raise self.storage.error(exc) from None
        except Exception as exc:  # e.g. a custom generator that raised: record it, never its message
            self._record(keys, ctx, operation, "failed", f"{type(exc).__name__} raised during {operation}",
                         env_text, name_text, _target(att))
            raise
        finally:  # metrics hook (vault_core.metrics): outcome and duration, never arguments
            _metrics.observe(operation, None if done else sys.exc_info()[1], time.perf_counter() - started)

    def _append(self, keys: _Keys, tx: Tx, state, att: Attempt | None, outcome: str, reason: str,
                **override: Any) -> None:
        """Chain one row to the head read at the start of this transaction."""
        fields = dict(environment=att.environment, secret_id=att.secret_id, secret_name=att.name,
                      version=att.version, value_hash=att.value_hash) if att is not None else {}
        fields.update(override)
        ctx = att.ctx if att is not None else override.pop("ctx")
        fields.pop("ctx", None)
        ts = self.clock()
        try:
            row = audit.make_row(
                keys.audit_key, seq=state["audit_seq"] + 1, prev_mac=state["audit_mac"], ts=ts,
                principal=ctx.user_id, roles=ctx.roles_text, client_ip=ctx.ip_address,
                forwarded_for=ctx.forwarded_for, forwarded_trusted=ctx.forwarded_trusted,
                user_agent=ctx.user_agent, session_id=ctx.session_id,
                operation=att.operation if att is not None else fields.pop("operation"),
                outcome=outcome, reason=reason, **fields)
            repos.audit.append_audit(tx, row, ts // US_PER_DAY)
        except OperationalError as exc:  # the database itself failed (down, full): say so
            raise self.storage.error(exc) from None
        except SQLAlchemyError as exc:
            raise AuditFailure(f"the audit row could not be written: {self.storage.error(exc)}; "
                               "the operation was not performed") from None
        except Exception as exc:
            raise AuditFailure(f"the audit row could not be written ({type(exc).__name__}); "
                               "the operation was not performed") from None

    def _record(self, keys: _Keys, ctx: SecurityContext, operation: str, outcome: str, reason: str,
                environment: str | None = None, name: str | None = None, secret_id: str | None = None) -> None:
        """Record a denied or failed attempt in a transaction of its own."""
        try:
            with self.storage.transaction(durable=False) as tx:
                state = repos.state.get_state(tx, lock=True)
                self._append(keys, tx, state, None, outcome, reason, ctx=ctx, operation=operation,
                             environment=environment, secret_name=name, secret_id=secret_id)
        except SQLAlchemyError as exc:
            raise self.storage.error(exc) from None

    def record_event(self, operation: str, outcome: str = "allowed", reason: str = "", *,
                     principal: str | None = None, environment: str | None = None,
                     secret_id: str | None = None, name: str | None = None) -> None:
        """Write an audit row for an event that is not a vault operation (logins, exports)."""
        ctx = self._caller()
        if principal is not None and principal != ctx.user_id:
            from dataclasses import replace

            ctx = replace(ctx, user_id=printable(principal, 256))
        self._record(self._unsealed(), ctx, operation, outcome, reason, environment, name, secret_id)


def _target(att: Attempt | None) -> str | None:
    return att.secret_id if att is not None else None
