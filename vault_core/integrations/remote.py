"""A remote vault for application helpers: the HTTP API of ``vault-console serve``, no key or database here.

    VAULT_ADDR=https://vault.internal:8200 VAULT_ROLE_ID=... VAULT_SECRET_ID=... streamlit run app.py

When ``VAULT_ADDR`` is set, ``vault_core.streamlit.secrets`` and ``vault-console run`` read through
``connect()``; ``EnvironmentSecrets(connect(), "production")`` works as with a local vault. The
credentials are Vault's own variables: ``VAULT_TOKEN``, or ``VAULT_ROLE_ID`` + ``VAULT_SECRET_ID``
(an AppRole login, repeated when the token has expired or was revoked); ``VAULT_CACERT`` names the CA
bundle that verifies the server's certificate (TLS is always verified). Reads are what the token's
principal may read, audited on the server; ``secret_versions`` is one cheap request (no value), which
the ``secrets`` mapping polls to refresh its cache when a version changes.
"""

from __future__ import annotations

import json
import os
import ssl
import threading
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator, Mapping
from typing import Any
from urllib.parse import quote

from ..api.kv import from_data
from ..errors import AccessDenied, NotFound, Sealed, ValidationError, VaultError
from ..types import Environment

TIMEOUT = 10.0


class RemoteVault:
    """What ``VaultSecrets``, ``EnvironmentSecrets`` and ``run`` need from a vault, over HTTP(S).

    ``repr`` shows the address only. Thread-safe (one token, refreshed under a lock).
    """

    sealed = False
    storage = None  # no local database: no change signal, callers poll ``secret_versions``

    def __init__(self, addr: str, *, token: str | None = None, role_id: str | None = None,
                 secret_id: str | None = None, ca_file: str | None = None, timeout: float = TIMEOUT):
        """Raises ``ValidationError`` for an address that is not http(s) or missing credentials."""
        addr = (addr or "").rstrip("/")
        if not addr.startswith(("https://", "http://")):
            raise ValidationError("VAULT_ADDR must be an http:// or https:// address")
        if not token and not (role_id and secret_id):
            raise ValidationError("set VAULT_TOKEN, or VAULT_ROLE_ID and VAULT_SECRET_ID")
        self.addr, self._timeout = addr, timeout
        self._token, self._approle = token, (role_id, secret_id) if role_id and secret_id else None
        self._ssl = ssl.create_default_context(cafile=ca_file) if addr.startswith("https://") else None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"RemoteVault(addr={self.addr!r})"

    # -- HTTP ------------------------------------------------------------------------------------
    def _send(self, method: str, path: str, body: Any = None, token: str | None = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode("utf-8")
        headers = {"Content-Type": "application/json", "User-Agent": "vault-core-remote"}
        if token:
            headers["X-Vault-Token"] = token
        req = urllib.request.Request(self.addr + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=self._timeout, context=self._ssl) as resp:
                raw = resp.read()
                return resp.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            try:
                return exc.code, json.loads(raw) if raw else None
            except ValueError:
                return exc.code, None
        except (urllib.error.URLError, OSError) as exc:
            raise VaultError(f"cannot reach the vault at {self.addr}: {type(exc).__name__}") from None

    def _login(self) -> str:
        assert self._approle is not None
        status, body = self._send("POST", "/v1/auth/approle/login",
                                  {"role_id": self._approle[0], "secret_id": self._approle[1]})
        if status != 200:
            raise AccessDenied(f"AppRole login refused ({status}): {_first_error(body)}")
        return body["auth"]["client_token"]

    def _current_token(self, stale: str | None = None) -> str:
        with self._lock:
            if self._token is None or (stale is not None and self._token == stale and self._approle):
                self._token = self._login()
            return self._token

    def _call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """One request with the token; a 403 on a dead token logs in again (AppRole) and retries once."""
        token = self._current_token()
        status, answer = self._send(method, path, body, token)
        if status == 403 and self._approle and self._send("GET", "/v1/auth/token/lookup-self",
                                                          token=token)[0] == 403:
            status, answer = self._send(method, path, body, self._current_token(stale=token))
        if status == 403:
            raise AccessDenied(f"the vault refused this token access to {path.split('?')[0]}")
        if status == 503:
            raise Sealed("the remote vault is sealed or unavailable")
        if status >= 400 and status != 404:
            raise VaultError(f"the vault answered {status}: {_first_error(answer)}")
        return status, answer

    # -- what the helpers use ---------------------------------------------------------------------
    def secret_versions(self, environment: Any = None, names: Iterable[str] | None = None
                        ) -> dict[str, tuple[int, tuple[str, ...]]]:
        """``{name: (current_version, tags)}`` of the live secrets the token may READ (no value)."""
        env = _env(environment)
        status, body = self._call("GET", f"/v1/{env}/versions")
        if status == 404:
            raise NotFound(f"the vault has no environment {env}")
        listing = {n: (int(v["version"]), tuple(v.get("tags") or ())) for n, v in body["data"]["versions"].items()}
        if names is not None:
            wanted = set(names)
            listing = {n: v for n, v in listing.items() if n in wanted}
        return listing

    def get_secret(self, name: str | None = None, environment: Any = None, *, version: int | None = None,
                   secret_id: str | None = None, label: str | None = None) -> str | bytes | None:
        """The value (as stored: text or bytes), or None when missing. Raises ``AccessDenied``, ``VaultError``."""
        if secret_id is not None or label is not None or not isinstance(name, str):
            raise ValidationError("a remote vault reads by name (and version)")
        query = f"?version={int(version)}" if version else ""
        status, body = self._call("GET", f"/v1/{_env(environment)}/data/{quote(name, safe='/')}{query}")
        if status == 404 or not body or not body.get("data") or body["data"].get("data") is None:
            return None
        return from_data(body["data"]["data"])

    def readable(self, environment: Any = None, prefix: str | None = None) -> Iterator[tuple[str, str | bytes]]:
        """(name, value) of every secret the token may READ, by name (each an audited read)."""
        for name in sorted(self.secret_versions(environment)):
            if prefix is None or name.startswith(prefix):
                value = self.get_secret(name, environment)
                if value is not None:
                    yield name, value


def _env(environment: Any) -> str:
    from ..types import default_environment

    return (default_environment() if environment is None else Environment.parse(environment)).value


def _first_error(body: Any) -> str:
    errors = body.get("errors") if isinstance(body, dict) else None
    return str(errors[0])[:200] if errors else "no detail"


_remote: RemoteVault | None = None
_remote_key: tuple | None = None
_remote_lock = threading.Lock()


def connect(environ: Mapping[str, str] = os.environ) -> RemoteVault | None:
    """The process's remote vault from ``VAULT_ADDR`` (and Vault's credential variables), or None.

    One per set of variables, shared. Raises ``ValidationError`` for a bad address or missing credentials.
    """
    global _remote, _remote_key
    addr = environ.get("VAULT_ADDR")
    if not addr:
        return None
    key = tuple(environ.get(k) for k in ("VAULT_ADDR", "VAULT_TOKEN", "VAULT_ROLE_ID", "VAULT_SECRET_ID",
                                         "VAULT_CACERT"))
    with _remote_lock:
        if _remote is None or _remote_key != key:
            _remote = RemoteVault(addr, token=environ.get("VAULT_TOKEN"), role_id=environ.get("VAULT_ROLE_ID"),
                                  secret_id=environ.get("VAULT_SECRET_ID"), ca_file=environ.get("VAULT_CACERT"))
            _remote_key = key
        return _remote
