"""ASGI middleware of the console: security headers, the WebSocket origin check, the login gate.

Streamlit's own check of the ``/_stcore/stream`` handshake compares host
names only and lets a missing ``Origin`` through, so a page on any other port
of the same host could drive a logged-in console. ``WebSocketOrigin`` refuses
such a handshake with 403 before it is upgraded.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from urllib.parse import quote

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from . import cookies
from .cookies import is_loopback

STREAM_PATH = "/_stcore/stream"
# paths the login gate never redirects: Streamlit's own (assets, API) and the console's routes
OPEN_PREFIXES = ("/_stcore/", "/static/", "/media/", "/component/", "/login", "/logout", "/password",
                 "/export/", "/healthz", "/metrics", "/favicon",
                 "/auth/", "/oauth2callback",  # Streamlit's own OIDC routes (console/sso.py)
                 "/v1/")  # the HTTP API (vault_core.api): X-Vault-Token only, never the console cookie
PERMISSIONS = ("accelerometer=(), camera=(), geolocation=(), gyroscope=(), magnetometer=(), microphone=(), "
               "payment=(), usb=(), interest-cohort=()")


def inline_script_hashes(index_html: str) -> list[str]:
    """CSP source expressions (``'sha256-...'``) for every inline ``<script>`` of a page."""
    found = []
    for attrs, body in re.findall(r"<script\b([^>]*)>(.*?)</script>", index_html, re.S | re.I):
        if "src=" not in attrs:
            digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
            found.append(f"'sha256-{digest}'")
    return found


def streamlit_index_html() -> str:
    """The ``index.html`` Streamlit serves for every page (read once, at start-up)."""
    import streamlit

    return (Path(streamlit.__file__).parent / "static" / "index.html").read_text(encoding="utf-8")


def content_security_policy(script_hashes: Iterable[str]) -> str:
    # 'wasm-unsafe-eval': Streamlit's dataframe compiles WebAssembly (not JavaScript eval)
    scripts = " ".join(["'self'", "'wasm-unsafe-eval'", *script_hashes])
    return "; ".join([
        "default-src 'self'", f"script-src {scripts}", "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data: blob:", "font-src 'self' data:", "connect-src 'self'", "worker-src 'self' blob:",
        "frame-src 'self'", "frame-ancestors 'none'", "object-src 'none'", "base-uri 'none'",
        "form-action 'self'",
    ])


class SecurityHeaders:
    """Adds the CSP and the other protective headers to every HTTP response.

    ``Cache-Control: no-store`` replaces whatever a response said, except on
    Streamlit's content-hashed bundles (``immutable``), which hold no data.
    """

    def __init__(self, app: ASGIApp, csp: str | None = None) -> None:
        self.app = app
        csp = csp or content_security_policy(inline_script_hashes(streamlit_index_html()))
        self.headers = {"content-security-policy": csp, "x-frame-options": "DENY",
                        "x-content-type-options": "nosniff", "referrer-policy": "no-referrer",
                        "cross-origin-opener-policy": "same-origin", "cross-origin-resource-policy": "same-origin",
                        "permissions-policy": PERMISSIONS}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for key, value in self.headers.items():
                    headers[key] = value
                if "immutable" not in headers.get("cache-control", ""):
                    headers["cache-control"] = "no-store"
            await send(message)

        await self.app(scope, receive, send_with_headers)


def configured_origins(environ=os.environ) -> set[str]:
    """``VAULT_CONSOLE_ORIGINS``: comma-separated ``scheme://host[:port]`` the browser may come from."""
    found = set()
    for part in environ.get("VAULT_CONSOLE_ORIGINS", "").split(","):
        part = part.strip().rstrip("/").lower()
        if re.fullmatch(r"https?://[^/\s]+", part):
            found.add(part)
    return found


def _origin(scheme: str, host: str, port: int) -> str:
    default = 443 if scheme == "https" else 80
    shown = f"[{host}]" if ":" in host else host
    return f"{scheme}://{shown}" if port == default else f"{scheme}://{shown}:{port}"


def own_origins(scope: Scope, extra: set[str]) -> set[str]:
    """The origins of the address this server answers on (its socket), plus the configured ones.

    A loopback socket answers to ``localhost``, ``127.0.0.1`` and ``[::1]`` on
    that port; anything reached through a proxy must be listed in
    ``VAULT_CONSOLE_ORIGINS``.
    """
    server = scope.get("server") or ("", 0)
    host, port = str(server[0] or ""), int(server[1] or 0)
    scheme = "https" if scope.get("scheme") in ("https", "wss") else "http"
    hosts = {host} | ({"localhost", "127.0.0.1", "::1"} if is_loopback(host) else set())
    return {_origin(scheme, h, port) for h in hosts if h} | extra


class WebSocketOrigin:
    """Refuses (403, before the upgrade) a ``/_stcore/stream`` handshake from a foreign or missing Origin."""

    def __init__(self, app: ASGIApp, origins: set[str] | None = None) -> None:
        self.app = app
        self.extra = configured_origins() if origins is None else origins

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            origin = (Headers(scope=scope).get("origin") or "").strip().lower()
            if not origin or origin not in own_origins(scope, self.extra):
                # closing before accept makes the server answer the handshake with HTTP 403
                await send({"type": "websocket.close", "code": 1008})
                return
        await self.app(scope, receive, send)


class LoginGate:
    """Sends a browser that loads a console page without a valid session to ``/login``.

    ``valid(token)`` says whether a session cookie's value is a live session.
    The pages check again on every run; this only spares strangers the app shell.
    """

    def __init__(self, app: ASGIApp, valid: Callable[[str | None], bool]) -> None:
        self.app = app
        self.valid = valid

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or scope.get("method") != "GET" or path.startswith(OPEN_PREFIXES):
            await self.app(scope, receive, send)
            return
        from starlette.concurrency import run_in_threadpool
        from starlette.requests import Request
        from starlette.responses import RedirectResponse

        request = Request(scope)
        token = cookies.read(request.cookies, cookies.SESSION, secure_request(request))
        if token is not None and await run_in_threadpool(self.valid, token):
            await self.app(scope, receive, send)
            return
        target = "/login" if path in ("", "/") else "/login?next=" + quote(path, safe="/")
        await RedirectResponse(target, status_code=303)(scope, receive, send)


def secure_request(request) -> bool:
    """Is this Starlette request (HTTP or WebSocket) a secure context for the browser?"""
    from .request import peer_is_trusted

    peer = request.client.host if request.client else None
    proto = request.headers.get("x-forwarded-proto") if peer_is_trusted(peer) else None
    return cookies.is_secure(request.url.scheme, request.headers.get("host"), proto)


