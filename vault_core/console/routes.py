"""Starlette routes of the console: login, logout, password change, audit export, /healthz, /metrics.

A user with two-factor on logs in in two steps: the password step answers with the code form and
an ``HttpOnly`` cookie holding the signed five-minute ticket of ``SecondFactorRequired``; the
session cookie is set only by the code step (``/login/code``).

The password is checked here, not in a Streamlit run, so that the session
cookie is set by an HTTP response (``HttpOnly; SameSite=Strict``) and no page
script ever holds it. Every form carries the double-submit CSRF token of
``cookies.CSRF``. Pages find the session from the cookie of their WebSocket
handshake (``auth.current_session``).
"""

from __future__ import annotations

import html
import queue
import re
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.responses import StreamingResponse
from starlette.routing import Route

from ..errors import AccessDenied, AccountLocked, LoginExpired, LoginFailed, SecondFactorRequired, Sealed
from ..errors import ValidationError, VaultError
from . import cookies
from .middleware import secure_request
from .request import RequestInfo, peer_is_trusted, request_info
from .runtime import console_vault, services

MAX_FORM_BYTES = 8192
PENDING = "vault_login_pending"  # the password step's signed ticket, until the code step (HttpOnly)
PENDING_SECONDS = 300
EXPORT_FILTERS = ("principal", "operation", "environment", "outcome", "name", "since", "until")
EXPORT_TYPES = {"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson",
                "ocsf": "application/x-ndjson", "ecs": "application/x-ndjson"}  # OCSF 1.2 / ECS events, one a line


def who(request: Request) -> RequestInfo:
    """The request as the audit log records it (peer, forwarded chain, User-Agent)."""
    return request_info(request.client.host if request.client else None, dict(request.headers))


def session_token(request: Request) -> str | None:
    return cookies.read(request.cookies, cookies.SESSION, secure_request(request))


async def _form(request: Request) -> dict[str, str]:
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            return {}
    return dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))


def _local_path(raw: str | None) -> str:
    """Only a path on this server may follow a login (no ``//host``, scheme, backslash or whitespace,
    which browsers drop or turn into ``/``)."""
    if not raw or not re.fullmatch(r"/(?![/\\])[A-Za-z0-9/_.~%?=&+-]*", raw) or len(raw) > 512:
        return "/"
    return raw


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    doc = ("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
           f"<title>{html.escape(title)}</title><link rel=\"icon\" href=\"/favicon.png\"></head>"
           f"<body><main><h1>Vault console</h1>{body}</main></body></html>")
    return HTMLResponse(doc, status_code=status)


def _with_csrf(request: Request, build: Callable[[str], HTMLResponse]) -> HTMLResponse:
    """Render a form page with the browser's CSRF token (minted and set if it has none)."""
    secure = secure_request(request)
    token = cookies.read(request.cookies, cookies.CSRF, secure)
    fresh = token is None
    token = token or cookies.new_csrf()
    response = build(token)
    if fresh:
        response.set_cookie(cookies.name(cookies.CSRF, secure), token, **cookies.attributes(secure, None))
    return response


def _fields(*rows: tuple[str, str, str, str]) -> str:
    return "".join(f"<p><label for=\"{n}\">{html.escape(label)}</label> "
                   f"<input id=\"{n}\" name=\"{n}\" type=\"{kind}\" autocomplete=\"{auto}\" required></p>"
                   for n, label, kind, auto in rows)


def _form_html(form_id: str, action: str, heading: str, fields: str, button: str, csrf: str,
               message: str = "", hidden: dict[str, str] | None = None) -> str:
    extra = "".join(f"<input type=\"hidden\" name=\"{k}\" value=\"{html.escape(v)}\">"
                    for k, v in (hidden or {}).items())
    note = f"<p role=\"alert\">{html.escape(message)}</p>" if message else ""
    return (f"<h2>{html.escape(heading)}</h2>{note}<form id=\"{form_id}\" method=\"post\" action=\"{action}\">"
            f"<input type=\"hidden\" name=\"csrf\" value=\"{html.escape(csrf)}\">{extra}{fields}"
            f"<p><button type=\"submit\">{html.escape(button)}</button></p></form>")


def _login_page(request: Request, message: str = "", status: int = 200) -> HTMLResponse:
    nxt = _local_path(request.query_params.get("next"))
    fields = _fields(("username", "Username", "text", "username"),
                     ("password", "Password", "password", "current-password"))
    links = "".join(f'<p><a id="sso-{html.escape(p["name"])}" href="/login/sso/{html.escape(p["name"])}">'
                    f'Sign in with {html.escape(p["name"])}</a></p>' for p in _sso_providers())
    response = _with_csrf(request, lambda csrf: _page("Vault console: log in", _form_html(
        "login", "/login", "Log in", fields, "Log in", csrf, message, {"next": nxt}) + links, status))
    return _forget_streamlit_user(response, request)


def _sso_providers() -> list[dict[str, Any]]:
    try:
        return console_vault().sso.providers_for_login()
    except VaultError:
        return []


def _forget_streamlit_user(response: Response, request: Request) -> Response:
    """Delete Streamlit's own login cookies: they never stand for a console session (console/sso.py)."""
    from .sso import STREAMLIT_COOKIES

    for name in request.cookies:
        if name in STREAMLIT_COOKIES or name.rstrip("0123456789").rstrip("_") in STREAMLIT_COOKIES:
            response.delete_cookie(name, path="/")
    return response


async def sso_start(request: Request) -> Response:
    """GET ``/login/sso/{provider}``: off to the provider through Streamlit's ``/auth/login``, or, when the
    provider does not answer, the login page saying so (password login still works)."""
    from .sso import login_url, provider_reachable

    vault, name = console_vault(), request.path_params["provider"]
    try:
        found = await run_in_threadpool(vault.sso.provider, name)
    except ValidationError:
        found = None
    if found is None:
        return _login_page(request, "No such sign-in provider.", 404)
    if not await run_in_threadpool(provider_reachable, found["server_metadata_url"]):
        req = who(request)
        await run_in_threadpool(vault.sso.record_provider_error, found["name"], req.ip_address, req.user_agent)
        return _login_page(request, f"The identity provider {found['name']} cannot be reached right now. "
                                    "Log in with your user name and password instead.", 503)
    return RedirectResponse(login_url(found["name"]), status_code=303)


async def _sso_finish(request: Request, claims: dict[str, Any]) -> Response:
    """The provider's callback left its claims in Streamlit's cookie: open the vault session once."""
    vault, req = console_vault(), who(request)
    try:
        token = await run_in_threadpool(vault.sso_login, str(claims.get("provider", "")), claims, req.ip_address,
                                        req.user_agent, forwarded_for=req.forwarded_for,
                                        forwarded_trusted=req.forwarded_trusted)
    except SecondFactorRequired as step:
        response = _code_page(request, step.user or "", "/")
        secure = secure_request(request)
        response.set_cookie(cookies.name(PENDING, secure), step.ticket, **cookies.attributes(secure, PENDING_SECONDS))
        return _forget_streamlit_user(response, request)
    except (AccessDenied, ValidationError) as exc:
        return _login_page(request, str(exc), 401)
    session = await run_in_threadpool(vault.check_session, token)
    target = "/password" if session is not None and session.must_change_password else "/"
    # a page, not a redirect: the redirect chain began at the provider (another site), where a browser
    # would not yet send the SameSite=Strict session cookie; this page's own navigation is same-site
    response = _page("Vault console: signed in", f'<meta http-equiv="refresh" content="0; url={target}">'
                     f'<p>Signed in. <a id="continue" href="{target}">Continue to the console</a></p>')
    return _forget_streamlit_user(_set_session(response, request, token), request)


def _csrf_refused(request: Request, form: dict[str, str]) -> bool:
    return not cookies.csrf_ok(cookies.read(request.cookies, cookies.CSRF, secure_request(request)),
                               form.get("csrf"))


def _set_session(response: Response, request: Request, token: str) -> Response:
    secure = secure_request(request)
    response.set_cookie(cookies.name(cookies.SESSION, secure), token,
                        **cookies.attributes(secure, cookies.SESSION_SECONDS))
    return response


def _after_login(request: Request, session: Any, nxt: str | None, token: str) -> Response:
    target = "/password" if session is not None and session.must_change_password else _local_path(nxt)
    return _set_session(RedirectResponse(target, status_code=303), request, token)


def _code_page(request: Request, user: str, nxt: str, message: str = "", status: int = 200) -> HTMLResponse:
    fields = _fields(("code", "Code from your authenticator app, or a recovery code", "text", "one-time-code"))
    return _with_csrf(request, lambda csrf: _page("Vault console: two-factor code", _form_html(
        "login-code", "/login/code", "Two-factor code", fields, "Verify", csrf, message,
        {"username": user, "next": _local_path(nxt)}), status))


async def login(request: Request) -> Response:
    """GET: the login form. POST: check the password; on success set the session cookie and redirect,
    or (two-factor on) answer with the code form and the pending ticket's cookie."""
    if request.method in ("GET", "HEAD"):
        from .sso import streamlit_user_claims

        claims = streamlit_user_claims(request.cookies) if not request.query_params.get("bye") else None
        if claims is not None:
            return await _sso_finish(request, claims)
        return _login_page(request, "You are logged out." if request.query_params.get("bye") else "")
    form = await _form(request)
    if _csrf_refused(request, form):
        return _login_page(request, "The form expired. Please log in again.", 403)
    vault, req = console_vault(), who(request)
    try:
        token = await run_in_threadpool(vault.verify_login, form.get("username", ""), form.get("password", ""),
                                        req.ip_address, req.user_agent, forwarded_for=req.forwarded_for,
                                        forwarded_trusted=req.forwarded_trusted)
    except SecondFactorRequired as step:
        response = _code_page(request, form.get("username", ""), form.get("next", ""))
        secure = secure_request(request)
        response.set_cookie(cookies.name(PENDING, secure), step.ticket, **cookies.attributes(secure, PENDING_SECONDS))
        return response
    except (AccessDenied, ValidationError) as exc:
        return _login_page(request, str(exc), 401)
    return _after_login(request, await run_in_threadpool(vault.check_session, token), form.get("next"), token)


async def login_code(request: Request) -> Response:
    """POST: the code step of a two-factor login (the pending ticket's cookie, the CSRF token, a code)."""
    if request.method in ("GET", "HEAD"):
        return RedirectResponse("/login", status_code=303)
    form = await _form(request)
    user, nxt = form.get("username", ""), form.get("next", "")
    if _csrf_refused(request, form):
        return _login_page(request, "The form expired. Please log in again.", 403)
    vault, req, secure = console_vault(), who(request), secure_request(request)
    try:
        token = await run_in_threadpool(vault.complete_login, user, cookies.read(request.cookies, PENDING, secure),
                                        form.get("code", ""), req.ip_address, req.user_agent,
                                        forwarded_for=req.forwarded_for, forwarded_trusted=req.forwarded_trusted)
    except (AccountLocked, LoginExpired) as exc:  # back to the password step
        response: Response = _login_page(request, str(exc), 401)
    except LoginFailed as exc:  # a wrong code: the ticket stays for another try (throttled)
        return _code_page(request, user, nxt, str(exc), 401)
    else:
        response = _after_login(request, await run_in_threadpool(vault.check_session, token), nxt, token)
    response.delete_cookie(cookies.name(PENDING, secure), **cookies.attributes(secure, None))
    return response


async def _end_session(request: Request) -> Response:
    token = session_token(request)
    if token is not None:
        req = who(request)
        await run_in_threadpool(console_vault().logout, token, req.ip_address, req.user_agent)
    response = RedirectResponse("/login?bye=1", status_code=303)
    secure = secure_request(request)
    response.delete_cookie(cookies.name(cookies.SESSION, secure), **cookies.attributes(secure, None))
    return _forget_streamlit_user(response, request)


async def logout(request: Request) -> Response:
    """End the server session and delete the cookie (POST with the CSRF token, or a same-origin link)."""
    if request.method == "POST":
        if not _csrf_refused(request, await _form(request)):
            return await _end_session(request)
    elif request.headers.get("sec-fetch-site") == "same-origin":
        return await _end_session(request)
    # another site's link or an expired token: ask again, with a fresh form
    return _with_csrf(request, lambda csrf: _page("Vault console: log out", _form_html(
        "logout", "/logout", "Log out", "", "Log out", csrf)))


def _password_page(request: Request, message: str = "", status: int = 200) -> HTMLResponse:
    fields = _fields(("current", "Current password", "password", "current-password"),
                     ("new", "New password", "password", "new-password"),
                     ("again", "Repeat the new password", "password", "new-password"))
    return _with_csrf(request, lambda csrf: _page("Vault console: password", _form_html(
        "password", "/password", "Change password", fields, "Change password", csrf, message), status))


async def password(request: Request) -> Response:
    """Change one's own password; the fresh session's cookie replaces the old (which ends)."""
    vault, token = console_vault(), session_token(request)
    session = await run_in_threadpool(vault.check_session, token) if token else None
    if session is None:
        return RedirectResponse("/login?next=/password", status_code=303)
    if request.method in ("GET", "HEAD"):
        forced = "You must choose a new password before using the console." if session.must_change_password else ""
        return _password_page(request, forced)
    form = await _form(request)
    if _csrf_refused(request, form):
        return _password_page(request, "The form expired. Please try again.", 403)
    if form.get("new") != form.get("again"):
        return _password_page(request, "The new passwords differ.", 400)
    req = who(request)

    def change() -> str | None:
        with vault.security_context(session.user, req.ip_address, req.user_agent, roles=session.roles,
                                    session_id=session.session_id, forwarded_for=req.forwarded_for,
                                    forwarded_trusted=req.forwarded_trusted):
            vault.set_password(session.user, form.get("new", ""), current_password=form.get("current", ""),
                               must_change=False)
        try:
            return vault.verify_login(session.user, form.get("new", ""), req.ip_address, req.user_agent,
                                      forwarded_for=req.forwarded_for, forwarded_trusted=req.forwarded_trusted)
        except SecondFactorRequired:
            return None  # changed; the next login asks for the code as always

    try:
        new_token = await run_in_threadpool(change)
    except (AccessDenied, ValidationError) as exc:
        return _password_page(request, str(exc), 400)
    if new_token is None:
        return await _end_session(request)
    return _set_session(RedirectResponse("/", status_code=303), request, new_token)


def export_url(fmt: str, filters: dict[str, Any]) -> str:
    """The export route's URL for ``filters`` (the audit page's link; read back by ``export_filters``)."""
    query = {k: (v.isoformat() if isinstance(v, datetime) else str(v)) for k, v in filters.items()
             if k in EXPORT_FILTERS and v is not None}
    return f"/export/audit.{fmt}" + ("?" + urlencode(query) if query else "")


def export_filters(params: Any) -> dict[str, Any]:
    """Audit filters from a query string (raises ``ValidationError`` for a bad date)."""
    found: dict[str, Any] = {}
    for key in EXPORT_FILTERS:
        value = params.get(key)
        if not value:
            continue
        if key in ("since", "until"):
            try:
                value = datetime.fromisoformat(value)
            except ValueError:
                raise ValidationError(f"{key} must be an ISO date and time") from None
        found[key] = value
    return found


async def export_audit(request: Request) -> Response:
    """The audit log as a download: needs a live session with the right; audited; never cached."""
    fmt = request.path_params["fmt"]
    vault, token = console_vault(), session_token(request)
    session = await run_in_threadpool(vault.check_session, token) if token else None
    if session is None:
        return PlainTextResponse("log in first", status_code=401)
    if fmt not in EXPORT_TYPES:
        return PlainTextResponse("format must be csv, jsonl, ocsf or ecs", status_code=404)
    req = who(request)
    try:
        filters = export_filters(request.query_params)
    except ValidationError as exc:
        return PlainTextResponse(str(exc), status_code=400)
    context = dict(user_id=session.user, ip_address=req.ip_address, user_agent=req.user_agent,
                   roles=session.roles, session_id=session.session_id, forwarded_for=req.forwarded_for,
                   forwarded_trusted=req.forwarded_trusted)
    stream = ExportStream(lambda: vault.export_audit(fmt, **filters), lambda: vault.security_context(**context))
    first = await run_in_threadpool(stream.next)
    if isinstance(first, (AccessDenied, ValidationError)):
        return PlainTextResponse(str(first), status_code=403 if isinstance(first, AccessDenied) else 400)
    if isinstance(first, BaseException):
        raise first

    async def body() -> AsyncIterator[str]:
        try:
            chunk = first
            while isinstance(chunk, str):
                yield chunk
                chunk = await run_in_threadpool(stream.next)
            if isinstance(chunk, BaseException):
                raise chunk
        finally:
            stream.stop.set()

    return StreamingResponse(body(), media_type=EXPORT_TYPES[fmt],
                             headers={"content-disposition": f"attachment; filename=\"{_export_filename(fmt)}\""})


def _export_filename(fmt: str) -> str:
    return f"audit.{fmt}" if fmt in ("csv", "jsonl") else f"audit-{fmt}.jsonl"


class ExportStream:
    """Runs an export in its own thread, inside the caller's security context, chunk by chunk.

    The context is a contextvar: it must be entered and left in one thread,
    which a response streamed from a thread pool cannot promise.
    ``next()`` gives a chunk, None at the end, or the exception that ended it.
    """

    def __init__(self, export: Callable[[], Iterator[str]], context: Callable[[], Any]) -> None:
        self.queue: queue.Queue[Any] = queue.Queue(maxsize=64)
        self.stop = threading.Event()
        threading.Thread(target=self._run, args=(export, context), daemon=True, name="audit-export").start()

    def _put(self, item: Any) -> bool:
        while not self.stop.is_set():
            try:
                self.queue.put(item, timeout=0.5)
                return True
            except queue.Full:
                continue
        return False

    def _run(self, export: Callable[[], Iterator[str]], context: Callable[[], Any]) -> None:
        end: Any = None
        try:
            with context():
                for chunk in export():
                    if chunk and not self._put(chunk):
                        return
        except Exception as exc:  # handed to the response, which answers or aborts with it
            end = exc
        self._put(end)

    def next(self) -> Any:
        return self.queue.get()


async def healthz(request: Request) -> Response:
    """``{"status": "ok" | "sealed" | "unavailable"}``: 200 when ok, 503 otherwise (no names, no values)."""
    from ..metrics import read_health

    try:
        health = await run_in_threadpool(read_health, console_vault())
        status = "sealed" if health.get("sealed") else "ok"
    except Sealed:
        status = "sealed"
    except VaultError:
        status = "unavailable"
    return JSONResponse({"status": status}, status_code=200 if status == "ok" else 503)


def metrics_allowed(peer: str | None, allow: str | None) -> bool:
    """``VAULT_METRICS_ALLOW``: comma-separated IPs/CIDRs that may scrape ``/metrics``."""
    return bool(allow and allow.strip()) and peer_is_trusted(peer, allow)


async def metrics(request: Request) -> Response:
    """Prometheus text; 404 unless ``VAULT_METRICS_ALLOW`` is set, 403 for a peer outside it."""
    import os

    allow = os.environ.get("VAULT_METRICS_ALLOW", "")
    running = services()
    if not allow.strip() or running is None or running.metrics is None:
        return PlainTextResponse("not found", status_code=404)
    if not metrics_allowed(request.client.host if request.client else None, allow):
        return PlainTextResponse("forbidden", status_code=403)
    body = await run_in_threadpool(running.metrics.render)
    return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")


def console_routes() -> list[Route]:
    return [Route("/login", login, methods=["GET", "POST"]), Route("/login/code", login_code, methods=["GET", "POST"]),
            Route("/login/sso/{provider}", sso_start, methods=["GET"]),
            Route("/logout", logout, methods=["GET", "POST"]),
            Route("/password", password, methods=["GET", "POST"]),
            Route("/export/audit.{fmt}", export_audit, methods=["GET"]),
            Route("/healthz", healthz, methods=["GET"]), Route("/metrics", metrics, methods=["GET"])]


