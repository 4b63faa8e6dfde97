"""Reading, verifying, searching and exporting the audit log (reading it needs the admin or auditor role)."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime
from typing import Any

from .. import audit, audit_formats, audit_offline
from ..errors import AccessDenied, AuditFailure, IntegrityError, StorageError, ValidationError
from ..types import US_PER_DAY, US_PER_MIN
from ..storage import repos
from ..validate import canonical_name, canonical_principal, check_int, check_operation, check_secret_id, to_us
from ..storage import Storage
from ..types import Clock
from .keys import KeyHolder
from .runner import Runner, environment_value

AUDIT_ROLES = ("admin", "auditor")
LOOKUPS_PER_MINUTE = 10  # value lookups per principal: each is a guess at a value
OUTCOMES = ("allowed", "denied", "failed")
_BATCH = 5000


EXPORT_FORMATS = ("csv", "jsonl", *audit_formats.FORMATS)


class AuditService:
    """The audit log as reviewers use it."""

    def __init__(self, runner: Runner, storage: Storage, keys: KeyHolder, clock: Clock):
        self._runner, self._storage, self._keys, self._clock = runner, storage, keys, clock
        self.last_verify: audit.VerifyReport | None = None  # the newest verify_audit_log report of this process

    def _audit_filters(self, secret_id, principal, operation, environment, outcome, name, since,
                       until) -> dict[str, Any]:
        where: dict[str, Any] = {}
        if secret_id is not None:
            # any text filters (one that is not a secret id matches nothing: the design note's own example
            # asks for secret_id="stripe_key_id"); anything else is bad input
            where["secret_id"] = secret_id if isinstance(secret_id, str) and len(secret_id) <= 256 \
                else check_secret_id(secret_id)
        if principal:
            where["principal"] = canonical_principal(principal)
        if operation:
            where["operation"] = check_operation(operation)
        if environment:
            where["environment"] = environment_value(environment)
        if outcome:
            if outcome not in OUTCOMES:
                raise ValidationError(f"outcome must be one of {', '.join(OUTCOMES)}")
            where["outcome"] = outcome
        if name:
            where["secret_name"] = canonical_name(name)
        if since is not None:
            where["since"] = to_us(since, "since")
        if until is not None:
            where["until"] = to_us(until, "until")
        return where

    def get_audit_log(self, secret_id: str | None = None, limit: int = 100, *, principal: str | None = None,
                      operation: str | None = None, environment: Any = None, outcome: str | None = None,
                      name: str | None = None, since: datetime | None = None, until: datetime | None = None,
                      cursor: str | None = None, oldest_first: bool = False) -> list[dict[str, Any]]:
        """Audit rows, newest first (``oldest_first=True``: in chain order), filtered. Each dict has the
        seed's ``timestamp``, ``user_id``, ``operation``, ``success``, ``details`` and every recorded field.
        For the next page pass ``cursor=audit_cursor(rows[-1])`` (with the same ``oldest_first``).

        Raises ``Sealed``, ``AccessDenied`` (not admin or auditor), ``ValidationError`` (bad filter), ``StorageError``.
        """
        check_int(limit, "limit", 1, 10_000)
        where = self._audit_filters(secret_id, principal, operation, environment, outcome, name, since, until)
        before = _parse_audit_cursor(cursor)
        with self._runner.attempt("audit_query", durable=False, audited=False) as att:
            att.require_role(*AUDIT_ROLES)
            if oldest_first:
                rows = repos.audit.query_audit_oldest_first(att.tx, filters=where, after=before[1] if before else 0,
                                                            limit=limit)
            else:
                rows = repos.audit.query_audit(att.tx, filters=where, before=before, limit=limit)
            return [audit.public_row(r) for r in rows]

    def _iter_filtered(self, where: dict[str, Any]) -> Iterator[Mapping[str, Any]]:
        """The filtered rows oldest first (chain order), read in batches."""
        after = 0
        while True:
            with self._storage.transaction(write=False) as tx:
                rows = repos.audit.query_audit_oldest_first(tx, filters=where, after=after, limit=_BATCH)
            yield from (audit.public_row(r) for r in rows)
            if len(rows) < _BATCH:
                return
            after = rows[-1]["seq"]

    def export_audit(self, fmt: str = "csv", **filters: Any) -> Iterator[str]:
        """Stream the filtered rows, oldest first (chain order, as SIEMs expect), as CSV, JSON Lines, or JSON Lines of OCSF 1.2 events
        (``"ocsf"``) or ECS documents (``"ecs"``, see ``vault_core.audit_formats``); the export itself is audited.

        Raises ``Sealed``, ``AccessDenied`` (not admin or auditor), ``ValidationError`` (bad filter),
        ``StorageError``, ``AuditFailure``.
        """
        if fmt not in EXPORT_FORMATS:
            raise ValidationError(f"format must be one of {', '.join(EXPORT_FORMATS)}")
        where = self._audit_filters(filters.pop("secret_id", None), filters.pop("principal", None),
                                    filters.pop("operation", None), filters.pop("environment", None),
                                    filters.pop("outcome", None), filters.pop("name", None),
                                    filters.pop("since", None), filters.pop("until", None))
        if filters:
            raise ValidationError(f"unknown audit filters: {', '.join(sorted(filters))}")
        with self._runner.attempt("audit_export") as att:
            att.require_role(*AUDIT_ROLES)
            att.reason = f"format={fmt}"
        rows = self._iter_filtered(where)
        if fmt in audit_formats.FORMATS:
            return audit_formats.export_events(rows, fmt)
        return audit.export_csv(rows) if fmt == "csv" else audit.export_jsonl(rows)

    def verify_audit_log(self, checkpoint: Mapping[str, Any] | None = None,
                         progress: Callable[[int, int], Any] | None = None) -> audit.VerifyReport:
        """Check every row of the chain; ``checkpoint`` (from ``audit_checkpoint``) also catches a cut-off tail.

        ``progress(done, total)`` is called as the walk goes (rows checked, rows in the chain): a
        progress bar's feed. An exception it raises stops the walk and propagates.

        A broken chain is reported, not raised. Raises ``Sealed``, ``AccessDenied``, ``ValidationError``
        (malformed checkpoint), ``StorageError``, ``AuditFailure`` (a sound chain that cannot take its row).
        """
        keys = self._keys.get()
        checkpoint = _check_checkpoint(checkpoint)
        try:
            with self._runner.attempt("audit_verify", durable=False, audited=False) as att:
                att.require_role(*AUDIT_ROLES)
        except IntegrityError:
            # the rows that say who may verify are themselves broken: only the process that holds the
            # master key (an embedded vault's owner, the operator's CLI) may still look, to be told what
            if not self._runner.caller.current().is_process:
                raise
        with self._storage.transaction(write=False) as tx:  # one snapshot for the whole walk
            tampered = repos.integrity.problems(tx)
            state = repos.state.unchecked_state(tx)
            report = audit.verify_raw(keys.audit_key, repos.audit.iter_audit_raw(tx), state_seq=state["audit_seq"],
                                      state_mac=state["audit_mac"], checkpoint=checkpoint, progress=progress)
        if tampered:
            report = dataclasses.replace(report, ok=False, problem="; ".join(
                [*tampered, *([report.problem] if report.problem else [])]))
        self.last_verify = report
        try:
            self._runner.record_event("audit_verify", "allowed" if report.ok else "failed",
                              "chain ok" if report.ok else report.problem)
        except (AuditFailure, StorageError, IntegrityError):
            if report.ok:  # a sound chain that cannot take a row is a failure worth raising
                raise
            # a broken chain (e.g. a forged row holding the next number) may refuse new rows:
            # the report is what the caller needs
        return report

    def verify_audit_file(self, lines: Iterable[str], checkpoint: Mapping[str, Any] | None = None, *,
                          allow_gaps: bool = False) -> audit_offline.FileReport:
        """Verify an exported or streamed JSON Lines file (native, OCSF or ECS) with the audit key, without
        reading the log: each line's MAC, its chain to the line before, and ``checkpoint`` (from
        ``audit_checkpoint``) present in it. A bad file is reported (naming its line), not raised.

        Raises ``Sealed``, ``AccessDenied`` (not admin or auditor), ``ValidationError`` (malformed
        checkpoint), ``StorageError``, ``AuditFailure``.
        """
        keys = self._keys.get()
        checkpoint = _check_checkpoint(checkpoint)
        with self._runner.attempt("audit_verify_file", durable=False, audited=False) as att:
            att.require_role(*AUDIT_ROLES)
        report = audit_offline.verify_lines(keys.audit_key, lines, checkpoint, allow_gaps=allow_gaps)
        self._runner.record_event("audit_verify_file", "allowed" if report.ok else "failed",
                                  f"{report.lines_checked} line(s) sound" if report.ok else report.problem)
        return report

    def audit_checkpoint(self) -> dict[str, Any]:
        """The current head of the chain (seq and MAC): save it outside the vault.

        Raises ``Sealed``, ``AccessDenied`` (not admin or auditor), ``StorageError``.
        """
        with self._runner.attempt("audit_checkpoint", durable=False, audited=False) as att:
            att.require_role(*AUDIT_ROLES)
            return {"seq": att.state["audit_seq"], "mac": bytes(att.state["audit_mac"]).hex(),
                    "vault_id": att.state["vault_id"]}

    def audit_hash(self, value: str | bytes) -> str:
        """The keyed hash of ``value`` a reviewer can search the log for: a value lookup like ``find_value``
        (audited, admin or auditor, at most ``LOOKUPS_PER_MINUTE`` per principal).

        Raises ``Sealed``, ``AccessDenied`` (no role, over the limit, strict vault without a context),
        ``ValidationError`` (not str or bytes), ``StorageError``.
        """
        return self._lookup(value, None)[0]

    def find_value(self, value: str | bytes, limit: int = 100) -> list[dict[str, Any]]:
        """Audit rows of the writes that stored ``value`` (matched by its audit hash, newest first).

        Each lookup is an audited privilege of the admin and auditor roles, limited to
        ``LOOKUPS_PER_MINUTE`` per principal (counted in the log itself), since it is a guessing oracle.
        Raises ``Sealed``, ``AccessDenied`` (no role, over the limit), ``ValidationError``, ``StorageError``.
        """
        check_int(limit, "limit", 1, 10_000)
        return self._lookup(value, limit)[1]

    def _lookup(self, value: Any, limit: int | None) -> tuple[str, list[dict[str, Any]]]:
        keys = self._keys.get()
        with self._runner.attempt("value_lookup") as att:
            att.require_role(*AUDIT_ROLES)
            now = self._clock()
            if repos.audit.count_since(att.tx, att.ctx.user_id, "value_lookup", now - US_PER_MIN) \
                    >= LOOKUPS_PER_MINUTE:
                raise AccessDenied(f"at most {LOOKUPS_PER_MINUTE} value lookups a minute: try again shortly")
            if not isinstance(value, (str, bytes, bytearray)):
                raise ValidationError("a value lookup takes a str or bytes value")
            data = value.encode("utf-8", "surrogatepass") if isinstance(value, str) else bytes(value)
            digest = hmac.new(keys.hash_key, data, hashlib.sha256).hexdigest()
            rows = [] if limit is None else [audit.public_row(r) for r in repos.audit.query_audit(
                att.tx, filters={"value_hash": digest}, before=None, limit=limit)]
            att.reason = "audit hash" if limit is None else f"{len(rows)} write(s) found"
        return digest, rows

    def _rows_where(self, where: dict[str, Any], limit: int) -> list[dict[str, Any]]:
        with self._runner.attempt("audit_query", durable=False, audited=False) as att:
            att.require_role(*AUDIT_ROLES)
            return [audit.public_row(r) for r in repos.audit.query_audit(att.tx, filters=where, before=None,
                                                                         limit=limit)]

    def audit_counts(self, days: int = 30) -> list[dict[str, Any]]:
        """Per-day counts by operation and outcome for the last ``days`` days (from counters).

        Raises ``Sealed``, ``AccessDenied`` (not admin or auditor), ``ValidationError`` (bad filter), ``StorageError``.
        """
        check_int(days, "days", 1, 3660)
        with self._runner.attempt("audit_query", durable=False, audited=False) as att:
            att.require_role(*AUDIT_ROLES)
            since = self._clock() // US_PER_DAY - days + 1
            return [dict(r) for r in repos.audit.audit_daily_counts(att.tx, since)]


def _check_checkpoint(checkpoint: Any) -> dict[str, Any] | None:
    """A checkpoint from ``audit_checkpoint()``: {"seq": int, "mac": 64 hex digits, ...}."""
    if checkpoint is None:
        return None
    try:
        seq = check_int(checkpoint["seq"], "checkpoint seq")
        mac = checkpoint["mac"]
        bytes.fromhex(mac)
        if len(mac) != 64:
            raise ValueError
    except (TypeError, KeyError, ValueError, ValidationError):
        raise ValidationError("checkpoint must be the dict returned by audit_checkpoint()") from None
    return {"seq": seq, "mac": mac}


def _parse_audit_cursor(cursor: Any) -> tuple[int, int] | None:
    if cursor is None:
        return None
    try:
        ts, seq = str(cursor).split(":")
        return check_int(int(ts), "cursor"), check_int(int(seq), "cursor")
    except (ValueError, ValidationError):
        raise ValidationError("cursor must come from audit_cursor()") from None
