"""Console users: passwords, logins, server-side sessions, lockout.

Passwords are bcrypt hashes in ``principals.password_hash``. A login returns a random
session token; the database keeps only a keyed hash of it, with the
principal's ``session_epoch`` at login. A session is valid while it is not
expired nor revoked and its epoch still equals the principal's, so logout,
password change, lock, ``end_sessions`` and role changes (``set_roles`` bumps
the epoch) all end older cookies. A user with TOTP two-factor on
(``service/two_factor.py``) needs a code after the password: ``verify_login``
raises ``SecondFactorRequired`` with a short-lived signed ticket for
``complete_login``; codes are throttled like passwords. Every password check — a login or a
current-password check — is reserved in the database before bcrypt runs
(``vault_core.lockout`` has the limits, per account and per source address),
in every process sharing the database. Unknown names cost one bcrypt check
against a dummy hash, like real ones. New passwords follow
``vault_core.passwords``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets as pysecrets
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import bcrypt

from .. import lockout
from ..context import SecurityContext, current_context, make_context
from ..errors import AccessDenied, AccountLocked, LoginExpired, LoginFailed, NotFound, SecondFactorRequired
from ..errors import ValidationError
from ..passwords import check_new_password, password_bytes
from ..types import US_PER_MIN
from ..validate import canonical_principal
from ..storage import repos
from ..storage import Storage
from ..types import Clock
from .access import AccessService
from .keys import KeyHolder
from .runner import Runner
from .two_factor import TwoFactorService

SESSION_US = 12 * 60 * US_PER_MIN
LOCKED_FOREVER = lockout.ADMIN_LOCK_US
TICKET_US = 5 * US_PER_MIN  # between the password step and the code step of a two-factor login

_dummy_hashes: dict[int, bytes] = {}
_dummy_lock = threading.Lock()


@dataclass(frozen=True)
class ConsoleSession:
    """A valid console session as the router sees it (no token inside)."""

    user: str
    roles: tuple[str, ...]
    session_id: str  # a short public id for the audit log, not a credential
    must_change_password: bool
    display_name: str = ""
    must_enrol_two_factor: bool = False  # a role requires two-factor and the user has none: Account page only


class UsersService:
    """Users of the console and their sessions. Managing others needs the admin role."""

    def __init__(self, runner: Runner, storage: Storage, keys: KeyHolder, clock: Clock, access: AccessService):
        self._runner, self._storage, self._keys, self._clock, self._access = runner, storage, keys, clock, access
        self.bcrypt_rounds = 12  # tests lower it; the dummy hash always uses the same cost
        self.two_factor = TwoFactorService(runner, storage, keys, clock, self._derived)

    # -- keys and hashes --------------------------------------------------------------
    def _derived(self, label: bytes) -> bytes:
        keys = self._keys.get()
        base = keys.cookie_key or keys.audit_key  # vaults made before the cookie key existed
        return hmac.new(base, b"vault/console/" + label, hashlib.sha256).digest()

    def console_cookie_secret(self) -> str:
        """The key that signs the console's login cookie (derived from the vault's cookie key).

        Raises ``Sealed``.
        """
        return self._derived(b"cookie-jwt/v1").hex()

    def _session_id(self, token: str) -> str:
        return hmac.new(self._derived(b"session-id/v1"), token.encode(), hashlib.sha256).hexdigest()

    def _hash(self, data: bytes) -> str:
        return bcrypt.hashpw(data, bcrypt.gensalt(self.bcrypt_rounds)).decode()

    def _dummy(self) -> bytes:
        with _dummy_lock:
            if self.bcrypt_rounds not in _dummy_hashes:
                _dummy_hashes[self.bcrypt_rounds] = bcrypt.hashpw(pysecrets.token_bytes(16),
                                                                  bcrypt.gensalt(self.bcrypt_rounds))
            return _dummy_hashes[self.bcrypt_rounds]

    def _login_ctx(self, user: str, ip: str | None, ua: str | None, **extra: Any):
        return make_context(user, ip, ua, (), extra.get("session_id"), extra.get("forwarded_for"),
                            extra.get("forwarded_trusted", False))

    # -- login / session / logout (no security context needed) -----------------------------
    def verify_login(self, name: str, password: str, ip: str | None = None, ua: str | None = None, *,
                     code: str | None = None, forwarded_for: str | None = None,
                     forwarded_trusted: bool = False) -> str:
        """Check a password (and, for a user with two-factor on, ``code``); return a new session token.

        Without ``code``, a user with two-factor on gets ``SecondFactorRequired``, whose ``ticket`` and a
        code go to ``complete_login``. Raises ``LoginFailed`` for a wrong name, password or code,
        ``AccountLocked`` (saying until when) when the throttle refuses the attempt without checking it,
        ``ValidationError`` for a password that is not text or longer than bcrypt takes (counted as
        nothing), ``Sealed``, ``StorageError``.
        """
        self._keys.get()  # refused while sealed, before any work
        data = password_bytes(password)
        dummy = self._dummy()  # made before any check, so no path pays for it alone
        fwd = dict(forwarded_for=forwarded_for, forwarded_trusted=forwarded_trusted)
        try:
            user = canonical_principal(name)
        except ValidationError:
            bcrypt.checkpw(data, dummy)  # same cost as a real check
            self._runner.record(self._login_ctx("invalid-username", ip, ua, **fwd), "login", "denied",
                                "malformed user name")
            raise LoginFailed("wrong user name or password") from None
        ctx = self._login_ctx(user, ip, ua, **fwd)
        second = self.two_factor.enrolled(user)
        # a right password of a two-factor user forgets no failures: else it would reset the code guesses
        ok, row = self._throttled_check(ctx, "login", user, self._password_check(data), final=not second)
        if not ok:
            self._runner.record(ctx, "login", "denied", "wrong password" if row is not None else "unknown user")
            raise LoginFailed("wrong user name or password")
        if not second:
            return self._new_session(ctx, user, row, "password", ip, ua, fwd)
        if code is None:
            self._runner.record(ctx, "login", "denied", "password accepted; a two-factor code is needed")
            raise SecondFactorRequired("a two-factor code is needed", ticket=self._ticket(user, row))
        return self._code_step(ctx, user, code, ip, ua, fwd)

    def complete_login(self, name: str, ticket: Any, code: Any, ip: str | None = None, ua: str | None = None, *,
                       forwarded_for: str | None = None, forwarded_trusted: bool = False) -> str:
        """The second step of a two-factor login: the ``SecondFactorRequired`` ticket and a code (TOTP or
        recovery); returns a new session token.

        Raises ``LoginFailed`` (a wrong code), ``LoginExpired`` (a ticket that is forged, expired or older
        than a password change or lock: log in again), ``AccountLocked`` (the throttle refused the code
        unchecked), ``Sealed``, ``StorageError``.
        """
        self._keys.get()
        fwd = dict(forwarded_for=forwarded_for, forwarded_trusted=forwarded_trusted)
        user = self._ticket_user(name, ticket)
        if user is None:
            raise LoginExpired("the login has expired: enter your user name and password again")
        return self._code_step(self._login_ctx(user, ip, ua, **fwd), user, code, ip, ua, fwd)

    def _code_step(self, ctx: SecurityContext, user: str, code: Any, ip, ua, fwd) -> str:
        kind: list[str | None] = [None]

        def check(row) -> bool:
            kind[0] = self.two_factor.accept(user, code) if row is not None and not row["disabled"] else None
            return kind[0] is not None

        ok, row = self._throttled_check(ctx, "login", user, check)
        if not ok:
            self._runner.record(ctx, "login", "denied", "wrong two-factor code")
            raise LoginFailed("wrong or already used two-factor code")
        return self._new_session(ctx, user, row, f"password and {kind[0]}", ip, ua, fwd)

    def _new_session(self, ctx: SecurityContext, user: str, row, how: str, ip, ua, fwd) -> str:
        now = self._clock()
        token = pysecrets.token_urlsafe(32)
        sid = self._session_id(token)
        with self._storage.transaction() as tx:
            repos.users.prune_sessions(tx, now - SESSION_US)  # ended over a session lifetime ago: forgotten
            repos.users.insert_session(tx, id=sid, principal=user, created_at=now, expires_at=now + SESSION_US,
                                       epoch=row["session_epoch"], client_ip=ctx.ip_address, user_agent=ctx.user_agent)
        self._runner.record(self._login_ctx(user, ip, ua, session_id=sid[:16], **fwd), "login", "allowed", how)
        return token

    def _ticket_mac(self, user: str, epoch: int, expires: int, nonce: str) -> str:
        msg = f"{user}\x00{epoch}\x00{expires}\x00{nonce}".encode()
        return hmac.new(self._derived(b"login-ticket/v1"), msg, hashlib.sha256).hexdigest()

    def _ticket(self, user: str, row) -> str:
        expires, nonce = self._clock() + TICKET_US, pysecrets.token_urlsafe(12)
        return f"{expires}.{nonce}.{self._ticket_mac(user, row['session_epoch'], expires, nonce)}"

    def _ticket_user(self, name: Any, ticket: Any) -> str | None:
        """The user a valid, unexpired ticket was issued to (since their last password change or lock)."""
        try:
            user = canonical_principal(name)
            expires, nonce, mac = str(ticket).split(".")
            expires_us = int(expires)
        except (ValidationError, ValueError):
            return None
        if not 0 < expires_us - self._clock() <= TICKET_US:
            return None
        with self._storage.transaction(write=False) as tx:
            row = repos.principals.get_principal(tx, user)
        if row is None or not hmac.compare_digest(mac, self._ticket_mac(user, row["session_epoch"], expires_us,
                                                                         nonce)):
            return None
        return user

    def _password_check(self, data: bytes) -> Callable[[Any], bool]:
        def check(row) -> bool:
            stored = row["password_hash"] if row is not None else None
            return bcrypt.checkpw(data, stored.encode() if stored else self._dummy()) and stored is not None \
                and not row["disabled"]
        return check

    def _throttled_check(self, ctx: SecurityContext, operation: str, user: str, check: Callable[[Any], bool], *,
                         final: bool = True):
        """Reserve an attempt, then ``check(principal row or None)``: (ok, principal row).

        A success forgets its source's failures when ``final`` (the last factor), else only itself.
        Raises ``AccountLocked`` (audited) when the throttle refuses the attempt; ``check`` then never runs.
        """
        source, now = lockout.source_of(ctx.ip_address), self._clock()
        with self._storage.transaction(durable=False) as tx:
            repos.state.get_state(tx, lock=True)  # serialises reservations on PostgreSQL (SQLite: BEGIN IMMEDIATE)
            row = repos.principals.get_principal(tx, user)
            counts = lockout.Counts(*repos.users.attempt_counts(
                tx, user, source, source_since=now - lockout.SOURCE_WINDOW_US,
                account_since=now - lockout.ACCOUNT_WINDOW_US))
            refused = lockout.refused_until(counts, now, row["locked_until"] if row is not None else None)
            if refused is None:
                attempt_id = repos.users.add_attempt(tx, user, source, now)
                repos.users.clear_failures(tx, user, before=now - lockout.ACCOUNT_WINDOW_US)
            elif counts.account_failures >= lockout.ACCOUNT_LIMIT and row is not None \
                    and not (row["locked_until"] or 0) > now:
                repos.principals.update_principal(tx, user, locked_until=refused[0])
        if refused is not None:
            until, why = refused
            self._runner.record(ctx, operation, "denied", f"throttled: {why}, until {lockout.until_text(until)}",
                                name=user if operation != "login" else None)
            raise AccountLocked(f"too many failed attempts: {why}; try again after {lockout.until_text(until)}")
        ok = False
        try:
            ok = check(row)
        finally:  # an exception in the check leaves the attempt counted as a failure
            with self._storage.transaction(durable=False) as tx:
                repos.users.settle_attempt(tx, attempt_id, user, source, ok, forget=final)
        return ok, row

    def _same_as_current(self, user: str):
        """A check of a candidate against ``user``'s stored hash (the current or one-time password)."""
        def same(data: bytes) -> bool:
            with self._storage.transaction(write=False) as tx:
                row = repos.principals.get_principal(tx, user)
            stored = row["password_hash"] if row is not None else None
            return bool(stored) and bcrypt.checkpw(data, stored.encode())
        return same

    def check_session(self, token: Any) -> ConsoleSession | None:
        """The session a token (from a cookie or session state) stands for, or None if it is not valid now.

        Raises ``Sealed``, ``StorageError``.
        """
        if not isinstance(token, str) or not 20 <= len(token) <= 128:
            return None
        sid = self._session_id(token)
        now = self._clock()
        with self._storage.transaction(write=False) as tx:
            row = repos.users.session_with_principal(tx, sid)
            if (row is None or row["revoked_at"] is not None or row["expires_at"] <= now or row["disabled"]
                    or (row["locked_until"] or 0) > now or row["epoch"] != row["session_epoch"]):
                return None
            roles = tuple(json.loads(row["roles"]))
            enrol = row["two_factor_on"] is None and self.two_factor.required(tx, roles)
        return ConsoleSession(user=row["principal"], roles=roles, session_id=sid[:16],
                              must_change_password=bool(row["must_change_password"]),
                              display_name=row["display_name"] or "", must_enrol_two_factor=enrol)

    def logout(self, token: Any, ip: str | None = None, ua: str | None = None) -> bool:
        """End the session of ``token`` (its cookie stops working); audited. False if it was not active.

        Raises ``Sealed``, ``StorageError``.
        """
        if not isinstance(token, str) or not 20 <= len(token) <= 128:
            return False
        self._keys.get()  # refused while sealed, before any work
        sid = self._session_id(token)
        with self._storage.transaction() as tx:
            row = repos.users.get_session(tx, sid)
            ended = row is not None and repos.users.revoke_session(tx, sid, self._clock())
        if ended:
            self._runner.record(self._login_ctx(row["principal"], ip, ua, session_id=sid[:16]), "logout",
                         "allowed", "")
        return ended

    # -- administration (audited attempts) ------------------------------------------------------
    def add_user(self, name: str, password: str, roles: Iterable[str] = (), *, display_name: str = "",
                 email: str = "", must_change_password: bool = True) -> str:
        """Create a console user with a password. Needs the admin role.

        Raises ``Sealed``, ``AccessDenied``, ``ValidationError`` (a bad name, or a password the policy of
        ``vault_core.passwords`` refuses), ``Conflict``, ``StorageError``.
        """
        digest = self._hash(check_new_password(password, user=canonical_principal(name)))
        return self._access.create_principal("user_add", name, roles, display_name=display_name, email=email,
                                      kind="user", password_hash=digest,
                                      must_change_password=bool(must_change_password), session_epoch=0)

    def set_password(self, name: str, password: str, *, current_password: str | None = None,
                     must_change: bool | None = None) -> None:
        """Set a password and end every session of the user.

        A user changing their own password gives ``current_password``; it is checked through the same
        throttle as a login. An admin resetting someone else's does not (the user must then change it at
        the next login). Raises ``Sealed``, ``AccessDenied`` (wrong current password, or not admin),
        ``AccountLocked`` (the throttle refused the check), ``ValidationError`` (a password the policy
        refuses; it never equals the current or one-time one), ``NotFound``, ``StorageError``.
        """
        user = canonical_principal(name)
        current = None if current_password is None else password_bytes(current_password)
        caller = current_context()
        own = current is not None and caller is not None and caller.user_id == user
        if own:
            ok, _ = self._throttled_check(caller, "password_set", user, self._password_check(current))
            if not ok:
                self._runner.record(caller, "password_set", "denied", "the current password is wrong", name=user)
                raise AccessDenied("the current password is wrong")
        # compared with the current password only for a caller who just proved to know it: for anyone else
        # the answer "must differ" would be an unthrottled oracle on the user's password
        same = self._same_as_current(user) if own else None
        digest = self._hash(check_new_password(password, user=user, same_as_current=same))
        with self._runner.attempt("password_set") as att:
            att.name = user
            row = repos.principals.get_principal(att.tx, user)
            own = own and att.ctx.user_id == user
            if not own:
                att.require_role("admin")
            if row is None:
                raise NotFound(f"no user {user}")
            force = (not own) if must_change is None else bool(must_change)
            now = self._clock()
            repos.principals.update_principal(att.tx, user, password_hash=digest, must_change_password=force,
                                              updated_at=now,
                                              session_epoch=row["session_epoch"] + 1)
            repos.users.revoke_sessions_of(att.tx, user, now)
            att.reason = "own password" if own else "reset by admin"

    def _admin_user_change(self, operation: str, name: str, allow_self: bool = False, **values: Any) -> None:
        user = canonical_principal(name)
        with self._runner.attempt(operation) as att:
            att.name = user
            if not (allow_self and att.ctx.user_id == user):
                att.require_role("admin")
            row = repos.principals.get_principal(att.tx, user)
            if row is None:
                raise NotFound(f"no user {user}")
            now = self._clock()
            repos.principals.update_principal(att.tx, user, updated_at=now, session_epoch=row["session_epoch"] + 1,
                                              **values)
            ended = repos.users.revoke_sessions_of(att.tx, user, now)
            if operation == "user_unlock":
                repos.users.clear_failures(att.tx, user)  # every source's attempts, and the account-wide count
            att.reason = f"{ended} session(s) ended"

    def lock_user(self, name: str) -> None:
        """Lock a user until ``unlock_user`` and end their sessions. Needs the admin role.

        Raises ``Sealed``, ``AccessDenied``, ``ValidationError``, ``NotFound``, ``StorageError``.
        """
        self._admin_user_change("user_lock", name, locked_until=LOCKED_FOREVER)

    def unlock_user(self, name: str) -> None:
        """Lift a lock (an admin's or the failed-login one). Needs the admin role.

        Raises ``Sealed``, ``AccessDenied``, ``ValidationError``, ``NotFound``, ``StorageError``.
        """
        self._admin_user_change("user_unlock", name, locked_until=None)

    def make_sso_only(self, name: str) -> None:
        """Take the password login away from a user who signs in through an SSO provider: the password hash
        is removed and every session ends. Needs the admin role; audited. ``set_password`` gives a password
        back.

        Raises ``Sealed``, ``AccessDenied``, ``ValidationError`` (no SSO identity is linked to the user: they
        could not log in at all), ``NotFound``, ``StorageError``.
        """
        user = canonical_principal(name)
        with self._runner.attempt("user_sso_only") as att:
            att.name = user
            att.require_role("admin")
            row = repos.principals.get_principal(att.tx, user)
            if row is None:
                raise NotFound(f"no user {user}")
            links = [i for i in repos.sso.list_identities(att.tx) if i["principal"] == user]
            if not links:
                raise ValidationError(f"{user} has no SSO identity linked: link one before removing the password")
            now = self._clock()
            repos.principals.update_principal(att.tx, user, password_hash=None, must_change_password=False,
                                              updated_at=now, session_epoch=row["session_epoch"] + 1)
            ended = repos.users.revoke_sessions_of(att.tx, user, now)
            att.reason = f"password login removed; {len(links)} SSO identity link(s); {ended} session(s) ended"

    def end_sessions(self, name: str) -> None:
        """End every console session of ``name`` (admins, or the user themself).

        Raises ``Sealed``, ``AccessDenied``, ``ValidationError``, ``NotFound``, ``StorageError``.
        """
        self._admin_user_change("sessions_end", name, allow_self=True)

    def reset_two_factor(self, name: str) -> None:
        """Remove a user's two-factor enrolment (a lost phone) and end their sessions. Needs the admin role;
        audited. The user logs in with the password next, and enrols again where a role requires it.

        Raises ``Sealed``, ``AccessDenied``, ``ValidationError``, ``NotFound``, ``StorageError``.
        """
        self.two_factor.remove("two_factor_reset", canonical_principal(name), admin=True)

    def disable_two_factor(self, name: str, code: str) -> None:
        """Turn one's own two-factor off, proven with a current code (or a recovery code), checked by the
        login throttle. Ends one's sessions.

        Raises ``Sealed``, ``AccessDenied`` (not the user, or a wrong code), ``AccountLocked``,
        ``ValidationError``, ``NotFound``, ``StorageError``.
        """
        user = canonical_principal(name)
        caller = current_context()
        if caller is None or caller.user_id != user:
            raise AccessDenied("only the user themself can turn their second factor off")
        ok, _ = self._throttled_check(caller, "two_factor_disable", user,
                                      lambda row: row is not None and self.two_factor.accept(user, code) is not None)
        if not ok:
            self._runner.record(caller, "two_factor_disable", "denied", "wrong two-factor code", name=user)
            raise AccessDenied("wrong or already used two-factor code")
        self.two_factor.remove("two_factor_disable", user, admin=False)

    def list_sessions(self, name: str | None = None) -> list[dict[str, Any]]:
        """Active sessions (no tokens), of one user or of all. Admins, or a user for their own.

        Raises ``Sealed``, ``AccessDenied``, ``ValidationError``, ``StorageError``.
        """
        user = None if name is None else canonical_principal(name)
        with self._runner.attempt("sessions_list", durable=False, audited=False) as att:
            if user is None or user != att.ctx.user_id:
                att.require_role("admin")
            return [{"session": r["id"][:16], "user": r["principal"], "created_at": r["created_at"],
                     "expires_at": r["expires_at"], "client_ip": r["client_ip"], "user_agent": r["user_agent"]}
                    for r in repos.users.active_sessions(att.tx, user, self._clock())]
