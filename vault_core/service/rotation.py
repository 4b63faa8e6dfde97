"""Rotation: generators, staged rotation (PENDING → test → CURRENT), revert, due rotations, history.

A rotation with ``apply``/``test`` hooks runs in three steps so slow hooks
never hold the database write lock: (1) write the new value as PENDING in
one transaction, (2) run the hooks outside any transaction, (3) promote it
in a second transaction with check-and-set on the current version. A hook
that fails (raises, or ``test`` returns False) leaves CURRENT untouched: the
PENDING version is deleted and an audit row with outcome ``failed`` records
the stage and exception type (never the value). Without hooks, rotation is
a single transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .. import rotation as rot
from ..context import make_context, use_context
from ..errors import AccessDenied, Conflict, NotFound, RotationFailed, ValidationError, VaultError
from ..storage import Storage, repos
from ..types import US, US_PER_DAY, AccessLevel, Clock
from ..validate import check_int
from .generators import GeneratorRegistry, Hook, check_hooks
from .lease import Lease
from .runner import Attempt, NotAudited, Runner
from .secrets import on_secret
from .versions import VersionWriter


class _NotDue(NotAudited):
    """A scheduled rotation found the secret no longer due: another process did it."""


class RotationService:
    """Rotate secrets with built-in, registered or passed-in generators, staged when hooks are given."""

    def __init__(self, runner: Runner, storage: Storage, versions: VersionWriter, generators: GeneratorRegistry,
                 clock: Clock, keep_keys_fresh: Callable[[], Any], lease_holder: str):
        self._runner, self._storage, self._versions, self._clock = runner, storage, versions, clock
        self.generators = generators
        self._keep_keys_fresh = keep_keys_fresh  # adds a data key term when the active one is worn
        self._lease_holder = lease_holder  # this vault object's identity as the scheduler's lease holder
        self.rotation_retry_s = 3600  # a claimed-but-failed scheduled rotation is retried after this
        self.pending_stale_s = 3600  # a PENDING version older than this was abandoned by a crashed rotation
        self.scheduler_lease_s = 60.0  # how long the scheduler's lease lasts unless renewed

    @staticmethod
    def _target_row(att: Attempt, secret_id: str):
        row = repos.secrets.secret_by_id(att.tx, secret_id)
        if row is None or row["deleted_at"] is not None:
            raise NotFound("the secret was deleted during its rotation")
        att.target(row)
        att.version = row["current_version"]
        att.require(AccessLevel.ROTATE)
        return row

    # -- rotation -------------------------------------------------------------------------------------
    def rotate_secret(self, secret_id: str | None = None, generator: Any = None, *, name: str | None = None,
                      environment: Any = None, apply: Hook | None = None,
                      test: Hook | None = None) -> int:
        """Replace the value with a freshly generated one; returns the new CURRENT version. Needs ROTATE.

        ``generator``: a callable, or the name of a built-in ("password", "token",
        "key") or registered generator; by default the secret's stored generator,
        else the default for its type. With ``apply``/``test`` hooks (or hooks
        registered with the generator) the rotation is staged; a failing hook
        raises ``RotationFailed`` and leaves CURRENT as it was.
        Raises ``Sealed``, ``AccessDenied``, ``NotFound``, ``ValidationError`` (bad generator or hook),
        ``RotationFailed`` (the generator or a hook failed: named by step and exception class, never its
        message), ``Conflict`` (another rotation in progress), ``StorageError``, ``AuditFailure``.
        """
        check_hooks(apply, test)
        return self._rotate(secret_id, name, environment, generator, apply, test, scheduled=False)

    def _rotate(self, secret_id, name, environment, generator, apply, test, *, scheduled: bool) -> int:
        # 1. who, what and how, in a read transaction (denials and misses are audited)
        with on_secret(self._runner, "rotate", name, environment, secret_id, AccessLevel.ROTATE,
                       durable=False, audited=False) as (att, row):
            gen, gen_name = self.generators.resolve(generator, row["generator"], row["secret_type"])
            registered = self.generators.hooks(gen_name)
            apply, test = apply or registered[0], test or registered[1]
            sid, where = row["id"], (att.environment, att.name, row["id"])
        # 2. the value, outside any transaction (a generator may be slow)
        try:
            value = gen()
            data = self._versions.encode(value)
        except Exception as exc:
            reason = rot.failure_reason("generator", exc)
            self._runner.record_event("rotate", "failed", reason, environment=where[0], name=where[1],
                                      secret_id=where[2])
            raise RotationFailed(f"rotation of {where[0]}/{where[1]} failed: {reason}",
                                 stage="generate", cause=type(exc).__name__) from None
        if apply is None and test is None:
            return self._rotate_now(sid, data, gen_name, scheduled, where)
        return self._rotate_staged(sid, value, data, gen_name, apply, test, scheduled, where)

    def _schedule_fields(self, row, gen_name: str | None, now: int, data: bytes) -> dict[str, Any]:
        interval = row["rotation_interval_days"]
        extra: dict[str, Any] = dict(last_rotated_at=now,
                                     next_rotation_at=now + interval * US_PER_DAY if interval else None)
        expiry = rot.certificate_expiry(data[1:]) if row["secret_type"] == "certificate" else None
        if expiry is not None:  # a new certificate brings its own expiry
            extra["expires_at"] = int(expiry.timestamp() * US)
        if self.generators.knows(gen_name):
            extra["generator"] = gen_name
        return extra

    def _claim(self, att: Attempt, row, scheduled: bool) -> None:
        """The once-only check of a scheduled rotation, inside its write transaction."""
        now = self._clock()
        if scheduled and not repos.secrets.claim_due(att.tx, row["id"], now, now + self.rotation_retry_s * US):
            raise _NotDue()

    def _rotate_now(self, sid: str, data: bytes, gen_name: str | None, scheduled: bool, where: tuple) -> int:
        with self._runner.attempt("rotate", environment=where[0], name=where[1]) as att:
            row = self._target_row(att, sid)
            self._claim(att, row, scheduled)
            current = row["current_version"]
            new = self._versions.write(att, row, data, cas=current,
                                    extra=self._schedule_fields(row, gen_name, self._clock(), data))
            att.reason = f"v{current} -> v{new}" + (f" by {gen_name}" if gen_name else "") + \
                (" (scheduled)" if scheduled else "")
            return new

    def _rotate_staged(self, sid, value, data, gen_name, apply, test, scheduled, where) -> int:
        # (1) PENDING, in its own transaction
        with self._runner.attempt("rotate_stage", environment=where[0], name=where[1]) as att:
            row = self._target_row(att, sid)
            self._claim(att, row, scheduled)
            current = row["current_version"]
            pending = current + 1
            for p in repos.versions.pending_versions(att.tx, sid):
                if p["created_at"] > self._clock() - self.pending_stale_s * US:
                    raise Conflict(f"{row['environment']}/{row['name']} already has a rotation in progress")
                self._versions.discard(att.tx, sid, p["version"])  # left by a crashed rotation
            blob = self._versions.stage(att, row, pending, data)
            att.reason = f"v{pending} pending (current v{current})"
        # (2) the hooks, with no transaction open
        stage = "apply"
        try:
            if apply is not None:
                apply(value)
            stage = "test"
            if test is not None and test(value) is False:
                raise AssertionError("the test hook returned False")
        except Exception as exc:
            reason = f"{rot.failure_reason(f'{stage} hook', exc)}; v{pending} discarded, v{current} stays current"
            with self._runner.attempt("rotate", environment=where[0], name=where[1]) as att:
                att.environment, att.name, att.secret_id, att.version = where[0], where[1], sid, pending
                self._versions.discard(att.tx, sid, pending, blob)
                att.outcome, att.reason = "failed", reason
            raise RotationFailed(f"rotation of {where[0]}/{where[1]} failed: {reason}", stage=stage,
                                 cause=type(exc).__name__) from None
        # (3) promote, with check-and-set on the version that was current at (1)
        try:
            with self._runner.attempt("rotate", environment=where[0], name=where[1]) as att:
                row = self._target_row(att, sid)
                if row["current_version"] != current or repos.versions.version_blob(att.tx, sid, pending) != blob:
                    raise Conflict(f"{row['environment']}/{row['name']} changed during its rotation; "
                                   f"v{pending} discarded")
                self._versions.promote(att, row, pending, self._schedule_fields(row, gen_name, self._clock(), data))
                att.reason = f"v{current} -> v{pending} (staged" + (f", by {gen_name}" if gen_name else "") + \
                    (", scheduled" if scheduled else "") + ")"
                return pending
        except VaultError as exc:
            with self._storage.transaction() as tx:  # the failure row is written; drop what we staged
                self._versions.discard(tx, sid, pending, blob)
            raise RotationFailed(str(exc), stage="promote", cause=type(exc).__name__) from None

    # -- revert ------------------------------------------------------------------------------------------
    def revert_secret(self, name: str | None = None, environment: Any = None, *,
                      secret_id: str | None = None) -> int:
        """Put the PREVIOUS value back as CURRENT in one call; returns the new CURRENT version. Needs ROTATE.

        The value is re-sealed as a new version (numbers only grow, so history
        and check-and-set stay simple); the reverted-from version becomes
        PREVIOUS, so a second revert undoes the first.
        Raises ``Sealed``, ``AccessDenied``, ``NotFound``, ``ValidationError``, ``Conflict`` (no previous
        version), ``IntegrityError`` (a tampered version), ``StorageError``, ``AuditFailure``.
        """
        with on_secret(self._runner, "revert", name, environment, secret_id, AccessLevel.ROTATE) as (att, row):
            prev, current = row["previous_version"], row["current_version"]
            vrow = repos.versions.get_version(att.tx, row["id"], prev) if prev else None
            if vrow is None:
                raise Conflict(f"{att.environment}/{att.name} has no previous version to revert to")
            plain = self._versions.open_plain(att.tx, row, prev, vrow["ciphertext"])
            expiry = rot.certificate_expiry(plain[1:]) if row["secret_type"] == "certificate" else None
            new = self._versions.write(att, row, plain, cas=current,
                                    extra={"expires_at": int(expiry.timestamp() * US)} if expiry else None)
            att.reason = f"v{new} restores v{prev}; v{current} becomes previous"
            return new

    # -- due rotations (the scheduler's work) ----------------------------------------------------
    def rotate_due(self, limit: int = 100) -> rot.RotationRun:
        """Rotate up to ``limit`` due secrets, each once across every process sharing the database.

        Callers need the admin or rotator role (the cron command runs as the
        process owner). The rotations run as ``system:scheduler`` — rights from
        the built-in, revocable ``rotator`` rule — under a database lease, and
        each one re-checks ``next_rotation_at <= now`` in its own transaction.
        Raises ``Sealed``, ``AccessDenied`` (neither admin nor rotator), ``ValidationError`` (limit),
        ``StorageError``; a failing secret is reported in the run, not raised.
        """
        check_int(limit, "limit", 1, 1000)
        with self._runner.attempt("rotate_due", durable=False, audited=False) as att:
            if att.ctx.user_id != rot.SCHEDULER_PRINCIPAL:
                att.require_role("admin", rot.ROTATOR_ROLE)
        self._keep_keys_fresh()
        run = rot.RotationRun(lease=False)
        with Lease(self._storage, self._clock, rot.SCHEDULER_LEASE, self._lease_holder,
                   self.scheduler_lease_s) as lease:
            if not lease.held:
                return run
            run.lease = True
            with self._storage.transaction(write=False, durable=False) as tx:
                due = repos.secrets.due_secret_ids(tx, self._clock(), limit)
            with use_context(make_context(rot.SCHEDULER_PRINCIPAL)):
                for sid in due:
                    if not lease.renew():
                        break  # another process took over: it will see what is left
                    run.results.append(self._rotate_one_due(sid))
        return run

    def _rotate_one_due(self, sid: str) -> rot.RotationResult:
        try:
            version = self._rotate(sid, None, None, None, None, None, scheduled=True)
            return rot.RotationResult(sid, "rotated", version)
        except _NotDue:
            return rot.RotationResult(sid, "skipped", None, "no longer due")
        except VaultError as exc:  # recorded in the audit log already; the run goes on
            if isinstance(exc, (RotationFailed, AccessDenied, ValidationError, NotFound, Conflict)):
                self._push_back(sid)
            return rot.RotationResult(sid, "failed", None, str(exc)[:300])

    def _push_back(self, sid: str) -> None:
        """A failed scheduled rotation is retried later, not in a tight loop."""
        now = self._clock()
        with self._storage.transaction() as tx:
            repos.secrets.claim_due(tx, sid, now, now + self.rotation_retry_s * US)

    # -- schedule, reminders, history (the console's rotation page) ----------------------------------
    def rotation_schedule(self, days: int = 90, *, limit: int = 1000) -> list[dict[str, Any]]:
        """Secrets the caller may see whose rotation falls within ``days`` (overdue first).

        Raises ``Sealed``, ``AccessDenied`` (strict mode without a context), ``ValidationError``, ``StorageError``.
        """
        rows = self._visible_upcoming(days, 0, limit)
        out = [r for r in rows if r["next_rotation_at"] is not None]
        out.sort(key=lambda r: r["next_rotation_at"])
        return [rot.schedule_item(r, self._clock()) for r in out]

    def reminders(self) -> dict[str, list[dict[str, Any]]]:
        """Due and overdue rotations, expired secrets, those expiring within 7/30/90 days (``rotation.remind``).

        Raises ``Sealed``, ``AccessDenied`` (strict mode without a context), ``StorageError``.
        """
        return rot.remind(self._visible_upcoming(7, max(rot.REMINDER_WINDOWS), 1000), self._clock())

    def _visible_upcoming(self, rotate_days: int, expire_days: int, limit: int) -> list:
        check_int(rotate_days, "days", 0, 3650)
        with self._runner.attempt("reminders", durable=False, audited=False) as att:
            now = self._clock()
            rows = repos.secrets.upcoming(att.tx, now + rotate_days * US_PER_DAY, now + expire_days * US_PER_DAY, limit)
            return [r for r in rows if att.rules.has_any(att.ctx.user_id, att.roles, r["environment"], r["name"])]

    def rotation_history(self, secret_id: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """Rotations, staged steps, reverts and failures, newest first: who, when, versions, outcome.

        Admins and auditors see every row; others only rows of secrets they hold a level on.
        Raises ``Sealed``, ``AccessDenied`` (strict mode without a context), ``ValidationError``, ``StorageError``.
        """
        check_int(limit, "limit", 1, 1000)
        if secret_id is not None and (not isinstance(secret_id, str) or len(secret_id) > 64):
            raise ValidationError("secret_id must be a secret id string")
        with self._runner.attempt("rotation_history", durable=False, audited=False) as att:
            everything = bool(att.roles & {"admin", "auditor"})
            rows = repos.audit.rotation_events(att.tx, HISTORY_OPERATIONS, secret_id, limit)
            return [rot.history_item(r) for r in rows if everything or (r["environment"] and r["secret_name"] and
                    att.rules.has_any(att.ctx.user_id, att.roles, r["environment"], r["secret_name"]))]


HISTORY_OPERATIONS = ("rotate", "rotate_stage", "revert")
