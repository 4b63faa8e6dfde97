"""The console as an ``st.App`` (Streamlit >= 1.67): router, routes, middleware, lifespan, hardened options.

``build_app()`` is what ``vault-console serve`` runs (with ``App.run``), what
``vault_core.console.asgi:app`` exposes to an operator's own uvicorn, and what
the checkout's ``streamlit_app.py`` hands to ``streamlit run``. The lifespan
opens the process's one vault and starts the scheduler and metrics; shutdown
stops them.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import streamlit as st
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware

from .middleware import LoginGate, SecurityHeaders, WebSocketOrigin
from .routes import console_routes
from .runtime import console_vault, start_services, stop_services

ROUTER = Path(__file__).resolve().parent / "router.py"
# Options the console is served with, whatever config.toml files say (App.run passes them as flags).
HARDENED: dict[str, Any] = {
    "server.headless": True,
    "server.enableXsrfProtection": True,
    "server.enableCORS": True,
    "server.runOnSave": False,
    "server.fileWatcherType": "none",
    "server.enableStaticServing": False,
    "global.developmentMode": False,
    "client.showErrorDetails": "none",
    "client.toolbarMode": "viewer",
    "client.showSidebarNavigation": True,
    "browser.gatherUsageStats": False,
    "runner.magicEnabled": False,
}
# of those, the ones without which the console refuses to start (an operator may change the rest)
REQUIRED = ("server.enableXsrfProtection", "global.developmentMode", "client.showErrorDetails",
            "server.enableStaticServing", "server.runOnSave")


def apply_hardened_options(extra: dict[str, Any] | None = None) -> None:
    """Apply ``HARDENED`` (and ``extra``) as Streamlit applies command-line flags, over config files.

    The one use of a Streamlit internal outside App.run (which does the same with its
    ``config=``): ``streamlit.web.bootstrap.load_config_options``, Streamlit >= 1.67, < 2.
    Plain uvicorn runs no CLI, and Streamlit reads no ``STREAMLIT_*`` variables itself.
    """
    from streamlit.web import bootstrap

    bootstrap.load_config_options({**HARDENED, **(extra or {})})


def weakened_options() -> list[str]:
    """The required hardened options that the effective configuration does not hold."""
    return [key for key in REQUIRED if st.get_option(key) != HARDENED[key]]


@asynccontextmanager
async def lifespan(_app: Any) -> AsyncIterator[dict[str, Any]]:
    """Open the vault and start scheduler and metrics once; stop them at shutdown.

    Raises ``RuntimeError`` if the effective Streamlit options are weaker than
    ``REQUIRED``, ``VaultError`` if the vault cannot be opened.
    """
    weak = weakened_options()
    if weak:
        raise RuntimeError(f"refusing to serve the console with weakened options: {', '.join(weak)}")
    services = await run_in_threadpool(start_services)
    _say(f"vault opened ({services.vault.vault_dir}); scheduler {'on' if services.scheduler else 'off'}")
    try:
        from .sso import install_auth_secrets

        providers = await run_in_threadpool(install_auth_secrets, services.vault)
        if providers:
            _say(f"single sign-on: {providers} provider(s), settings and secrets read from the vault")
        yield {"vault": services.vault}
    finally:
        await run_in_threadpool(stop_services)
        _say("stopped: scheduler and metrics ended, vault closed")


def _say(text: str) -> None:
    print(f"vault console: {text}", file=sys.stderr, flush=True)


def _live(token: str | None) -> bool:
    return console_vault().check_session(token) is not None


def app_arguments() -> dict[str, Any]:
    """Keyword arguments of the console's ``st.App`` besides the script.

    Middleware, outermost first: security headers, the WebSocket origin check, the login gate.
    Routes: the console's and, under ``/v1/``, the HTTP API (``vault_core.api``).
    """
    from ..api.routes import api_routes

    return {"lifespan": lifespan, "routes": console_routes() + api_routes(),
            "middleware": [Middleware(SecurityHeaders), Middleware(WebSocketOrigin),
                           Middleware(LoginGate, valid=_live)]}


def build_app() -> st.App:
    """The console's ``st.App`` (the packaged router and the arguments above)."""
    return st.App(ROUTER, **app_arguments())
