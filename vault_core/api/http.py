"""HTTP plumbing of the API: the caller's token and address, bounded JSON bodies, Vault-style answers.

Only ``X-Vault-Token`` (or ``Authorization: Bearer``) authenticates a call: the console's cookie is
never read here, so a browser's ambient credentials cannot drive the API (no CSRF), and no Origin
check is needed. A body is refused (413) from its ``Content-Length`` before it is read, or as soon
as a streamed one passes the limit.
"""

from __future__ import annotations

import json
import os
import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..console.request import RequestInfo, request_info

DEFAULT_MAX_BODY = 1024 * 1024


class Refused(Exception):
    """An answer to send instead of going on: ``status`` and Vault-style ``errors``."""

    def __init__(self, status: int, *errors: str):
        super().__init__(status)
        self.status, self.errors = status, list(errors)


def max_body() -> int:
    """``VAULT_API_MAX_BODY_BYTES`` (default 1 MiB)."""
    raw = os.environ.get("VAULT_API_MAX_BODY_BYTES", "")
    return int(raw) if raw.isdigit() and int(raw) > 0 else DEFAULT_MAX_BODY


def client_of(request: Request) -> RequestInfo:
    """Who is calling, with the console's proxy rules (``VAULT_TRUSTED_PROXIES``)."""
    return request_info(request.client.host if request.client else None, dict(request.headers))


def token_of(request: Request) -> str | None:
    token = request.headers.get("x-vault-token")
    if not token:
        auth = request.headers.get("authorization", "")
        token = auth[7:].strip() if auth[:7].lower() == "bearer " else None
    return token or None


async def json_body(request: Request) -> dict[str, Any]:
    """The request's JSON object ({} when empty). Raises ``Refused`` (413 too large, 400 not an object)."""
    limit = max_body()
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise Refused(413, f"the request body is larger than {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise Refused(413, f"the request body is larger than {limit} bytes")
    if not body.strip():
        return {}
    try:
        parsed = json.loads(bytes(body))
    except (ValueError, UnicodeDecodeError):
        raise Refused(400, "the request body is not valid JSON") from None
    if not isinstance(parsed, dict):
        raise Refused(400, "the request body must be a JSON object")
    return parsed


def answer(data: Any = None, *, auth: Any = None, status: int = 200) -> Response:
    """Vault's response envelope (204 when there is nothing to say)."""
    if data is None and auth is None and status == 200:
        return Response(status_code=204)
    return JSONResponse({"request_id": str(uuid.uuid4()), "lease_id": "", "renewable": False,
                         "lease_duration": 0, "data": data, "wrap_info": None, "warnings": None, "auth": auth,
                         "mount_type": ""}, status_code=status)


def errors(status: int, *messages: str) -> Response:
    return JSONResponse({"errors": list(messages)}, status_code=status)
