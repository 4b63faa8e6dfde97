"""Machine identities: service principals that log in with AppRole credentials and get short-lived tokens.

A machine is a ``service`` principal plus its login settings (``machine_roles``): a public role id,
token TTL and max TTL, optional source CIDRs and a use count per secret id. Its secret ids and tokens
are random 256-bit values shown once; the database keeps their SHA-256 only (high-entropy values: a
keyed hash would add nothing). Every token stands for its principal: the vault's rules, evaluated at
each call, decide everything it may do. A token ends at its TTL (renewable up to the max TTL), when
revoked, when its machine is locked, disabled or its roles change (the principal's session epoch), or
when the machine is deleted.

AppRole logins go through the same reserve-then-check throttle as console logins
(``vault_core.lockout``): every attempt is counted in the database before its secret id is compared.
Managing machines needs the admin role; every step, login, renewal and revocation is audited.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import secrets as pysecrets
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from .. import lockout
from ..errors import AccountLocked, Conflict, LoginFailed, NotFound, Sealed, ValidationError
from ..storage.repos import machines as repo
from ..storage import repos
from ..context import make_context, use_context
from ..storage import Storage
from ..types import US, Clock
from .keys import KeyHolder
from .runner import Runner
from ..validate import canonical_principal, check_int, check_roles

TOKEN_PREFIX = "vct."
DEFAULT_TTL = 3600
DEFAULT_MAX_TTL = 24 * 3600
MAX_TTL = 32 * 24 * 3600
MAX_CREDENTIAL = 128  # characters of a role id, secret id or token we even look at
UNKNOWN_ROLE = "approle:unknown-role"  # the throttle's account for role ids that match nothing


@dataclass(frozen=True)
class MachineToken:
    """A valid token as the API sees it (no token inside)."""

    principal: str
    accessor: str
    created_at: int
    expires_at: int
    max_expires_at: int
    ttl: int  # the machine's configured TTL (seconds)


@dataclass(frozen=True)
class Issued:
    """A token just minted: ``token`` is shown once and never stored."""

    token: str
    info: MachineToken


def digest(value: str) -> str:
    """SHA-256 (hex) of a secret id or token: what the database keeps."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def check_cidrs(raw: Any) -> str:
    """Comma-separated CIDRs (or an iterable of them) as stored; raises ``ValidationError``."""
    parts = raw.split(",") if isinstance(raw, str) else list(raw or ())
    nets = []
    for part in parts:
        if not isinstance(part, str) or len(part) > 64:
            raise ValidationError("bound CIDRs must be short strings such as 10.0.0.0/8")
        if part.strip():
            try:
                nets.append(str(ipaddress.ip_network(part.strip(), strict=False)))
            except ValueError:
                raise ValidationError("a bound CIDR is not a network (e.g. 10.0.0.0/8 or fd00::/8)") from None
    return ",".join(nets)


def source_allowed(cidrs: str, ip: str | None) -> bool:
    """Is ``ip`` inside one of ``cidrs`` (always, when none are set)?"""
    if not cidrs:
        return True
    try:
        addr = ipaddress.ip_address(ip or "")
    except ValueError:
        return False
    return any(addr in ipaddress.ip_network(n) for n in cidrs.split(","))


def _credential(raw: Any, what: str) -> str:
    if not isinstance(raw, str) or not 8 <= len(raw) <= MAX_CREDENTIAL or not raw.isascii():
        raise ValidationError(f"{what} is missing or malformed")
    return raw


class MachinesService:
    """AppRole machines of one vault (``vault.machines``): every step an audited attempt of the runner."""

    def __init__(self, runner: Runner, storage: Storage, keys: KeyHolder, clock: Clock):
        self._runner, self._storage, self._keys, self._clock = runner, storage, keys, clock

    @property
    def _now(self) -> int:
        return self._clock()

    # -- administration (admin role; audited) ---------------------------------------------------
    def create_machine(self, name: str, *, token_ttl: int = DEFAULT_TTL, token_max_ttl: int = DEFAULT_MAX_TTL,
                       bound_cidrs: Any = "", secret_id_uses: int = 0, roles: Any = ()) -> str:
        """Create a service principal with AppRole login; returns its role id (public, not a secret).

        Grant it rules as any principal (``vault.grant(name, ...)``). Raises ``AccessDenied`` (not admin),
        ``ValidationError``, ``Conflict`` (the name exists), ``Sealed``, ``StorageError``.
        """
        principal = canonical_principal(name)
        ttl, max_ttl = self._ttls(token_ttl, token_max_ttl)
        cidrs = check_cidrs(bound_cidrs)
        uses = check_int(secret_id_uses, "secret_id_uses", 0, 1_000_000)
        role_list = check_roles(roles)
        role_id = str(uuid.uuid4())
        with self._runner.attempt("machine_create") as att:
            att.name = principal
            att.require_role("admin")
            if repos.principals.get_principal(att.tx, principal) is not None:
                raise Conflict(f"principal {principal} already exists")
            now = self._now
            repos.principals.insert_principal(att.tx, name=principal, kind="service", display_name="machine",
                                              roles=json.dumps(role_list), created_at=now, updated_at=now)
            repo.insert_role(att.tx, principal=principal, role_id=role_id, token_ttl=ttl, token_max_ttl=max_ttl,
                             bound_cidrs=cidrs, secret_id_uses=uses, created_at=now, updated_at=now)
            repos.state.bump_rules_version(att.tx)
            att.reason = f"ttl={ttl}s max_ttl={max_ttl}s cidrs={cidrs or 'any'} uses={uses or 'unlimited'}"
        return role_id

    def update_machine(self, name: str, *, token_ttl: int | None = None, token_max_ttl: int | None = None,
                       bound_cidrs: Any = None, secret_id_uses: int | None = None) -> None:
        """Change a machine's login settings (tokens already issued keep their times).

        Raises ``AccessDenied``, ``ValidationError``, ``NotFound``, ``Sealed``, ``StorageError``.
        """
        with self._admin("machine_update", name) as (att, row):
            ttl, max_ttl = self._ttls(row["token_ttl"] if token_ttl is None else token_ttl,
                                      row["token_max_ttl"] if token_max_ttl is None else token_max_ttl)
            values = dict(token_ttl=ttl, token_max_ttl=max_ttl, updated_at=self._now)
            if bound_cidrs is not None:
                values["bound_cidrs"] = check_cidrs(bound_cidrs)
            if secret_id_uses is not None:
                values["secret_id_uses"] = check_int(secret_id_uses, "secret_id_uses", 0, 1_000_000)
            repo.update_role(att.tx, row["principal"], **values)
            att.reason = ", ".join(f"{k}={v}" for k, v in values.items() if k != "updated_at")

    def new_secret_id(self, name: str, *, revoke_others: bool = False) -> str:
        """Issue a secret id (shown once: only its hash is kept). ``revoke_others`` makes it a rotation.

        Raises ``AccessDenied``, ``ValidationError``, ``NotFound``, ``Sealed``, ``StorageError``.
        """
        secret_id = pysecrets.token_urlsafe(32)
        with self._admin("machine_secret_rotate" if revoke_others else "machine_secret_issue", name) as (att, row):
            now = self._now
            ended = repo.revoke_secret_ids(att.tx, row["principal"], now) if revoke_others else 0
            accessor = pysecrets.token_hex(8)
            repo.insert_secret_id(att.tx, id=digest(secret_id), accessor=accessor, principal=row["principal"],
                                  created_at=now, uses_left=row["secret_id_uses"] or None)
            att.reason = f"secret id {accessor}" + (f"; {ended} older one(s) revoked" if revoke_others else "")
        return secret_id

    def revoke_machine_tokens(self, name: str) -> int:
        """Revoke every token of a machine (they fail at their next call); returns how many.

        Raises ``AccessDenied``, ``ValidationError``, ``NotFound``, ``Sealed``, ``StorageError``.
        """
        with self._admin("machine_tokens_revoke", name) as (att, row):
            ended = repo.revoke_tokens_of(att.tx, row["principal"], self._now)
            att.reason = f"{ended} token(s) revoked"
        return ended

    def delete_machine(self, name: str) -> None:
        """Delete a machine's login, secret ids and tokens, and disable its principal (its rules stay).

        Raises ``AccessDenied``, ``ValidationError``, ``NotFound``, ``Sealed``, ``StorageError``.
        """
        with self._admin("machine_delete", name) as (att, row):
            principal = repos.principals.get_principal(att.tx, row["principal"])
            repo.delete_role(att.tx, row["principal"])
            repos.principals.update_principal(att.tx, row["principal"], disabled=True, updated_at=self._now,
                                              session_epoch=principal["session_epoch"] + 1)

    def list_machines(self) -> list[dict[str, Any]]:
        """Every machine: name, role id, TTLs, CIDRs, uses, live secret ids and tokens (never a secret).

        Raises ``AccessDenied`` (not admin), ``Sealed``, ``StorageError``.
        """
        with self._runner.attempt("machine_list", durable=False, audited=False) as att:
            att.require_role("admin")
            return [{"name": r["principal"], "role_id": r["role_id"], "token_ttl": r["token_ttl"],
                     "token_max_ttl": r["token_max_ttl"], "bound_cidrs": r["bound_cidrs"],
                     "secret_id_uses": r["secret_id_uses"], "secret_ids": int(r["secret_ids"]),
                     "tokens": int(r["tokens"])} for r in repo.list_roles(att.tx, self._now)]

    @contextmanager
    def _admin(self, operation: str, name: str) -> Iterator[tuple[Any, Any]]:
        """An audited admin attempt on an existing machine: yields (attempt, its machine_roles row)."""
        principal = canonical_principal(name)
        with self._runner.attempt(operation) as att:
            att.name = principal
            att.require_role("admin")
            row = repo.get_role(att.tx, principal)
            if row is None:
                raise NotFound(f"no machine {principal}")
            yield att, row

    @staticmethod
    def _ttls(ttl: Any, max_ttl: Any) -> tuple[int, int]:
        ttl = check_int(ttl, "token_ttl (seconds)", 1, MAX_TTL)
        max_ttl = check_int(max_ttl, "token_max_ttl (seconds)", 1, MAX_TTL)
        if ttl > max_ttl:
            raise ValidationError("token_ttl must not exceed token_max_ttl")
        return ttl, max_ttl

    # -- login and tokens (no security context needed; audited as the machine) ---------------------
    def login(self, role_id: Any, secret_id: Any, ip: str | None = None, ua: str | None = None, *,
              forwarded_for: str | None = None, forwarded_trusted: bool = False) -> Issued:
        """Exchange AppRole credentials for a token.

        Raises ``ValidationError`` (malformed credentials, counted as nothing), ``LoginFailed`` (unknown role,
        wrong, revoked or spent secret id, or a source outside the bound CIDRs), ``AccountLocked`` (the
        throttle refused the attempt before any check), ``Sealed``, ``StorageError``.
        """
        if self._keys.sealed:
            raise Sealed("the vault is sealed")
        role_id, secret_id = _credential(role_id, "role_id"), _credential(secret_id, "secret_id")
        with self._storage.transaction(write=False) as tx:
            role = repo.role_by_role_id(tx, role_id)
        account = role["principal"] if role is not None else UNKNOWN_ROLE
        with use_context(make_context(account, ip, ua, (), None, forwarded_for, forwarded_trusted)):
            attempt_id, source = self._reserve(account, ip)
            ok, why = False, "unknown role id"
            if role is not None:
                ok, why = self._check_secret_id(role, secret_id, ip)
            with self._storage.transaction(durable=False) as tx:
                repos.users.settle_attempt(tx, attempt_id, account, source, ok)
            if not ok:
                self._runner.record_event("approle_login", "denied", why)
                raise LoginFailed("invalid role or secret ID")
            issued = self._mint(role, ip)
            self._runner.record_event("approle_login", "allowed", f"token {issued.info.accessor}")
        return issued

    def _reserve(self, account: str, ip: str | None) -> tuple[int, str]:
        """Count this attempt before any check (``vault_core.lockout``); raises ``AccountLocked`` (audited)."""
        source, now = lockout.source_of(ip), self._now
        with self._storage.transaction(durable=False) as tx:
            repos.state.get_state(tx, lock=True)  # serialises reservations on PostgreSQL
            principal = repos.principals.get_principal(tx, account)
            counts = lockout.Counts(*repos.users.attempt_counts(
                tx, account, source, source_since=now - lockout.SOURCE_WINDOW_US,
                account_since=now - lockout.ACCOUNT_WINDOW_US))
            refused = lockout.refused_until(counts, now, principal["locked_until"] if principal else None)
            if refused is None:
                return repos.users.add_attempt(tx, account, source, now), source
        until, why = refused
        self._runner.record_event("approle_login", "denied", f"throttled: {why}, until {lockout.until_text(until)}")
        raise AccountLocked(f"too many failed logins: {why}; try again after {lockout.until_text(until)}")

    def _check_secret_id(self, role, secret_id: str, ip: str | None) -> tuple[bool, str]:
        with self._storage.transaction() as tx:
            row = repo.get_secret_id(tx, digest(secret_id))
            principal = repos.principals.get_principal(tx, role["principal"])
            if row is None or not hmac.compare_digest(row["principal"], role["principal"]):
                return False, "wrong secret id"
            if row["revoked_at"] is not None:
                return False, f"secret id {row['accessor']} was revoked"
            if principal is None or principal["disabled"]:
                return False, "the machine is disabled"
            if not source_allowed(role["bound_cidrs"], ip):
                return False, f"source address outside the bound CIDRs ({role['bound_cidrs']})"
            if not repo.use_secret_id(tx, row["id"]):
                return False, f"secret id {row['accessor']} has no uses left"
        return True, ""

    def _mint(self, role, ip: str | None) -> Issued:
        token = TOKEN_PREFIX + pysecrets.token_urlsafe(32)
        now = self._now
        info = MachineToken(role["principal"], pysecrets.token_hex(12), now, now + role["token_ttl"] * US,
                            now + role["token_max_ttl"] * US, role["token_ttl"])
        with self._storage.transaction() as tx:
            repo.prune_tokens(tx, now - DEFAULT_MAX_TTL * US)
            principal = repos.principals.get_principal(tx, role["principal"])
            repo.insert_token(tx, id=digest(token), accessor=info.accessor, principal=info.principal,
                              epoch=principal["session_epoch"], created_at=now, expires_at=info.expires_at,
                              max_expires_at=info.max_expires_at, client_ip=(ip or "")[:64] or None)
        return Issued(token, info)

    def check_token(self, token: Any) -> MachineToken | None:
        """The live token ``token`` stands for, or None (unknown, expired, revoked, machine locked/changed).

        Raises ``Sealed``, ``StorageError``.
        """
        if not isinstance(token, str) or not token.startswith(TOKEN_PREFIX) or len(token) > MAX_CREDENTIAL:
            return None
        now = self._now
        with self._storage.transaction(write=False) as tx:
            row = repo.token_with_principal(tx, digest(token))
        if (row is None or row["revoked_at"] is not None or row["expires_at"] <= now
                or row["disabled"] or (row["locked_until"] or 0) > now or row["epoch"] != row["session_epoch"]):
            return None
        return MachineToken(row["principal"], row["accessor"], row["created_at"], row["expires_at"],
                            row["max_expires_at"], row["token_ttl"])

    def renew(self, token: str, increment: int | None = None) -> MachineToken:
        """Extend a live token by ``increment`` seconds (default: its TTL), never past its max TTL.

        Raises ``NotFound`` (not a live token), ``ValidationError``, ``Sealed``, ``StorageError``. Audited.
        """
        info = self.check_token(token)
        if info is None:
            raise NotFound("not a live token")
        step = info.ttl if increment is None else check_int(increment, "increment (seconds)", 1, MAX_TTL)
        expires = min(self._now + step * US, info.max_expires_at)
        with self._storage.transaction() as tx:
            repo.extend_token(tx, digest(token), expires)
        with use_context(make_context(info.principal)):  # the token's holder is the caller
            self._runner.record_event("token_renew", "allowed", f"token {info.accessor}")
        return MachineToken(info.principal, info.accessor, info.created_at, expires, info.max_expires_at, info.ttl)

    def revoke(self, token: str) -> bool:
        """Revoke a token (its next call fails). False if it was not live. Raises ``Sealed``, ``StorageError``.

        Audited.
        """
        info = self.check_token(token)
        if info is None:
            return False
        with self._storage.transaction() as tx:
            repo.revoke_token(tx, digest(token), self._now)
        with use_context(make_context(info.principal)):  # the token's holder is the caller
            self._runner.record_event("token_revoke", "allowed", f"token {info.accessor}")
        return True
