"""Single sign-on: OIDC providers, (issuer, subject) → principal, (issuer, group) → roles, and the login.

The console's provider callback (Streamlit's ``st.login``; ``console/sso.py``) yields the ID token's
claims; ``sso_login`` turns them into the *same* server-side session as a password login, or refuses:

* the claims' ``iss`` must be the provider's issuer, and the token fresh (``iat`` within
  ``FRESH_SECONDS``) and newer than the last one this identity logged in with — so a saved
  ``_streamlit_user`` cookie replayed after logout opens nothing;
* the principal is the one an admin linked to (issuer, subject), or — only where the provider has
  ``allow_create`` — one created now (named ``<provider>.<hash of issuer and subject>``, never a name
  taken from the claims, so no claim can take over an existing account);
* the roles are the union of the admin-made mappings of the token's ``groups`` claim; a claim without
  a mapping gives nothing, and no mapped role refuses the login. The principal's roles are set to them
  (a change ends its older sessions, as ``set_roles`` does);
* a user with two-factor on still needs the code (``SecondFactorRequired``) unless an admin marked the
  provider ``trust_idp_mfa`` (the IdP then vouches for MFA);
* a disabled or locked principal is refused, as for a password.

Changing or removing a group mapping ends the sessions of every principal linked under its issuer (the
next page run finds none; the next login re-reads the mappings). Every login, refusal and change is
audited with issuer and subject, never a token. The tables are MACed (``storage/repos/sso.py``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

from ..context import make_context
from ..errors import LoginFailed, NotFound, SecondFactorRequired, ValidationError
from ..storage import Storage, repos
from ..types import Clock
from ..validate import canonical_principal, check_roles
from .keys import KeyHolder
from .runner import Runner

FRESH_SECONDS = 300  # an ID token older than this is not a login (Streamlit's own cookie lasts 30 days)
GROUPS_CLAIM = "groups"
_URL_MAX, _TEXT_MAX = 1024, 256


def _text(raw: Any, what: str, limit: int = _TEXT_MAX) -> str:
    if not isinstance(raw, str) or not raw.strip() or len(raw) > limit or any(ord(c) < 32 for c in raw):
        raise ValidationError(f"{what} must be a non-empty single-line string of at most {limit} characters")
    return raw


def _url(raw: Any, what: str) -> str:
    text = _text(raw, what, _URL_MAX)
    if not text.startswith(("https://", "http://")):
        raise ValidationError(f"{what} must be an http(s) URL")
    return text


def provider_name(raw: Any) -> str:
    """A provider's name (also the ``[auth.<name>]`` section of Streamlit). Raises ``ValidationError``."""
    name = _text(raw, "provider name", 64)
    if not name.isascii() or not all(c.isalnum() or c == "_" for c in name) or not name[0].isalpha():
        raise ValidationError("provider name must be letters, digits and _ (starting with a letter)")
    return name.lower()


def claim_groups(claims: Mapping[str, Any]) -> list[str]:
    """The ``groups`` claim as a list of strings (absent: none). Raises ``ValidationError`` for another shape."""
    raw = claims.get(GROUPS_CLAIM, [])
    if isinstance(raw, str) or not isinstance(raw, (list, tuple)) or len(raw) > 256:
        raise ValidationError("the groups claim must be a list of group names")
    return [_text(g, "group name") for g in raw]


def roles_for(groups: Iterable[str], mapping: Mapping[str, str]) -> list[str]:
    """The vault roles that ``mapping`` (group → JSON role list) grants ``groups``: unmapped groups give none."""
    found: set[str] = set()
    for group in groups:
        if group in mapping:
            found.update(json.loads(mapping[group]))
    return sorted(found)


class SsoService:
    """OIDC providers and their mappings (admin, audited), and the SSO login (no context needed)."""

    def __init__(self, runner: Runner, storage: Storage, keys: KeyHolder, clock: Clock, users: Any):
        self._runner, self._storage, self._keys, self._clock, self._users = runner, storage, keys, clock, users

    # -- administration -----------------------------------------------------------------------
    def set_provider(self, name: str, *, issuer: str, client_id: str, server_metadata_url: str,
                     allow_create: bool = False, trust_idp_mfa: bool = False) -> str:
        """Add or change an OIDC provider (its client secret is a vault secret, not here). Needs admin.

        Raises ``Sealed``, ``AccessDenied``, ``ValidationError``, ``StorageError``.
        """
        name = provider_name(name)
        values = dict(issuer=_url(issuer, "issuer"), client_id=_text(client_id, "client_id"),
                      server_metadata_url=_url(server_metadata_url, "server_metadata_url"),
                      allow_create=bool(allow_create), trust_idp_mfa=bool(trust_idp_mfa))
        with self._runner.attempt("sso_provider_set") as att:
            att.name = name
            att.require_role("admin")
            repos.sso.put_provider(att.tx, name, updated_at=self._clock(), updated_by=att.ctx.user_id, **values)
            att.reason = (f"issuer={values['issuer']} client_id={values['client_id']} "
                          f"allow_create={values['allow_create']} trust_idp_mfa={values['trust_idp_mfa']}")
        return name

    def remove_provider(self, name: str) -> None:
        """Remove a provider and end the sessions of everyone linked under its issuer. Needs admin.

        Raises ``Sealed``, ``AccessDenied``, ``ValidationError``, ``NotFound``, ``StorageError``.
        """
        name = provider_name(name)
        with self._runner.attempt("sso_provider_remove") as att:
            att.name = name
            att.require_role("admin")
            row = repos.sso.get_provider(att.tx, name)
            if row is None:
                raise NotFound(f"no SSO provider {name}")
            repos.sso.delete_provider(att.tx, name)
            ended = self._end_issuer_sessions(att.tx, row["issuer"])
            att.reason = f"issuer={row['issuer']} sessions_ended_of={ended}"

    def list_providers(self) -> list[dict[str, Any]]:
        """Every provider's settings (no secret in them). Needs admin or auditor.

        Raises ``Sealed``, ``AccessDenied``, ``StorageError``.
        """
        with self._runner.attempt("sso_provider_list", durable=False, audited=False) as att:
            att.require_role("admin", "auditor")
            return [{k: r[k] for k in ("name", "issuer", "client_id", "server_metadata_url", "allow_create",
                                       "trust_idp_mfa")} for r in repos.sso.list_providers(att.tx)]

    def provider(self, name: str) -> dict[str, Any] | None:
        """One provider's settings for the login (no context needed: they hold no secret), or None.

        Raises ``Sealed``, ``ValidationError``, ``IntegrityError``, ``StorageError``.
        """
        self._keys.get()
        with self._storage.transaction(write=False) as tx:
            row = repos.sso.get_provider(tx, provider_name(name))
        return None if row is None else {k: row[k] for k in row.keys() if k != "mac"}

    def providers_for_login(self) -> list[dict[str, Any]]:
        """Every provider (name, issuer, client_id, metadata URL) for the login page and Streamlit's ``[auth]``.

        Raises ``Sealed``, ``IntegrityError``, ``StorageError``.
        """
        self._keys.get()
        with self._storage.transaction(write=False) as tx:
            rows = repos.sso.list_providers(tx)
        return [{k: r[k] for k in ("name", "issuer", "client_id", "server_metadata_url")} for r in rows]

    def map_group(self, provider: str, group: str, roles: Iterable[str]) -> list[str]:
        """Grant members of ``group`` (the ID token's groups claim at ``provider``) ``roles``; a change ends the
        sessions of everyone linked under the provider's issuer (they log in again). Needs admin.

        Raises ``Sealed``, ``AccessDenied``, ``ValidationError``, ``NotFound`` (no such provider), ``StorageError``.
        """
        group, role_list = _text(group, "group name"), check_roles(roles)
        if not role_list:
            raise ValidationError("a group mapping needs at least one role (remove it instead)")
        with self._runner.attempt("sso_group_map") as att:
            issuer = self._issuer(att, provider)
            repos.sso.put_group_roles(att.tx, issuer, group, roles=json.dumps(role_list), updated_at=self._clock(),
                                      updated_by=att.ctx.user_id)
            ended = self._end_issuer_sessions(att.tx, issuer)
            att.reason = f"issuer={issuer} group={group} roles={','.join(role_list)} sessions_ended_of={ended}"
        return role_list

    def unmap_group(self, provider: str, group: str) -> bool:
        """Remove a group mapping; ends the sessions of everyone linked under the issuer. Needs admin.

        Raises ``Sealed``, ``AccessDenied``, ``ValidationError``, ``NotFound``, ``StorageError``.
        """
        group = _text(group, "group name")
        with self._runner.attempt("sso_group_unmap") as att:
            issuer = self._issuer(att, provider)
            gone = repos.sso.delete_group_roles(att.tx, issuer, group) > 0
            ended = self._end_issuer_sessions(att.tx, issuer) if gone else 0
            att.reason = f"issuer={issuer} group={group} removed={gone} sessions_ended_of={ended}"
        return gone

    def group_mappings(self) -> list[dict[str, Any]]:
        """Every (issuer, group) → roles mapping. Needs admin or auditor.

        Raises ``Sealed``, ``AccessDenied``, ``StorageError``.
        """
        with self._runner.attempt("sso_group_list", durable=False, audited=False) as att:
            att.require_role("admin", "auditor")
            return [{"issuer": r["issuer"], "group": r["group_name"], "roles": json.loads(r["roles"])}
                    for r in repos.sso.list_group_roles(att.tx)]

    def link_identity(self, provider: str, subject: str, principal: str) -> str:
        """Pre-provision: (the provider's issuer, ``subject``) logs in as ``principal``. Needs admin.

        Raises ``Sealed``, ``AccessDenied``, ``ValidationError``, ``NotFound`` (provider or principal),
        ``StorageError``.
        """
        subject, user = _text(subject, "subject"), canonical_principal(principal)
        with self._runner.attempt("sso_identity_link") as att:
            att.name = user
            issuer = self._issuer(att, provider)
            if repos.principals.get_principal(att.tx, user) is None:
                raise NotFound(f"no principal {user}")
            repos.sso.put_identity(att.tx, issuer, subject, principal=user, created_at=self._clock(),
                                   created_by=att.ctx.user_id, last_iat=0)
            att.reason = f"issuer={issuer} subject={subject}"
        return user

    def unlink_identity(self, provider: str, subject: str) -> bool:
        """Forget a linked identity (its principal stays; its SSO logins stop). Needs admin.

        Raises ``Sealed``, ``AccessDenied``, ``ValidationError``, ``NotFound``, ``StorageError``.
        """
        subject = _text(subject, "subject")
        with self._runner.attempt("sso_identity_unlink") as att:
            issuer = self._issuer(att, provider)
            gone = repos.sso.delete_identity(att.tx, issuer, subject) > 0
            att.reason = f"issuer={issuer} subject={subject} removed={gone}"
        return gone

    def _issuer(self, att: Any, provider: str) -> str:
        name = provider_name(provider)
        att.require_role("admin")
        row = repos.sso.get_provider(att.tx, name)
        if row is None:
            raise NotFound(f"no SSO provider {name}")
        return row["issuer"]

    def _end_issuer_sessions(self, tx: Any, issuer: str) -> int:
        users = sorted({r["principal"] for r in repos.sso.identities_of_issuer(tx, issuer)})
        for user in users:
            row = repos.principals.get_principal(tx, user)
            if row is not None:
                repos.principals.update_principal(tx, user, session_epoch=row["session_epoch"] + 1,
                                                  updated_at=self._clock())
        return len(users)

    def record_provider_error(self, provider: str, ip: str | None = None, ua: str | None = None) -> None:
        """Audit that ``provider`` could not be reached for a login (no claim, no token exists yet).

        Raises ``Sealed``, ``StorageError``.
        """
        ctx = make_context("sso-unknown", ip, ua, (), None, None, False)
        self._runner.record(ctx, "sso_login", "failed", f"provider={provider_name(provider)}: provider unreachable")

    # -- the login ---------------------------------------------------------------------------------
    def sso_login(self, provider: str, claims: Mapping[str, Any], ip: str | None = None, ua: str | None = None,
                  *, forwarded_for: str | None = None, forwarded_trusted: bool = False) -> str:
        """Open a console session for the ID token ``claims`` of ``provider``'s callback; returns its token.

        Raises ``LoginFailed`` (unknown provider or subject, wrong issuer, stale or replayed token, no mapped
        group, disabled user: audited with issuer and subject), ``SecondFactorRequired`` (two-factor on and
        the provider not trusted for MFA: its ticket goes to ``complete_login``), ``AccountLocked``,
        ``Sealed``, ``StorageError``.
        """
        self._keys.get()
        fwd = dict(forwarded_for=forwarded_for, forwarded_trusted=forwarded_trusted)
        try:
            name = provider_name(provider)
        except ValidationError:
            name = "invalid"
        issuer, subject = str(claims.get("iss", ""))[:_URL_MAX], str(claims.get("sub", ""))[:_TEXT_MAX]
        who = f"issuer={issuer} subject={subject}"

        def refuse(why: str, user: str = "sso-unknown") -> LoginFailed:
            ctx = make_context(user, ip, ua, (), None, forwarded_for, forwarded_trusted)
            self._runner.record(ctx, "sso_login", "denied", f"provider={name} {who}: {why}")
            return LoginFailed("single sign-on refused: " + why)

        try:
            groups = claim_groups(claims)
        except ValidationError as exc:
            raise refuse(str(exc)) from None
        with self._storage.transaction(write=False) as tx:  # refusals are recorded after it ends
            row = repos.sso.get_provider(tx, name) if name != "invalid" else None
            known = row is not None and bool(issuer) and issuer == row["issuer"] and bool(subject)
            roles = roles_for(groups, repos.sso.group_roles(tx, issuer)) if known else []
            ident = repos.sso.get_identity(tx, issuer, subject) if known else None
        if row is None:
            raise refuse("unknown provider")
        if not known:
            raise refuse("the token's issuer is not the provider's")
        iat = claims.get("iat")
        now_s = self._clock() // 1_000_000
        if not isinstance(iat, int) or isinstance(iat, bool) or not now_s - FRESH_SECONDS <= iat <= now_s + 60:
            raise refuse("the ID token is not fresh: sign in with the provider again")
        if ident is not None and iat <= ident["last_iat"]:
            raise refuse("the ID token was already used: sign in with the provider again", ident["principal"])
        if ident is None and not row["allow_create"]:
            raise refuse("unknown subject (not linked to a vault user)")
        if not roles:
            raise refuse("no group of the token is mapped to a vault role",
                         ident["principal"] if ident else "sso-unknown")
        user = ident["principal"] if ident else self._created_name(name, issuer, subject)
        with self._storage.transaction() as tx:
            prow = repos.principals.get_principal(tx, user)
            again = repos.sso.get_identity(tx, issuer, subject)
            if again is not None and iat <= again["last_iat"]:
                prow = None  # a concurrent login took this token first
            elif again is None and prow is not None:
                prow = None  # an unlinked principal of that name: never taken over
            elif prow is None and again is None:
                now = self._clock()
                display = str(claims.get("name") or claims.get("email") or "")[:_TEXT_MAX]
                repos.principals.insert_principal(tx, name=user, display_name=display, email=str(
                    claims.get("email") or "")[:_TEXT_MAX], roles=json.dumps(roles), created_at=now, updated_at=now,
                    kind="user")
                repos.state.bump_rules_version(tx)
                prow = repos.principals.get_principal(tx, user)
            if prow is not None:
                if json.loads(prow["roles"]) != roles:
                    repos.principals.update_principal(tx, user, roles=json.dumps(roles), updated_at=self._clock(),
                                                      session_epoch=prow["session_epoch"] + 1)
                    repos.state.bump_rules_version(tx)
                    prow = repos.principals.get_principal(tx, user)
                created = again["created_at"] if again else self._clock()
                by = again["created_by"] if again else f"sso:{name}"
                repos.sso.put_identity(tx, issuer, subject, principal=user, created_at=created, created_by=by,
                                       last_iat=iat)
        if prow is None:
            raise refuse("the token was already used, or the name is taken by an unlinked user", user)
        if prow["disabled"] or (prow["locked_until"] or 0) > self._clock():
            raise refuse("the user is disabled or locked", user)
        how = f"sso {name} ({who}) roles={','.join(roles)}"
        if self._users.two_factor.enrolled(user) and not row["trust_idp_mfa"]:
            ctx = make_context(user, ip, ua, (), None, forwarded_for, forwarded_trusted)
            self._runner.record(ctx, "sso_login", "denied", how + ": a two-factor code is needed")
            raise SecondFactorRequired("a two-factor code is needed", ticket=self._users._ticket(user, prow),
                                       user=user)
        ctx = make_context(user, ip, ua, (), None, forwarded_for, forwarded_trusted)
        return self._users._new_session(ctx, user, prow, how, ip, ua, fwd)  # the password login's session

    @staticmethod
    def _created_name(provider: str, issuer: str, subject: str) -> str:
        digest = hashlib.sha256(f"{issuer}\x00{subject}".encode()).hexdigest()[:20]
        return f"{provider}.{digest}"


