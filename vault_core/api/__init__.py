"""A documented subset of HashiCorp Vault's HTTP API, served by the console's process (``/v1/``).

``routes.api_routes()`` are Starlette routes the console's ``st.App`` mounts; ``asgi:app`` is the same API
alone, for an operator's own uvicorn (a separate port, TLS). ``kv`` maps KV version 2 shapes onto secrets.
"""
