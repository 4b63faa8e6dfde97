"""Login, the session cookie, the per-page guard and the security context.

The login form checks the password with ``vault.verify_login`` (bcrypt,
database lockout) and keeps the returned session token in this Streamlit
session's state. The browser gets a cookie through streamlit-authenticator's
``CookieModel`` (extra-streamlit-components' cookie manager): a JWT signed
with a key derived from the vault's own random cookie key, carrying the
session token. A cookie is only a way to find a session: every rerun asks
``vault.check_session``, so a revoked, expired or superseded session ends
at once, whether it came from a cookie or from session state (how AppTest
logs in).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

import jwt
import streamlit as st
from streamlit_authenticator.models.cookie_model import CookieModel

from ..errors import AccessDenied, Sealed, ValidationError, VaultError
from ..facade.users_ops import ConsoleSession
from ..vault import Vault, open_vault
from .request import RequestInfo, request_info
from .roles import may_use

TOKEN_KEY = "vault_session_token"
COOKIE_ACTION = "_vault_cookie_action"
COOKIE_NAME = "vault_console_session"
COOKIE_DAYS = 0.5  # the server-side session lasts 12 hours too


@st.cache_resource(show_spinner=False)
def _open_vault(path: str, url: str) -> Vault:
    """Open the vault once per process; start the rotation scheduler and metrics with it.

    The scheduler takes a lease in the database, so however many console replicas
    run it, each due rotation happens once. ``VAULT_SCHEDULER=on`` enables it
    (``vault-console serve`` sets it unless told otherwise).
    Metrics start only when ``VAULT_METRICS_PORT`` is set.
    """
    vault = open_vault(path or None, database_url=url or None, strict=True, create=False)
    if os.environ.get("VAULT_SCHEDULER", "off").lower() in ("1", "on", "true", "yes"):
        from ..scheduler import start_scheduler

        start_scheduler(vault, float(os.environ.get("VAULT_SCHEDULER_INTERVAL", "60")))
    from ..metrics import start_from_env

    start_from_env(vault)
    return vault


def get_vault() -> Vault:
    """The process's one strict vault (shared by every session; holds no per-user state)."""
    return _open_vault(os.environ.get("VAULT_PATH", ""), os.environ.get("VAULT_DATABASE_URL", ""))


class SessionCookie(CookieModel):
    """streamlit-authenticator's cookie, carrying our session token instead of a user name."""

    def __init__(self, secret: str):
        super().__init__(COOKIE_NAME, secret, COOKIE_DAYS, None)  # renders the cookie manager component
        self._token: str | None = None

    def _token_encode(self) -> str:
        return jwt.encode({"sid": self._token, "exp_date": self.exp_date}, self.cookie_key, algorithm="HS256")

    def write(self, token: str) -> None:
        self._token = token
        self.set_cookie()

    @staticmethod
    def decode(raw: str, secret: str) -> str | None:
        """The session token inside a cookie value, if its signature and date hold."""
        if not isinstance(raw, str) or not raw or len(raw) > 1024:
            return None
        try:
            data = jwt.decode(raw, secret, algorithms=["HS256"])
        except jwt.PyJWTError:
            return None
        if not isinstance(data, dict) or data.get("exp_date", 0) <= datetime.now().timestamp():
            return None
        sid = data.get("sid")
        return sid if isinstance(sid, str) else None

    @staticmethod
    def read(secret: str) -> str | None:
        """The session token of the request's cookie (sent when the page was loaded)."""
        raw = st.context.cookies.get(COOKIE_NAME) if st.context.cookies is not None else None
        return SessionCookie.decode(raw, secret)


def apply_cookie_action(vault: Vault, slot=None) -> None:
    """Write or delete the cookie a previous run asked for, until the browser reports it done.

    The cookie manager is a component: a run can be cut short by the next
    rerun before its message reaches the browser, so the action stays pending
    (for a few runs at most) until the browser's cookie list shows the result.
    The components go into ``slot``, a container the router creates first on
    every run, so their coming and going never shifts (and remounts) the page.
    """
    pending = st.session_state.get(COOKIE_ACTION)
    if not pending:
        return
    if slot is not None:
        with slot:
            _cookie_step(vault, pending)
    else:
        _cookie_step(vault, pending)


def _cookie_step(vault: Vault, pending) -> None:
    action, tries = pending if isinstance(pending, tuple) else (pending, 0)
    cookie = SessionCookie(vault.console_cookie_secret())
    present = cookie.cookie_manager.cookies.get(COOKIE_NAME) if isinstance(cookie.cookie_manager.cookies, dict) \
        else None
    token = st.session_state.get(TOKEN_KEY)
    if action == "set" and token:
        if present and SessionCookie.decode(present, cookie.cookie_key) == token or tries >= 3:
            st.session_state.pop(COOKIE_ACTION, None)
            return
        cookie.write(token)
    elif action == "delete":
        if not present or tries >= 3:
            st.session_state.pop(COOKIE_ACTION, None)
            return
        cookie.delete_cookie()
    else:
        st.session_state.pop(COOKIE_ACTION, None)
        return
    st.session_state[COOKIE_ACTION] = (action, tries + 1)


def current_session(vault: Vault) -> ConsoleSession | None:
    """The valid session of this browser session (session state first, then the cookie)."""
    token = st.session_state.get(TOKEN_KEY)
    if token is None and not st.session_state.get("_vault_logged_out"):
        token = SessionCookie.read(vault.console_cookie_secret())
    session = vault.check_session(token) if token else None
    if session is None:
        st.session_state.pop(TOKEN_KEY, None)
    else:
        st.session_state[TOKEN_KEY] = token
    return session


@dataclass
class Guard:
    """What a page needs: the vault, the session and the request."""

    vault: Vault
    session: ConsoleSession
    request: RequestInfo

    @contextmanager
    def context(self) -> Iterator[None]:
        """Every vault call of a page runs inside this block (fragments and dialogs too).

        The session is checked again on entry, so a fragment or dialog rerun
        (which skips the router) cannot outlive a logout or a lock.
        """
        if self.vault.check_session(st.session_state.get(TOKEN_KEY)) is None:
            st.error("Your session has ended. Reload the page to log in again.")
            st.stop()
        with self.vault.security_context(
                self.session.user, self.request.ip_address, self.request.user_agent, roles=self.session.roles,
                session_id=self.session.session_id, forwarded_for=self.request.forwarded_for,
                forwarded_trusted=self.request.forwarded_trusted):
            yield


def page_guard(page: str) -> Guard:
    """Stop the page unless a valid session whose roles allow ``page`` is present."""
    try:
        vault = get_vault()
    except VaultError as exc:
        st.error(f"The vault cannot be opened: {exc}")
        st.stop()
    session = current_session(vault)
    if session is None or session.must_change_password or not may_use(page, session.roles):
        st.error("You may not use this page.")
        st.stop()
    _user_box(vault, session)
    return Guard(vault, session, request_info())


def _user_box(vault: Vault, session: ConsoleSession) -> None:
    """Who is logged in, and the logout button (drawn by the page, so AppTest can press it too)."""
    with st.sidebar:
        st.caption("Signed in as")
        st.text(session.user)
        st.caption("Roles: " + (", ".join(session.roles) or "none"))
        if st.button("Log out", key="logout", icon=":material/logout:"):
            logout(vault)
            st.rerun()


def login_form(vault: Vault) -> None:
    """The login page (shown to anyone without a valid session)."""
    st.title("Vault console")
    with st.form("login", clear_on_submit=False):
        st.subheader("Log in")
        user = st.text_input("Username", autocomplete="username")
        password = st.text_input("Password", type="password", autocomplete="current-password")
        submitted = st.form_submit_button("Log in")
    if not submitted:
        return
    req = request_info()
    try:
        token = vault.verify_login(user, password, req.ip_address, req.user_agent,
                                   forwarded_for=req.forwarded_for, forwarded_trusted=req.forwarded_trusted)
    except (AccessDenied, ValidationError) as exc:
        st.error(str(exc))
        return
    _start_session(token)
    st.session_state.pop("_vault_logged_out", None)
    st.rerun()


def _start_session(token: str) -> None:
    """Keep the new session token and have the cookie written on the next run."""
    st.session_state[TOKEN_KEY] = token
    st.session_state[COOKIE_ACTION] = "set"


def logout(vault: Vault) -> None:
    """End the server-side session, forget the token and delete the cookie."""
    token = st.session_state.pop(TOKEN_KEY, None)
    req = request_info()
    if token:
        vault.logout(token, req.ip_address, req.user_agent)
    st.session_state["_vault_logged_out"] = True
    st.session_state[COOKIE_ACTION] = "delete"


def change_password_form(vault: Vault, session: ConsoleSession, *, forced: bool) -> None:
    """Change one's own password; a fresh session replaces the old ones (which end)."""
    if forced:
        st.warning("You must choose a new password before using the console.")
    with st.form("change_password", clear_on_submit=True):
        current = st.text_input("Current password", type="password", autocomplete="current-password")
        new = st.text_input("New password", type="password", autocomplete="new-password")
        again = st.text_input("Repeat the new password", type="password", autocomplete="new-password")
        submitted = st.form_submit_button("Change password")
    if not submitted:
        return
    if new != again:
        st.error("The new passwords differ.")
        return
    req = request_info()
    try:
        with vault.security_context(session.user, req.ip_address, req.user_agent, roles=session.roles,
                                    session_id=session.session_id, forwarded_for=req.forwarded_for,
                                    forwarded_trusted=req.forwarded_trusted):
            vault.set_password(session.user, new, current_password=current, must_change=False)
        token = vault.verify_login(session.user, new, req.ip_address, req.user_agent,
                                   forwarded_for=req.forwarded_for, forwarded_trusted=req.forwarded_trusted)
    except (AccessDenied, ValidationError) as exc:
        st.error(str(exc))
        return
    _start_session(token)
    st.success("Password changed.")
    st.rerun()


def sealed_message(exc: Exception) -> None:
    if isinstance(exc, Sealed):
        st.error(f"The vault is sealed: {exc}")
    else:
        st.error(f"The vault cannot be opened: {exc}")
