"""The HTTP API alone, for an operator's own server: ``uvicorn vault_core.api.asgi:app --ssl-certfile ...``.

``vault-console serve`` already serves it under ``/v1/`` on the console's port, and on a port of its own
with ``--api-port`` (TLS with ``--api-cert``/``--api-key``). Start uvicorn with
``--forwarded-allow-ips ''``: only ``VAULT_TRUSTED_PROXIES`` decides which ``X-Forwarded-For`` is believed.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.middleware import Middleware

from ..console.middleware import SecurityHeaders
from .routes import api_routes

API_CSP = "default-src 'none'; frame-ancestors 'none'"  # JSON only: nothing to load, nothing to frame


def build_api_app() -> Starlette:
    """A Starlette app of the API routes with the console's protective headers."""
    return Starlette(routes=api_routes(), middleware=[Middleware(SecurityHeaders, csp=API_CSP)])


def start_api_server(address: str, port: int, certfile: str | None = None, keyfile: str | None = None):
    """Serve the API on its own port from a daemon thread (``vault-console serve --api-port``); returns it.

    Raises ``ValidationError`` when only one of certificate and key is given.
    """
    import threading

    import uvicorn

    from ..errors import ValidationError

    if bool(certfile) != bool(keyfile):
        raise ValidationError("give both --api-cert and --api-key (or neither)")
    config = uvicorn.Config(build_api_app(), host=address, port=port, ssl_certfile=certfile, ssl_keyfile=keyfile,
                            forwarded_allow_ips="", log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="vault-api", daemon=True)
    thread.start()
    return server


app = build_api_app()
