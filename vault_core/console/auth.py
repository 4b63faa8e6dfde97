"""The session of a page run, the per-page guard and the security context.

A user whose role requires two-factor but who has not enrolled may use the Account page only.
Logging in (both steps of a two-factor login), out and changing one's password happen in routes
(``console/routes.py``), which set and delete the ``HttpOnly`` session cookie.
A page run finds its session from the cookie that came with *this* run's
WebSocket handshake (``st.context.cookies``), every time: a browser session
that reconnects with a Streamlit session id but without the cookie is a
stranger, whatever it was before. Nothing about the login is kept in
``st.session_state``, except in a run without a browser behind it (AppTest,
which cannot send cookies), where the token is taken from there.
"""

from __future__ import annotations

import html
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import streamlit as st

from ..errors import Sealed, VaultError
from ..vault import Vault
from . import cookies
from .request import RequestInfo, peer_is_trusted, request_info
from .roles import may_use
from .runtime import console_vault

TOKEN_KEY = "vault_session_token"  # only read when no browser is behind the run (AppTest)


def get_vault() -> Vault:
    """The process's one strict vault (opened by the app's lifespan); raises ``VaultError``."""
    return console_vault()


def _handshake() -> tuple[dict[str, str], dict[str, str]]:
    """Headers and cookies of this session's WebSocket handshake (empty without a browser)."""
    try:
        headers = {str(k).lower(): str(v) for k, v in st.context.headers.items()}
        jar = {str(k): str(v) for k, v in st.context.cookies.items()}
    except Exception:  # no request behind this run (bare mode)
        return {}, {}
    return headers, jar


def session_token() -> str | None:
    """The session token for this run: the handshake's cookie, or (no browser: AppTest) session state."""
    headers, jar = _handshake()
    if not headers.get("host"):
        token = st.session_state.get(TOKEN_KEY)
        return token if isinstance(token, str) else None
    peer = st.context.ip_address if isinstance(st.context.ip_address, str) else "127.0.0.1"
    proto = headers.get("x-forwarded-proto") if peer_is_trusted(peer) else None
    scheme = "https" if st.get_option("server.sslCertFile") else "http"
    secure = cookies.is_secure(scheme, headers.get("host"), proto)
    # the __Host- cookie wins; the plain name is believed only where the browser would not set __Host-
    return cookies.read(jar, cookies.SESSION, True) or (None if secure else cookies.read(jar, cookies.SESSION, False))


def current_session(vault: Vault) -> Any:
    """The live session of this run (a ``ConsoleSession``), or None."""
    token = session_token()
    return vault.check_session(token) if token else None


@dataclass
class Guard:
    """What a page needs: the vault, the session and the request."""

    vault: Vault
    session: Any
    request: RequestInfo

    @contextmanager
    def context(self) -> Iterator[None]:
        """Every vault call of a page runs inside this block (fragments and dialogs too).

        The session is checked again on entry, so a fragment or dialog rerun
        (which skips the router) cannot outlive a logout or a lock.
        """
        live = current_session(self.vault)
        if live is None or live.session_id != self.session.session_id:
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
        sealed_message(exc)
        st.stop()
    session = current_session(vault)
    if session is None or session.must_change_password or not may_use(page, session.roles):
        st.error("You may not use this page.")
        st.stop()
    if session.must_enrol_two_factor and page != "account":  # a role requires it: enrol on the Account page
        st.error("Your role requires two-factor sign-in: set it up on the Account page first.")
        st.stop()
    _user_box(session)
    return Guard(vault, session, request_info())


def _user_box(session: Any) -> None:
    """Who is logged in, and the logout form (a POST to the logout route with the CSRF token)."""
    with st.sidebar:
        st.caption("Signed in as")
        st.text(session.user)
        st.caption("Roles: " + (", ".join(session.roles) or "none"))
        logout_form()


def logout_form() -> None:
    """A plain HTML form posting to ``/logout``: the route ends the session and deletes the cookie."""
    _, jar = _handshake()
    csrf = cookies.read(jar, cookies.CSRF, True) or cookies.read(jar, cookies.CSRF, False) or ""
    st.html(f'<form method="post" action="/logout"><input type="hidden" name="csrf" value="{html.escape(csrf)}">'
            '<button type="submit">Log out</button></form>')


def login_prompt() -> None:
    """What a run without a live session shows: the way to the login route (never a page)."""
    st.title("Vault console")
    st.info("You are not logged in, or your session has ended.")
    st.markdown("[Log in](/login)")


def password_prompt() -> None:
    """The forced first-login step: the password route replaces the session cookie."""
    st.title("Vault console")
    st.warning("You must choose a new password before using the console.")
    st.markdown("[Change password](/password)")


def sealed_message(exc: Exception) -> None:
    if isinstance(exc, Sealed):
        st.error(f"The vault is sealed: {exc}")
    else:
        st.error(f"The vault cannot be opened: {exc}")
