"""The console's entry point in a checkout: ``streamlit run streamlit_app.py``.

Streamlit finds the ``st.App`` below and serves it with uvicorn: the same
app as ``vault-console serve`` (the router, pages, routes and middleware all
live in ``vault_core/console/``), with the options of ``.streamlit/config.toml``.
What ``serve`` adds: it creates the vault and a first admin, turns the
scheduler on and passes the hardened options explicitly.
"""

import streamlit as st

from vault_core.console.app import ROUTER, app_arguments

app = st.App(ROUTER, **app_arguments())
