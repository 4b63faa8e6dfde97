"""The API's routes: ``/v1/sys/health``, AppRole login, token self-service and a KV v2 mount per environment.

Every call with a token runs as the token's principal in a ``vault.security_context`` (client address
and User-Agent as the console records them), so the vault's own operations validate, check the rules,
act and audit it. What this subset supports, and how it differs from Vault, is in the README
("The HTTP API").
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..errors import AccessDenied, AccountLocked, Conflict, LoginFailed, NotFound, Sealed, ValidationError
from ..errors import VaultError
from ..service.machines import MachineToken
from ..types import US, Environment, to_datetime
from . import kv
from .http import Refused, answer, client_of, errors, json_body, token_of

METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "LIST"]
Vault = Any


def _vault() -> Vault:
    from ..console.runtime import console_vault

    return console_vault()


class Call:
    """One API request: its vault, caller and (once checked) token."""

    def __init__(self, request: Request, vault: Vault):
        self.request, self.vault, self.client = request, vault, client_of(request)
        self.machines = vault.machines
        self.token: MachineToken | None = None

    async def authenticate(self) -> MachineToken:
        """Check the request's token once (later calls return it). Raises ``Refused`` (403) without a live one."""
        if self.token is not None:
            return self.token
        token = token_of(self.request)
        self.token = await run_in_threadpool(self.machines.check_token, token)
        if self.token is None:
            raise Refused(403, "permission denied")
        return self.token

    async def run(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``fn(*args, **kwargs)`` in a worker thread, as the token's principal."""
        token, client = self.token, self.client
        assert token is not None

        def as_principal() -> Any:
            with self.vault.security_context(token.principal, client.ip_address, client.user_agent,
                                             session_id=token.accessor[:16], forwarded_for=client.forwarded_for,
                                             forwarded_trusted=client.forwarded_trusted):
                return fn(*args, **kwargs)
        return await run_in_threadpool(as_principal)


# -- sys and auth ------------------------------------------------------------------------------------
async def health(call: Call) -> Response:
    client = call.client

    def probe() -> dict[str, Any]:  # a strict vault answers nobody without a context: the probe is a caller
        with call.vault.security_context("api:health", client.ip_address, client.user_agent,
                                         forwarded_for=client.forwarded_for,
                                         forwarded_trusted=client.forwarded_trusted):
            return call.vault.status()
    status = await run_in_threadpool(probe)
    sealed = bool(status.get("sealed")) or not status.get("reachable", False)
    body = {"initialized": True, "sealed": sealed, "standby": False, "performance_standby": False,
            "replication_performance_mode": "disabled", "replication_dr_mode": "disabled",
            "server_time_utc": int(time.time()), "version": _server_version(), "cluster_name": "vault-core",
            "cluster_id": status.get("vault_id") or ""}
    return JSONResponse(body, status_code=503 if sealed else 200)


def _server_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"vault-core {version('vault-core')}"
    except PackageNotFoundError:
        return "vault-core"


def _auth(info: MachineToken, token: str | None = None) -> dict[str, Any]:
    remaining = max(0, (info.expires_at - call_now()) // US)
    out = {"accessor": info.accessor, "policies": ["default"], "token_policies": ["default"],
           "metadata": {"role_name": info.principal}, "lease_duration": remaining, "renewable": True,
           "entity_id": "", "token_type": "service", "orphan": True, "mfa_requirement": None, "num_uses": 0}
    if token is not None:
        out = {"client_token": token, **out}
    return out


def call_now() -> int:
    return time.time_ns() // 1000


async def approle_login(call: Call, body: dict[str, Any]) -> Response:
    c = call.client
    issued = await run_in_threadpool(call.machines.login, body.get("role_id"), body.get("secret_id"),
                                     c.ip_address, c.user_agent, forwarded_for=c.forwarded_for,
                                     forwarded_trusted=c.forwarded_trusted)
    return answer(auth=_auth(issued.info, issued.token))


async def lookup_self(call: Call) -> Response:
    t = await call.authenticate()
    created, expires = to_datetime(t.created_at), to_datetime(t.expires_at)
    return answer({"accessor": t.accessor, "creation_time": t.created_at // US, "creation_ttl": t.ttl,
                   "display_name": f"approle-{t.principal}", "entity_id": "", "expire_time": kv.rfc3339(expires),
                   "explicit_max_ttl": (t.max_expires_at - t.created_at) // US, "issue_time": kv.rfc3339(created),
                   "meta": {"role_name": t.principal}, "num_uses": 0, "orphan": True, "path": "auth/approle/login",
                   "policies": ["default"], "renewable": True, "ttl": max(0, (t.expires_at - call_now()) // US),
                   "type": "service"})


async def renew_self(call: Call, body: dict[str, Any]) -> Response:
    await call.authenticate()
    increment = kv.seconds(body.get("increment"), "increment")
    info = await call.run(call.machines.renew, token_of(call.request), increment)
    return answer(auth=_auth(info))


async def revoke_self(call: Call) -> Response:
    await call.authenticate()
    await call.run(call.machines.revoke, token_of(call.request))
    return answer()


# -- KV version 2 ------------------------------------------------------------------------------------
def _version_of(versions: list, number: int | None):
    return next((v for v in versions if (v.version == number if number else v.state == "current")), None)


async def kv_read(call: Call, env: str, name: str) -> Response:
    """A value (of ``?version=``, else the current one) with its version's metadata; 404 when missing."""
    raw = call.request.query_params.get("version")
    wanted = None
    if raw not in (None, "", "0"):
        if not raw.isdigit() or len(raw) > 12:
            raise ValidationError("version must be a whole number")
        wanted = int(raw)
    await call.authenticate()
    if wanted is None:  # the current version's number first (no value read, not audited), then that version
        current = await call.run(call.vault.secret_versions, env, [name])
        wanted = current[name][0] if name in current else None
    value = await call.run(call.vault.get_secret, name, env, version=wanted)
    if value is None:
        meta = await call.run(call.vault.get_metadata, name, env)
        if meta is not None and meta.deleted_at is not None:  # Vault answers a deleted version so
            return answer({"data": None, "metadata": kv.version_metadata(None, meta) | {
                "version": wanted or meta.current_version}}, status=404)
        raise NotFound("no such secret or version")
    versions = await call.run(call.vault.list_versions, name, env)
    return answer({"data": kv.to_data(value), "metadata": kv.version_metadata(_version_of(versions, wanted), None)})


async def kv_write(call: Call, env: str, name: str, body: dict[str, Any]) -> Response:
    """Create or write a new version; ``options.cas`` as Vault (0: create only; N: only at version N)."""
    options = body.get("options") or {}
    if not isinstance(options, dict):
        raise ValidationError('"options" must be a JSON object')
    cas = options.get("cas")
    if cas is not None and (isinstance(cas, bool) or not isinstance(cas, int) or cas < 0):
        raise ValidationError('"options.cas" must be a whole number')
    if "data" not in body:
        raise ValidationError('the body needs a "data" object')
    value = kv.from_data(body["data"])
    await call.authenticate()
    version = 1
    if cas == 0:
        await call.run(call.vault.store_secret, name, value, environment=env, cas=0)
    else:
        try:  # a new version keeps the secret's type, tags and description
            version = await call.run(call.vault.update_secret, name, env, value=value, cas=cas)
        except NotFound:
            await call.run(call.vault.store_secret, name, value, environment=env, cas=cas)
    versions = await call.run(call.vault.list_versions, name, env)
    return answer(kv.version_metadata(_version_of(versions, version if version > 1 else None), None))


async def kv_metadata(call: Call, env: str, name: str) -> Response:
    await call.authenticate()
    meta = await call.run(call.vault.get_metadata, name, env)
    if meta is None:
        raise NotFound("no such secret")
    versions = await call.run(call.vault.list_versions, name, env)
    return answer(kv.secret_metadata(meta, versions))


async def kv_list(call: Call, env: str, prefix: str) -> Response:
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    await call.authenticate()
    names, cursor = [], None
    while True:
        page = await call.run(call.vault.list_secrets, env, prefix=prefix or None, limit=1000, cursor=cursor)
        names += [m.name for m in page]
        cursor = page.next_cursor
        if cursor is None:
            break
    keys = kv.list_keys(names, prefix)
    if not keys:
        raise NotFound("nothing listed here")
    return answer({"keys": keys})


def _versions_of(body: dict[str, Any]) -> set[int]:
    versions = body.get("versions")
    if not isinstance(versions, list) or not versions or not all(
            isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in versions):
        raise ValidationError('"versions" must be a non-empty list of version numbers')
    return set(versions)


async def kv_delete(call: Call, env: str, name: str, body: dict[str, Any] | None) -> Response:
    """Soft-delete the secret (this vault deletes a secret as a whole: the versions must name its current one)."""
    await call.authenticate()
    if body is not None:
        asked = _versions_of(body)
        meta = await call.run(call.vault.get_metadata, name, env)
        if meta is None:
            raise NotFound("no such secret")
        if meta.current_version not in asked:
            raise ValidationError("this vault soft-deletes a secret as a whole: include its current version "
                                  f"({meta.current_version}) in \"versions\"")
    await call.run(call.vault.delete_secret, name, env)
    return answer()


async def kv_undelete(call: Call, env: str, name: str, body: dict[str, Any]) -> Response:
    _versions_of(body)
    await call.authenticate()
    await call.run(call.vault.restore_secret, name, env)
    return answer()


async def kv_destroy(call: Call, env: str, name: str, body: dict[str, Any] | None) -> Response:
    """Destroy for good: ``/destroy/`` must name every stored version; ``DELETE /metadata/`` destroys all."""
    await call.authenticate()
    if body is not None:
        asked = _versions_of(body)
        stored = {v.version for v in await call.run(call.vault.list_versions, name, env)}
        if not stored:
            raise NotFound("no such secret")
        if not stored <= asked:
            raise ValidationError("this vault destroys a secret with all its versions: name every stored "
                                  f"version ({', '.join(map(str, sorted(stored)))}) in \"versions\"")
    await call.run(call.vault.purge_secret, name, env)
    return answer()


async def kv_versions(call: Call, env: str) -> Response:
    """Extension: ``{name: {"version", "tags"}}`` of what the caller may READ (no value; a cheap poll)."""
    await call.authenticate()
    listing = await call.run(call.vault.secret_versions, env)
    return answer({"versions": {n: {"version": v, "tags": list(t)} for n, (v, t) in sorted(listing.items())}})


# -- dispatch ----------------------------------------------------------------------------------------
Handler = Callable[..., Awaitable[Response]]
NO_BODY, BODY, OPTIONAL_BODY = 0, 1, 2
FIXED: dict[tuple[str, str], tuple[Handler, int]] = {
    ("sys/health", "GET"): (health, NO_BODY), ("sys/health", "HEAD"): (health, NO_BODY),
    ("auth/approle/login", "POST"): (approle_login, BODY), ("auth/approle/login", "PUT"): (approle_login, BODY),
    ("auth/token/lookup-self", "GET"): (lookup_self, NO_BODY),
    ("auth/token/lookup-self", "POST"): (lookup_self, NO_BODY),
    ("auth/token/renew-self", "POST"): (renew_self, BODY), ("auth/token/renew-self", "PUT"): (renew_self, BODY),
    ("auth/token/revoke-self", "POST"): (revoke_self, NO_BODY),
    ("auth/token/revoke-self", "PUT"): (revoke_self, NO_BODY),
}
KV: dict[tuple[str, str], tuple[Handler, int]] = {
    ("data", "GET"): (kv_read, NO_BODY), ("data", "POST"): (kv_write, BODY), ("data", "PUT"): (kv_write, BODY),
    ("data", "DELETE"): (kv_delete, NO_BODY), ("metadata", "GET"): (kv_metadata, NO_BODY),
    ("metadata", "LIST"): (kv_list, NO_BODY), ("metadata", "DELETE"): (kv_destroy, NO_BODY),
    ("delete", "POST"): (kv_delete, BODY), ("delete", "PUT"): (kv_delete, BODY),
    ("undelete", "POST"): (kv_undelete, BODY), ("undelete", "PUT"): (kv_undelete, BODY),
    ("destroy", "POST"): (kv_destroy, BODY), ("destroy", "PUT"): (kv_destroy, BODY),
}
STATUS = ((Refused, 0), (AccountLocked, 429), (LoginFailed, 400), (AccessDenied, 403), (NotFound, 404),
          (Conflict, 400), (ValidationError, 400), (Sealed, 503), (VaultError, 500))


def _route(path: str, method: str) -> tuple[Handler, int, tuple[str, ...]]:
    """(handler, body kind, arguments) for a path under /v1/; raises ``Refused`` (404, 405)."""
    fixed = {m for (p, m) in FIXED if p == path}
    if fixed:
        if (path, method) not in FIXED:
            raise Refused(405, "unsupported operation")
        return (*FIXED[(path, method)], ())
    env, _, rest = path.partition("/")
    try:
        env = Environment.parse(env).value
    except ValidationError:
        raise Refused(404, "no handler for route: not a vault environment (a KV v2 mount)") from None
    if rest == "versions" and method == "GET":
        return kv_versions, NO_BODY, (env,)
    kind, _, name = rest.partition("/")
    if kind == "metadata" and (method == "LIST" or not name or name.endswith("/")):
        method = "LIST" if method in ("GET", "LIST") else method
    if (kind, method) not in KV:
        raise Refused(405 if kind in {k for k, _ in KV} else 404, "unsupported operation")
    if not name and (kind, method) != ("metadata", "LIST"):
        raise Refused(404, "no secret name in the path")
    return (*KV[(kind, method)], (env, name))


async def dispatch(request: Request) -> Response:
    """Route one ``/v1/...`` request; every error is a Vault-style ``{"errors": [...]}`` that echoes no value."""
    method = request.method
    if method == "GET" and request.query_params.get("list") in ("true", "1"):
        method = "LIST"  # what clients send where a proxy refuses the LIST method
    try:
        handler, body_kind, args = _route(request.path_params["path"], method)
        call = Call(request, await run_in_threadpool(_vault))
        if handler not in (health, approle_login):
            await call.authenticate()  # before the body is even looked at: no token, 403
        if body_kind == BODY:
            args = (*args, await json_body(request))
        elif handler in (kv_delete, kv_destroy):
            args = (*args, None)
        return await handler(call, *args)
    except Exception as exc:
        for cls, status in STATUS:
            if isinstance(exc, cls):
                if isinstance(exc, Refused):
                    return errors(exc.status, *exc.errors)
                if status == 403:
                    return errors(403, "permission denied")
                if isinstance(exc, Conflict) and "check-and-set" in str(exc):
                    return errors(400, "check-and-set parameter did not match the current version")
                if status == 404:
                    return errors(404)
                return errors(status, str(exc))
        raise


def api_routes() -> list[Route]:
    """The Starlette routes of the API (mounted by the console's st.App, or alone by ``api.asgi``)."""
    return [Route("/v1/{path:path}", dispatch, methods=METHODS)]
