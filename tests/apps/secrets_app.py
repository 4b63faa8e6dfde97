"""Test app: reads the vault through ``vault_core.streamlit.secrets`` as the session's user."""

import hashlib

import streamlit as st

from vault_core import AccessDenied
from vault_core.streamlit import secrets

st.write("names:", ",".join(secrets))
try:
    password = secrets.db.password
    # Show a digest, not the value: the page proves which version it read.
    st.text("digest:" + hashlib.sha256(password.encode()).hexdigest()[:16])
    st.text(f"port:{secrets.db.port + 1}")
except AccessDenied:
    st.error("denied")
except (KeyError, AttributeError):
    st.warning("missing")
