"""The console for your own ASGI server: ``uvicorn vault_core.console.asgi:app``.

Importing this module applies the hardened Streamlit options (``app.HARDENED``)
the way ``streamlit run`` applies its command-line flags, over any
``config.toml``: no ``.streamlit/`` folder is needed, and the app's lifespan
refuses to start if the required ones were weakened all the same.
Run one worker per process (the vault, scheduler and metrics are per process)
and start uvicorn with ``--forwarded-allow-ips ''`` so that only
``VAULT_TRUSTED_PROXIES`` decides which ``X-Forwarded-For`` is believed.
"""

from __future__ import annotations

from .app import apply_hardened_options, build_app

apply_hardened_options()
app = build_app()
