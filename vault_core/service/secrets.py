"""Secrets: store, read, update (check-and-set), delete, restore, purge, list, metadata.

``SecretsService`` checks input and access and says what to write; the versions
themselves are written by ``VersionWriter`` (``service/versions.py``), the one writer.
"""

from __future__ import annotations

import json
import os
import secrets as pysecrets
from collections.abc import Iterable, Mapping
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from ..access import parse_levels
from ..errors import AccessDenied, Conflict, NotFound, ValidationError
from ..rotation import certificate_expiry
from ..storage import repos
from ..types import (US_PER_DAY, AccessLevel, Clock, Environment, Listing, Page, SecretMetadata, SecretType,
                     VersionInfo, to_datetime)
from ..validate import (canonical_name, canonical_principal, check_description, check_int, check_secret_id,
                        check_tags, check_text, to_us)
from .runner import NO_NAME, Attempt, Runner, environment_value
from .versions import VersionWriter

_UNSET: Any = object()
MAX_ROTATION_DAYS = 3650


def check_interval(days: Any) -> int | None:
    if days is None:
        return None
    return check_int(days, "rotation_interval_days", 1, MAX_ROTATION_DAYS)


def check_cas(cas: Any) -> int | None:
    if cas is None:
        return None
    return check_int(cas, "cas (a version number, 0 = create only)")


def metadata_from_row(row: Mapping[str, Any]) -> SecretMetadata:
    return SecretMetadata(
        id=row["id"], name=row["name"], environment=row["environment"], secret_type=row["secret_type"],
        description=row["description"], tags=() if row["tags"] == "[]" else tuple(json.loads(row["tags"])),
        current_version=row["current_version"], created_at=to_datetime(row["created_at"]),
        created_by=row["created_by"], updated_at=to_datetime(row["updated_at"]), updated_by=row["updated_by"],
        expires_at=to_datetime(row["expires_at"]), rotation_interval_days=row["rotation_interval_days"],
        next_rotation_at=to_datetime(row["next_rotation_at"]), last_rotated_at=to_datetime(row["last_rotated_at"]),
        deleted_at=to_datetime(row["deleted_at"]), generator=row["generator"],
        extra={"previous_version": row["previous_version"], "max_versions": row["max_versions"]})


class SecretsService:
    """Store, read and manage secrets; every call is one attempt of ``runner``."""

    def __init__(self, runner: Runner, versions: VersionWriter, clock: Clock):
        self._runner, self._versions, self._clock = runner, versions, clock

    def _policy_rules(self, att: Attempt, secret_id: str, policy: Any) -> None:
        """Turn the seed's ``access_policy={principal: [levels]}`` into rules for this secret."""
        if policy is None:
            return
        if not isinstance(policy, Mapping):
            raise ValidationError("access_policy must map principal names to lists of AccessLevel")
        parsed = []
        for principal, levels in policy.items():
            kind, subject = "any", principal
            if isinstance(principal, str) and principal.startswith(("user:", "role:")):
                kind, subject = principal.split(":", 1)
            parsed.append((kind, canonical_principal(subject), parse_levels(levels)))
        att.require(AccessLevel.ADMIN)  # granting is administration
        repos.rules.delete_rules_of_secret(att.tx, secret_id)
        for kind, subject, levels in parsed:
            repos.rules.insert_rule(att.tx, subject_kind=kind, subject=subject, environment=att.environment,
                                    pattern=att.name,
                                    levels=",".join(sorted(lv.value for lv in levels)), effect="allow",
                                    secret_id=secret_id, created_at=self._clock(), created_by=att.ctx.user_id,
                                    note="access_policy")
        repos.state.bump_rules_version(att.tx)

    # -- public API ------------------------------------------------------------------
    def store_secret(self, name: str, value: str | bytes, secret_type: SecretType | str = SecretType.GENERIC,
                     environment: Any = None, description: str = "", access_policy: Mapping | None = None,
                     rotation_interval_days: int | None = None, *, tags: Any = None,
                     expires_at: datetime | None = None, cas: int | None = None,
                     generator: str | None = None, max_versions: int = 20) -> str:
        """Create a secret, or write a new version of an existing one; returns the secret id.

        ``cas=0`` creates only; ``cas=N`` writes only if the current version is N
        (else ``Conflict``). Needs WRITE (and ADMIN to set ``access_policy``).
        Raises ``Sealed``, ``AccessDenied``, ``ValidationError`` (bad input, never echoing the value),
        ``Conflict`` (cas, a deleted secret), ``StorageError``, ``AuditFailure``.
        """
        with self._runner.checks("store", name=name, environment=environment):
            stype = SecretType.parse(secret_type)
            data = self._versions.encode(value)
            desc = check_description(description)
            tag_list = check_tags(tags)
            interval = check_interval(rotation_interval_days)
            expires = to_us(expires_at, "expires_at")
            if expires is None and stype is SecretType.CERTIFICATE:  # expiry from the certificate itself
                expires = to_us(certificate_expiry(value), "expires_at")
            cas = check_cas(cas)
            if generator is not None and (not isinstance(generator, str) or len(generator) > 128):
                raise ValidationError("generator must be the name of a registered generator")
            check_int(max_versions, "max_versions", 1, 1000)
        with self._runner.attempt("store", name=name, environment=environment) as att:
            att.require(AccessLevel.WRITE)
            row = locate(att, None)
            now = self._clock()
            meta = dict(secret_type=stype.value, description=desc, tags=json.dumps(list(tag_list)),
                        rotation_interval_days=interval, expires_at=expires,
                        next_rotation_at=now + interval * US_PER_DAY if interval else None)
            if generator is not None:
                meta["generator"] = generator
            if row is None:
                if cas not in (None, 0):
                    raise Conflict(f"check-and-set failed: {att.environment}/{att.name} does not exist")
                secret_id = pysecrets.token_hex(16)
                values = dict(id=secret_id, environment=att.environment, name=att.name, salt=os.urandom(16),
                              current_version=1, max_versions=max_versions, created_at=now,
                              created_by=att.ctx.user_id, updated_at=now, updated_by=att.ctx.user_id, **meta)
                self._versions.create(att, values, data)
            else:
                if row["deleted_at"] is not None:
                    raise Conflict(f"{att.environment}/{att.name} is deleted: restore or purge it first")
                if cas == 0:
                    raise Conflict(f"check-and-set failed: {att.environment}/{att.name} already exists")
                secret_id = row["id"]
                att.operation = "update"
                self._versions.retype(att, row, stype.value)
                self._versions.write(att, row, data, cas=cas, extra=meta)
            self._policy_rules(att, secret_id, access_policy)
            return secret_id

    def get_secret(self, name: str | None = None, environment: Any = None, *, secret_id: str | None = None,
                   version: int | None = None, label: str | None = None) -> str | bytes | None:
        """The value (str or bytes, as stored), or None when missing. Needs READ.

        ``version=N`` or ``label="current"|"previous"|"pending"`` read other versions.
        Raises ``Sealed``, ``AccessDenied``, ``NotFound`` (an unknown ``secret_id``), ``ValidationError``,
        ``IntegrityError`` (a tampered or moved ciphertext), ``StorageError``, ``AuditFailure``.
        """
        return self._read("read", name, environment, secret_id, version, label)

    def reveal_secret(self, name: str | None = None, environment: Any = None, *, secret_id: str | None = None,
                      version: int | None = None, label: str | None = None) -> str | bytes | None:
        """As ``get_secret``, audited as a human ``reveal`` (the console's explicit reveal).

        Raises as ``get_secret``.
        """
        return self._read("reveal", name, environment, secret_id, version, label)

    def read_listed(self, name: str, environment: Any, since: Listing | None) -> tuple[str | bytes | None, Listing]:
        """The current value of (environment, name), as ``get_secret`` reads and audits it, with the listing
        (``listing(environment, since)``) of the same snapshot: one transaction for a cache that saw a change.

        The value's version is the listing's entry for ``name`` (absent: the value is None). Raises as
        ``get_secret``.
        """
        with self._runner.attempt("read", name=name, environment=environment, durable=False) as att:
            att.require(AccessLevel.READ)
            value = self._current(att)
            listing = _listing(att, since)
            if value is not None and att.name not in listing.entries:  # a delta names only what changed
                row = att.current_row()
                listing.entries[att.name] = (row["current_version"], _tags(row["tags"]))
            return value, listing

    def listing(self, environment: Any = None, since: Listing | None = None) -> Listing:
        """The live secrets of ``environment`` the caller may READ, as a ``Listing``: with ``since`` (a
        listing this caller took before) only what changed after it when that is cheaper, else all.

        Metadata only: not audited (as ``secret_versions``). Raises ``Sealed``, ``AccessDenied`` (strict
        mode without a context), ``ValidationError``, ``StorageError``.
        """
        with self._runner.attempt("versions", environment=environment, durable=False, audited=False) as att:
            return _listing(att, since)

    def _current(self, att: Attempt) -> str | bytes | None:
        """The current value of the attempt's secret (None, recorded as not found, when it is gone)."""
        row = att.current_row()  # fetched with the vault state: one query on the hot path
        if row is None or row["deleted_at"] is not None:
            att.reason = "not found"
            return None
        att.secret_id, att.version = row["id"], row["current_version"]
        return self._versions.open(att.tx, row, row["current_version"], row["ciphertext"])

    def _read(self, operation: str, name, environment, secret_id, version, label) -> str | bytes | None:
        with self._runner.checks(operation, name=name, environment=environment):
            if version is not None:
                check_int(version, "version", 1)
            if label is not None and label not in ("current", "previous", "pending"):
                raise ValidationError("label must be current, previous or pending")
        env = environment if secret_id is None else None
        with self._runner.attempt(operation, name=name if secret_id is None else NO_NAME, environment=env,
                          durable=False) as att:
            if secret_id is None and version is None and label is None:
                att.require(AccessLevel.READ)
                return self._current(att)
            if secret_id is None:
                att.require(AccessLevel.READ)
            row = locate(att, secret_id)
            att.require(AccessLevel.READ)
            if row is None or row["deleted_at"] is not None:
                att.reason = "not found"
                return None
            wanted = version or {"current": row["current_version"], "previous": row["previous_version"],
                                 "pending": None}.get(label or "current")
            if label == "pending":
                versions = repos.versions.list_versions(att.tx, row["id"])
                wanted = next((v["version"] for v in versions if v["state"] == "pending"), None)
            vrow = repos.versions.get_version(att.tx, row["id"], wanted) if wanted else None
            if vrow is None:
                att.reason = "version not found"
                return None
            att.version = wanted
            return self._versions.open(att.tx, row, wanted, vrow["ciphertext"])

    def update_secret(self, name: str | None = None, environment: Any = None, *, secret_id: str | None = None,
                      value: Any = _UNSET, description: Any = _UNSET, tags: Any = _UNSET,
                      secret_type: Any = _UNSET, expires_at: Any = _UNSET, rotation_interval_days: Any = _UNSET,
                      cas: int | None = None) -> int:
        """Change the value (a new version) and/or metadata. Needs WRITE; returns the current version.

        Raises ``Sealed``, ``AccessDenied``, ``NotFound``, ``ValidationError``, ``Conflict`` (cas),
        ``StorageError``, ``AuditFailure``.
        """
        with self._runner.checks("update", name=name, environment=environment):
            cas = check_cas(cas)
            meta: dict[str, Any] = {}
            if description is not _UNSET:
                meta["description"] = check_description(description)
            if tags is not _UNSET:
                meta["tags"] = json.dumps(list(check_tags(tags)))
            if secret_type is not _UNSET:
                meta["secret_type"] = SecretType.parse(secret_type).value
            if expires_at is not _UNSET:
                meta["expires_at"] = to_us(expires_at, "expires_at")
            if rotation_interval_days is not _UNSET:
                interval = check_interval(rotation_interval_days)
                meta["rotation_interval_days"] = interval
                meta["next_rotation_at"] = self._clock() + interval * US_PER_DAY if interval else None
            data = None if value is _UNSET else self._versions.encode(value)
        with on_secret(self._runner, "update", name, environment, secret_id, AccessLevel.WRITE) as (att, row):
            if "secret_type" in meta:
                self._versions.retype(att, row, meta["secret_type"])
            if data is not None:
                stype = meta.get("secret_type", row["secret_type"])
                if "expires_at" not in meta and stype == SecretType.CERTIFICATE.value:
                    meta["expires_at"] = to_us(certificate_expiry(value), "expires_at") or row["expires_at"]
                return self._versions.write(att, row, data, cas=cas, extra=meta)
            if cas is not None and cas != row["current_version"]:
                raise Conflict(f"check-and-set failed: {att.environment}/{att.name} is at version "
                               f"{row['current_version']}, not {cas}")
            repos.secrets.update_secret(att.tx, row["id"], updated_at=self._clock(), updated_by=att.ctx.user_id, **meta)
            att.reason = "metadata"
            return row["current_version"]

    def delete_secret(self, name: str | None = None, environment: Any = None, *,
                      secret_id: str | None = None) -> None:
        """Soft delete (reads return None; ``restore_secret`` brings it back). Needs ADMIN.

        Raises ``Sealed``, ``AccessDenied``, ``NotFound`` (no live secret), ``ValidationError``, ``StorageError``.
        """
        with on_secret(self._runner, "delete", name, environment, secret_id, AccessLevel.ADMIN) as (att, row):
            self._versions.soft_delete(att, row)

    def restore_secret(self, name: str | None = None, environment: Any = None, *,
                       secret_id: str | None = None) -> None:
        """Undo a soft delete. Needs ADMIN.

        Raises ``Sealed``, ``AccessDenied``, ``NotFound`` (no deleted secret), ``ValidationError``, ``StorageError``.
        """
        with on_secret(self._runner, "restore", name, environment, secret_id, AccessLevel.ADMIN,
                       deleted=True) as (att, row):
            self._versions.undelete(att, row)

    def purge_secret(self, name: str | None = None, environment: Any = None, *,
                     secret_id: str | None = None) -> None:
        """Destroy the secret, every version and its policy rules. Needs ADMIN. Irreversible.

        Raises ``Sealed``, ``AccessDenied``, ``NotFound``, ``ValidationError``, ``StorageError``.
        """
        with on_secret(self._runner, "purge", name, environment, secret_id, AccessLevel.ADMIN,
                       deleted=None) as (att, row):
            self._versions.destroy(att, row)

    def list_secrets(self, environment: Any = None, secret_type: Any = None, *, tag: str | None = None,
                     prefix: str | None = None, search: str | None = None, limit: int = 100,
                     cursor: str | None = None, include_deleted: bool = False,
                     only_deleted: bool = False) -> Page:
        """Metadata of the secrets the caller holds any level on, by (environment, name), one page.

        Pass the returned page's ``next_cursor`` as ``cursor`` for the next page.
        Raises ``Sealed``, ``AccessDenied`` (strict mode without a context), ``ValidationError``, ``StorageError``.
        """
        check_int(limit, "limit", 1, 1000)
        envs = None if environment is None else [environment_value(environment)]
        stype = None if secret_type is None else SecretType.parse(secret_type).value
        pre = None if prefix is None or prefix == "" else _canonical_prefix(prefix)
        if search is not None:
            check_text(search, "search")
        if tag is not None:
            check_text(tag, "tag", 64)
        after = _parse_cursor(cursor)
        with self._runner.attempt("list", durable=False, audited=False) as att:
            out: list[SecretMetadata] = []
            # the first batch is one page; later ones grow, for callers who see few of the rows
            batch_size, scanned, exhausted = limit + 1, 0, False
            while len(out) < limit and not exhausted and scanned < 50 * limit + 10_000:
                batch = repos.secrets.list_secrets(att.tx, environments=envs, secret_type=stype, prefix=pre,
                                                   contains=(search or "").strip().lower() or None, tag=tag,
                                                   include_deleted=include_deleted, only_deleted=only_deleted,
                                                   after=after, limit=batch_size)
                exhausted = len(batch) < batch_size
                for i, row in enumerate(batch):
                    after = (row["environment"], row["name"])
                    if _sees(att, row["environment"], row["name"]):
                        out.append(metadata_from_row(row))
                        if len(out) == limit:
                            exhausted = exhausted and i == len(batch) - 1
                            break
                scanned += len(batch)
                batch_size = min(batch_size * 4, 2000)
            more = after is not None and not exhausted
            return Page(out, f"{after[0]}/{after[1]}" if more else None)

    @contextmanager
    def _visible(self, operation: str, name: Any, environment: Any, secret_id: str | None):
        """Yield (attempt, row or None) for a metadata read: any level on the secret (or auditor)."""
        by_id = secret_id is not None
        with self._runner.attempt(operation, name=NO_NAME if by_id else name, environment=None if by_id else environment,
                          durable=False, audited=False) as att:
            row = locate(att, secret_id)
            if not _sees(att, att.environment, att.name):
                raise AccessDenied(f"{att.ctx.user_id} holds no level on {att.environment}/{att.name}")
            yield att, row

    def get_metadata(self, name: str | None = None, environment: Any = None, *,
                     secret_id: str | None = None) -> SecretMetadata | None:
        """Metadata (never the value) of one secret the caller holds any level on; None when missing.

        Raises ``Sealed``, ``AccessDenied`` (no level on it), ``NotFound`` (unknown id), ``ValidationError``,
        ``StorageError``.
        """
        with self._visible("metadata", name, environment, secret_id) as (_att, row):
            return None if row is None else metadata_from_row(row)

    def list_versions(self, name: str | None = None, environment: Any = None, *,
                      secret_id: str | None = None) -> list[VersionInfo]:
        """The stored versions (number, state, who, when), newest first; never values.

        Raises as ``get_metadata``.
        """
        with self._visible("versions", name, environment, secret_id) as (att, row):
            if row is None:
                return []
            return [VersionInfo(v["version"], v["state"], to_datetime(v["created_at"]), v["created_by"])
                    for v in repos.versions.list_versions(att.tx, row["id"])]

    def secret_versions(self, environment: Any = None, names: Iterable[str] | None = None
                        ) -> dict[str, tuple[int, tuple[str, ...]]]:
        """``{name: (current_version, tags)}`` of the live secrets the caller may READ.

        Metadata only: not audited (the value reads that follow are). Names the
        caller may not READ are left out, as are missing ones. Raises ``Sealed``,
        ``AccessDenied`` (strict mode without a context), ``ValidationError``, ``StorageError``.
        """
        wanted = None if names is None else sorted({canonical_name(n) for n in names})
        with self._runner.attempt("versions", environment=environment, durable=False, audited=False) as att:
            return _readable(att, wanted)


def _tags(raw: str | None) -> tuple[str, ...]:
    return tuple(json.loads(raw)) if raw and raw != "[]" else ()


def _readable(att: Attempt, names: list[str] | None) -> dict[str, tuple[int, tuple[str, ...]]]:
    """{name: (current version, tags)} of the live secrets (of ``names``; all when None) the caller may READ."""
    env, user, roles = att.environment, att.ctx.user_id, att.roles
    evaluate = att.rules.evaluate  # (granted levels, ...): no Decision text per name
    return {name: (version, _tags(tags)) for name, version, tags in repos.secrets.live_versions(att.tx, env, names)
            if AccessLevel.READ in evaluate(user, roles, env, name)[0]}


def _listing(att: Attempt, since: Listing | None) -> Listing:
    """The attempt's environment listed (see ``SecretsService.listing``), in the attempt's transaction."""
    state = att.state
    token = (state["audit_seq"], bytes(state["audit_mac"]), state["rules_version"])
    changed = None
    if isinstance(since, Listing) and since.token[2] == token[2]:  # a rule or role change: list everything
        changed = repos.audit.changed_secret_names(att.tx, att.environment, since.token[0], since.token[1],
                                                   token[0])
    if changed is None:
        return Listing(_readable(att, None), True, token)
    entries: dict[str, Any] = dict.fromkeys(changed)
    if changed:
        entries.update(_readable(att, changed))
    return Listing(entries, False, token)


def locate(att: Attempt, secret_id: str | None) -> Mapping[str, Any] | None:
    """The row named by the attempt's (environment, name) or by ``secret_id`` (None: no such name).

    Records the secret on the attempt. Raises ``NotFound`` (no secret has that id), ``ValidationError``.
    """
    if secret_id is not None:
        row = repos.secrets.secret_by_id(att.tx, check_secret_id(secret_id))
        if row is None:
            raise NotFound("no secret has that id")
        att.environment, att.name = row["environment"], row["name"]
    else:
        if att.name is None:
            raise ValidationError("give a secret name or a secret_id")
        row = repos.secrets.find_secret(att.tx, att.environment, att.name)
    if row is not None:
        att.secret_id = row["id"]
        att.version = row["current_version"]
    return row


@contextmanager
def on_secret(runner: Runner, operation: str, name: Any, environment: Any, secret_id: str | None,
               level: AccessLevel, *, deleted: bool | None = False, **options: Any):
    """Yield (attempt, row) for an operation of ``runner`` on one secret named by name or by id.

    With a name the level is checked before the lookup, so a denial never
    depends on whether the secret exists. ``deleted`` asks for a live secret
    (False), a soft-deleted one (True) or either (None); else ``NotFound``.
    """
    by_id = secret_id is not None
    with runner.attempt(operation, name=NO_NAME if by_id else name, environment=None if by_id else environment,
                      **options) as att:
        if not by_id:
            att.require(level)
        row = locate(att, secret_id)
        att.require(level)
        if row is None or (deleted is not None and (row["deleted_at"] is not None) != deleted):
            state = {False: "live ", True: "deleted ", None: ""}[deleted]
            raise NotFound(f"no {state}secret {att.environment}/{att.name}")
        yield att, row


def _sees(att: Attempt, environment: str, name: str) -> bool:
    """May the caller see this secret's metadata? Any level on it, or the auditor role (metadata only)."""
    return "auditor" in att.roles or att.rules.has_any(att.ctx.user_id, att.roles, environment, name)


def _canonical_prefix(prefix: Any) -> str:
    """A name prefix may end in '.' or '/' (a folder); the rest is a canonical name."""
    if not isinstance(prefix, str):
        raise ValidationError("prefix must be a string")
    if prefix.endswith(("/", ".")):
        return canonical_name(prefix[:-1]) + prefix[-1]
    return canonical_name(prefix)


def _parse_cursor(cursor: Any) -> tuple[str, str] | None:
    if cursor is None:
        return None
    if not isinstance(cursor, str) or "/" not in cursor or len(cursor) > 300:
        raise ValidationError("cursor must be the next_cursor of a previous page")
    env, name = cursor.split("/", 1)
    try:
        return Environment.parse(env).value, canonical_name(name)
    except ValidationError:
        raise ValidationError("cursor must be the next_cursor of a previous page") from None

