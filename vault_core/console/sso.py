"""Single sign-on in the console: Streamlit's native OIDC login, then the vault's own session.

Streamlit (>= 1.67, < 1.68, with Authlib: ``pip install 'vault-core[sso]'``) runs the OIDC flow
(``/auth/login`` → the provider → ``/oauth2callback``) and keeps the ID token's claims in its signed,
stateless ``_streamlit_user`` cookie. That cookie is never a console session: the ``/login`` route
reads it once (``streamlit_user_claims``), hands the claims to ``Vault.sso_login`` (which refuses a
stale or already used ID token, an unknown subject and an unmapped group; ``service/sso.py``), sets the
same ``HttpOnly`` session cookie as a password login and deletes Streamlit's cookies. A copy of
``_streamlit_user`` replayed later opens nothing.

Streamlit's ``[auth]`` settings are built at start-up from the vault (``auth_secrets``): the providers'
settings from the ``sso_providers`` table, the client secrets and the cookie secret from vault secrets
read as the console's service identity, merged into ``st.secrets`` (no ``secrets.toml`` on disk). Every
replica reads the same cookie secret from the shared vault.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

STREAMLIT_VERSIONS = ">=1.67,<1.68"  # the internals streamlit_user_claims and login_url use
COOKIE_SECRET = "console/sso-cookie-secret"  # vault secret names (environment VAULT_CONSOLE_SSO_ENVIRONMENT)
USER_COOKIE = "_streamlit_user"
STREAMLIT_COOKIES = ("_streamlit_user", "_streamlit_user_tokens")


def client_secret_name(provider: str) -> str:
    """The vault secret holding ``provider``'s OIDC client secret."""
    return f"console/sso-{provider}-client-secret"


def sso_environment(environ: Mapping[str, str] = os.environ) -> str:
    return environ.get("VAULT_CONSOLE_SSO_ENVIRONMENT", "production")


def auth_secrets(vault: Any, redirect_uri: str, environment: str) -> dict[str, Any]:
    """Streamlit's ``[auth]`` section for every configured provider, read from the vault by the caller's
    security context (the console's service identity); ``{}`` when no provider is configured.

    Raises ``NotFound`` (a client secret or the cookie secret missing), ``AccessDenied``, ``Sealed``.
    """
    providers = vault.sso.providers_for_login()
    if not providers:
        return {}
    section: dict[str, Any] = {"redirect_uri": redirect_uri,
                               "cookie_secret": vault.get_secret(COOKIE_SECRET, environment=environment)}
    for p in providers:
        section[p["name"]] = {
            "client_id": p["client_id"], "server_metadata_url": p["server_metadata_url"],
            "client_secret": vault.get_secret(client_secret_name(p["name"]), environment=environment),
            "client_kwargs": {"scope": "openid email profile groups", "prompt": "login"}}
    return {"auth": section}


def install_auth_secrets(vault: Any, environ: Mapping[str, str] = os.environ) -> int:
    """At start-up: read ``auth_secrets`` as the console's service identity (``vault.process_identity``) and
    merge them into ``st.secrets``; returns how many providers. ``VAULT_CONSOLE_SSO_REDIRECT_URI`` is the
    console's ``/oauth2callback`` URL as browsers reach it (default ``http://localhost:<server.port>/oauth2callback``).

    Raises ``NotFound``, ``AccessDenied`` (the console then refuses to start: no half-set SSO); a sealed
    vault gives 0.
    """
    from ..integrations.app_secrets import replace_streamlit_secrets

    import streamlit as st

    redirect = environ.get("VAULT_CONSOLE_SSO_REDIRECT_URI") or \
        f"http://localhost:{st.get_option('server.port')}/oauth2callback"
    from ..errors import Sealed

    try:
        with vault.security_context(vault.process_identity, "127.0.0.1", "vault-console"):
            section = auth_secrets(vault, redirect, sso_environment(environ))
    except Sealed:
        return 0  # a sealed console offers passwords only (SSO's settings are read at the next start)
    if section:
        replace_streamlit_secrets(section)
    return len(section.get("auth", {})) - 2 if section else 0


def streamlit_user_claims(cookies: Mapping[str, str]) -> dict[str, Any] | None:
    """The claims in Streamlit's signed ``_streamlit_user`` cookie (None: absent, forged or not a login).

    The ONE reader of Streamlit internals for SSO (1.67: ``auth_util.get_cookie_with_chunks``,
    ``server_util.get_cookie_secret``, ``starlette_app_utils.decode_signed_value``), as Streamlit's own
    WebSocket handler reads it.
    """
    from streamlit.auth_util import get_cookie_with_chunks
    from streamlit.web.server.server_util import get_cookie_secret
    from streamlit.web.server.starlette.starlette_app_utils import decode_signed_value

    secret = get_cookie_secret()

    def one(name: str) -> bytes | None:
        raw = cookies.get(name)
        return None if raw is None else decode_signed_value(secret, name, raw.encode("latin-1"))

    try:
        data = get_cookie_with_chunks(one, USER_COOKIE)
        claims = json.loads(data) if data else None
    except (ValueError, TypeError):
        return None
    return claims if isinstance(claims, dict) and claims.get("is_logged_in") is True else None


def login_url(provider: str) -> str:
    """Streamlit's login URL for ``provider`` (what ``st.login(provider)`` sends the browser to)."""
    from urllib.parse import quote

    from streamlit.auth_util import encode_provider_token

    return "/auth/login?provider=" + quote(encode_provider_token(provider))


def provider_reachable(metadata_url: str, timeout: float = 3.0) -> bool:
    """Does the provider answer its discovery document? (A down IdP gets a clear message, not a 400.)"""
    import httpx

    try:
        return httpx.get(metadata_url, timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False
