"""``streamlit run tests/apps/served_app.py``: the st.App of served_page.py, its secrets fed by the vault."""

from pathlib import Path

import streamlit as st

from vault_core.integrations.app_secrets import vault_lifespan

app = st.App(Path(__file__).with_name("served_page.py"), lifespan=vault_lifespan(interval=0.2))
