"""The console's two cookies: the session (set by the login route) and the CSRF token of its forms.

Both are ``HttpOnly; SameSite=Strict; Path=/``: no page script can read them,
and no other site's request carries them. They are also ``Secure`` with the
``__Host-`` prefix whenever the console is reached over TLS (directly, or
through a trusted proxy saying ``X-Forwarded-Proto: https``) or on a loopback
host name, which browsers treat as a secure context. Only the name that fits
the request is read, so a cookie planted over plain HTTP under the other name
is ignored.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets as pysecrets
from collections.abc import Mapping
from typing import Any

SESSION = "vault_session"
CSRF = "vault_csrf"
SESSION_SECONDS = 12 * 3600  # the server-side session lasts 12 hours too
LOOPBACK_NAMES = {"localhost"}


def host_name(host_header: str | None) -> str:
    """The host of a ``Host`` header, without port or IPv6 brackets (lower-case)."""
    host = (host_header or "").strip().lower()
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_secure(scheme: str, host_header: str | None, forwarded_proto: str | None = None) -> bool:
    """Whether the browser sees this request as a secure context (TLS, a trusted TLS proxy, loopback).

    ``forwarded_proto`` must be passed only when the peer is a trusted proxy.
    """
    if scheme in ("https", "wss") or (forwarded_proto or "").split(",")[0].strip().lower() == "https":
        return True
    return is_loopback(host_name(host_header))


def name(base: str, secure: bool) -> str:
    return f"__Host-{base}" if secure else base


def read(cookies: Mapping[str, Any], base: str, secure: bool) -> str | None:
    """The value of cookie ``base`` under the one name that fits the request, if it looks sane."""
    value = cookies.get(name(base, secure))
    return value if isinstance(value, str) and 0 < len(value) <= 256 else None


def attributes(secure: bool, max_age: int | None) -> dict[str, Any]:
    """Keyword arguments for Starlette's ``Response.set_cookie`` / ``delete_cookie``."""
    attrs: dict[str, Any] = {"path": "/", "httponly": True, "samesite": "strict", "secure": secure}
    if max_age is not None:
        attrs["max_age"] = max_age
    return attrs


def new_csrf() -> str:
    return pysecrets.token_urlsafe(24)


def csrf_ok(cookie_value: str | None, form_value: Any) -> bool:
    """Double submit: the form's hidden field must equal the HttpOnly cookie (constant time)."""
    return (isinstance(cookie_value, str) and isinstance(form_value, str) and len(cookie_value) >= 16
            and hmac.compare_digest(cookie_value.encode(), form_value.encode()))
