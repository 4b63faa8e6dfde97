"""The console for your own ASGI server: ``uvicorn vault_core.console.asgi:app``.

Importing this module sets the hardened Streamlit options as environment
defaults (``STREAMLIT_SERVER_ENABLE_XSRF_PROTECTION=true``...) before
Streamlit reads its configuration, so no ``.streamlit/config.toml`` is needed;
the app's lifespan refuses to start if the required ones were weakened.
Run one worker per process (the vault, scheduler and metrics are per process)
and start uvicorn with ``--forwarded-allow-ips ''`` so that only
``VAULT_TRUSTED_PROXIES`` decides which ``X-Forwarded-For`` is believed.
"""

from __future__ import annotations

import os

from .app import HARDENED, build_app, env_var

for _option, _value in HARDENED.items():
    os.environ.setdefault(env_var(_option), str(_value).lower() if isinstance(_value, bool) else str(_value))

app = build_app()
