"""TOTP two-factor for console users: enrolment, codes at login, recovery codes, the per-role policy.

* A user enrols themself (``enrol_two_factor``): a fresh secret, sealed under the barrier bound to
  the user (``sealer.seal_bound("totp", user, ...)``), is stored *pending*; the secret, its
  ``otpauth://`` URI and QR code are returned once. ``confirm_two_factor`` with a first code turns it
  on, ends the user's sessions (made with the password alone) and returns ten recovery codes, once;
  only their keyed hashes are stored.
* From then on a login needs a code (``UsersService.verify_login``): each time step is accepted once
  (a compare-and-set on ``last_step``), a recovery code once (a compare-and-set on ``used_at``). Wrong
  codes are reserved and counted by the same throttle as passwords.
* An admin can require two-factor for a role (``require_two_factor``). Without a setting of its own,
  ``admin`` requires it as soon as any admin has enrolled. A user who must have it but has not
  enrolled gets a session for the Account page only, to enrol (``ConsoleSession.must_enrol_two_factor``).
* An admin resets a user's enrolment (``reset_two_factor``, audited; the user's sessions end).

The secret and the codes never reach a log, an audit row or an exception.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from typing import Any

from .. import totp
from ..crypto import sealer
from ..errors import AccessDenied, Conflict, NotFound, ValidationError
from ..storage import Storage, repos
from ..storage.tx import Tx
from ..types import Clock
from ..validate import canonical_principal, check_roles
from .keys import KeyHolder
from .runner import Runner

PURPOSE = "totp"


class TwoFactorService:
    """Enrolment, codes and the policy. ``derive(label)`` gives a key derived from the vault's keys."""

    def __init__(self, runner: Runner, storage: Storage, keys: KeyHolder, clock: Clock,
                 derive: Callable[[bytes], bytes]):
        self._runner, self._storage, self._keys, self._clock, self._derive = runner, storage, keys, clock, derive

    def _recovery_hash(self, user: str, code: str) -> str:
        return totp.recovery_hash(self._derive(b"recovery-code/v1"), user, code)

    # -- a user's own enrolment ------------------------------------------------------------------
    def enrol_two_factor(self, name: str) -> dict[str, str]:
        """Start (or restart) one's own enrolment: ``{"secret", "uri", "qr_svg"}``, shown once.

        The enrolment stays pending until ``confirm_two_factor``. Raises ``Sealed``, ``AccessDenied``
        (not the user themself), ``Conflict`` (two-factor is already on: reset or disable it first),
        ``ValidationError``, ``StorageError``.
        """
        user = canonical_principal(name)
        barrier = self._keys.get().barrier
        secret = totp.new_secret()
        with self._runner.attempt("two_factor_enrol") as att:
            att.name = user
            if att.ctx.user_id != user:
                raise AccessDenied("only the user themself can enrol a second factor")
            if repos.principals.get_principal(att.tx, user) is None:
                raise NotFound(f"no user {user}")
            old = repos.users.get_two_factor(att.tx, user)
            if old is not None and old["confirmed_at"] is not None:
                raise Conflict("two-factor is already on for this user; turn it off first")
            salt = os.urandom(16)
            blob = sealer.seal_bound(barrier, PURPOSE, user, salt, secret.encode())
            repos.users.put_two_factor(att.tx, user, salt=salt, secret=blob, key_term=barrier.term_of(blob),
                                       created_at=self._clock())
            repos.keys.count_encryptions(att.tx, barrier.term_of(blob), 1)
            att.reason = "pending until confirmed with a first code"
        uri = totp.provisioning_uri(secret, user)
        return {"secret": secret, "uri": uri, "qr_svg": totp.qr_svg(uri)}

    def confirm_two_factor(self, name: str, code: str) -> list[str]:
        """Turn a pending enrolment on with a first code; returns ten recovery codes (shown once).

        Every session of the user ends (they were made with the password alone): log in again with a code.

        Raises ``Sealed``, ``AccessDenied`` (not the user themself), ``NotFound`` (nothing pending),
        ``ValidationError`` (a wrong code: nothing changes), ``StorageError``.
        """
        user = canonical_principal(name)
        codes = totp.new_recovery_codes()
        with self._runner.attempt("two_factor_confirm") as att:
            att.name = user
            if att.ctx.user_id != user:
                raise AccessDenied("only the user themself can confirm their second factor")
            row = repos.users.get_two_factor(att.tx, user)
            if row is None or row["confirmed_at"] is not None:
                raise NotFound("no pending two-factor enrolment: start one first")
            step = totp.accepted_step(self._secret(row), code, last_step=None, now=self._clock() / 1e6)
            if step is None:
                raise ValidationError("that code is not the current one of the authenticator app")
            now = self._clock()
            repos.users.confirm_two_factor(att.tx, user, step, now)
            repos.users.put_recovery_codes(att.tx, user, [self._recovery_hash(user, c) for c in codes])
            # sessions made with the password alone (anyone's who knew it) end: the next login needs a code
            principal = repos.principals.get_principal(att.tx, user)
            repos.principals.update_principal(att.tx, user, updated_at=now,
                                              session_epoch=principal["session_epoch"] + 1)
            ended = repos.users.revoke_sessions_of(att.tx, user, now)
            att.reason = f"on; {len(codes)} recovery codes issued; {ended} session(s) ended"
        return codes

    def two_factor_status(self, name: str | None = None) -> list[dict[str, Any]]:
        """Per user: ``enrolled`` (on), ``pending``, ``required`` and ``recovery_codes_left``; of one user
        (admins, or the user themself) or of every user (admins). Raises ``Sealed``, ``AccessDenied``,
        ``ValidationError``, ``StorageError``."""
        user = None if name is None else canonical_principal(name)
        with self._runner.attempt("two_factor_status", durable=False, audited=False) as att:
            if user is None or user != att.ctx.user_id:
                att.require_role("admin")
            rows = [p for p in repos.principals.list_principals(att.tx) if p["kind"] == "user"
                    and (user is None or p["name"] == user)]
            return [self.status_of(att.tx, p["name"], json.loads(p["roles"])) for p in rows]

    def status_of(self, tx: Tx, user: str, roles: Iterable[str]) -> dict[str, Any]:
        """One ``two_factor_status`` row, read in ``tx``. Raises ``StorageError``."""
        row = repos.users.get_two_factor(tx, user)
        on = row is not None and row["confirmed_at"] is not None
        return {"user": user, "enrolled": on, "pending": row is not None and not on,
                "required": self.required(tx, roles),
                "recovery_codes_left": repos.users.recovery_codes_left(tx, user) if on else 0}

    # -- codes -------------------------------------------------------------------------------------
    def _secret(self, row) -> str:
        return sealer.open_bound(self._keys.get().barrier, PURPOSE, row["principal"], row["salt"],
                                 row["secret"]).decode()

    def enrolled(self, user: str) -> bool:
        """Whether ``user`` has two-factor on (a login then needs a code). Raises ``StorageError``."""
        with self._storage.transaction(write=False) as tx:
            row = repos.users.get_two_factor(tx, user)
        return row is not None and row["confirmed_at"] is not None

    def accept(self, user: str, code: Any) -> str | None:
        """Spend ``code`` (a TOTP code or a recovery code) of ``user``: "totp", "recovery code", or None.

        A code is accepted once: its time step, or the recovery code, is marked used in the same
        compare-and-set that accepts it. Raises ``Sealed``, ``IntegrityError``, ``StorageError``.
        """
        if not isinstance(code, str) or len(code) > 64:
            return None
        with self._storage.transaction(write=False) as tx:
            row = repos.users.get_two_factor(tx, user)
        if row is None or row["confirmed_at"] is None:
            return None
        now = self._clock()
        step = totp.accepted_step(self._secret(row), code, last_step=row["last_step"], now=now / 1e6)
        with self._storage.transaction(durable=False) as tx:
            if step is not None:
                return "totp" if repos.users.use_step(tx, user, step) else None
            return "recovery code" if repos.users.use_recovery_code(
                tx, user, self._recovery_hash(user, code), now) else None

    # -- policy ------------------------------------------------------------------------------------
    def required(self, tx: Tx, roles: Iterable[str]) -> bool:
        """Whether a user with ``roles`` must use two-factor (the roles' settings, ``admin``'s default).

        Raises ``StorageError``.
        """
        roles = set(roles)
        if not roles:
            return False
        policy = repos.users.two_factor_roles_policy(tx)
        if any(policy.get(r) for r in roles):
            return True
        return "admin" in roles and "admin" not in policy and repos.users.admin_enrolled(tx)

    def require_two_factor(self, role: str, required: bool = True) -> None:
        """Require (or stop requiring) two-factor for every user with ``role``. Needs the admin role.

        Raises ``Sealed``, ``AccessDenied``, ``ValidationError`` (a bad role name), ``StorageError``.
        """
        (role,) = check_roles([role])
        with self._runner.attempt("two_factor_policy") as att:
            att.require_role("admin")
            repos.users.set_two_factor_role(att.tx, role, bool(required), self._clock(), att.ctx.user_id)
            att.reason = f"role {role}: two-factor {'required' if required else 'optional'}"

    def two_factor_policy(self) -> dict[str, bool]:
        """Role → required, for every role with a setting, and ``admin`` with its default.

        Raises ``Sealed``, ``AccessDenied`` (not admin), ``StorageError``.
        """
        with self._runner.attempt("two_factor_policy_read", durable=False, audited=False) as att:
            att.require_role("admin")
            policy = repos.users.two_factor_roles_policy(att.tx)
            policy.setdefault("admin", repos.users.admin_enrolled(att.tx))
            return policy

    # -- removal -----------------------------------------------------------------------------------
    def remove(self, operation: str, user: str, *, admin: bool) -> None:
        """Delete ``user``'s enrolment and recovery codes and end their sessions (audited as ``operation``).

        Raises ``Sealed``, ``AccessDenied`` (``admin`` and the caller is not one), ``NotFound``, ``StorageError``.
        """
        with self._runner.attempt(operation) as att:
            att.name = user
            if admin:
                att.require_role("admin")
            row = repos.principals.get_principal(att.tx, user)
            if row is None:
                raise NotFound(f"no user {user}")
            had = repos.users.delete_two_factor(att.tx, user)
            now = self._clock()
            repos.principals.update_principal(att.tx, user, updated_at=now, session_epoch=row["session_epoch"] + 1)
            ended = repos.users.revoke_sessions_of(att.tx, user, now)
            att.reason = f"{'enrolment removed' if had else 'was not enrolled'}; {ended} session(s) ended"


def status_label(status: dict[str, Any] | None) -> str:
    """One ``two_factor_status`` row in words: ``on (9 recovery codes left)``, ``pending``,
    ``required, not enrolled`` or ``off`` ('' for none: a service principal)."""
    if status is None:
        return ""
    if status["enrolled"]:
        return f"on ({status['recovery_codes_left']} recovery codes left)"
    return "pending" if status["pending"] else ("required, not enrolled" if status["required"] else "off")


def reseal_secrets(tx: Tx, barrier, target: int) -> int:
    """Re-seal every TOTP secret under a term older than ``target`` with the active term; how many
    (``RekeyService.reencrypt`` calls it before retiring terms). Raises ``IntegrityError``, ``StorageError``."""
    n = 0
    for row in repos.users.two_factor_below(tx, target):
        plain = sealer.open_bound(barrier, PURPOSE, row["principal"], row["salt"], row["secret"])
        blob = sealer.seal_bound(barrier, PURPOSE, row["principal"], row["salt"], plain)
        if repos.users.reseal_two_factor(tx, row["principal"], row["key_term"], blob, barrier.term_of(blob)):
            repos.keys.count_encryptions(tx, barrier.term_of(blob), 1)
            n += 1
    return n
