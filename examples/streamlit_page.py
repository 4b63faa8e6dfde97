"""A Streamlit page that replaces ``st.secrets`` with the vault (run: ``streamlit run examples/streamlit_page.py``).

The console puts the logged-in user in ``st.session_state["vault_identity"]``
(user id, roles, session id); the page then reads as that user, and a missing
grant shows as a refusal, not as a silently missing value.
"""

import streamlit as st

from vault_core import AccessDenied
from vault_core.streamlit import secrets

st.title("Secrets from the vault")
st.caption(f"environment: {secrets.environment}")
st.write("Secrets you may read:", list(secrets))  # names only, never values
try:
    db = secrets.db
    st.write("Database user:", db.user)                  # a non-sensitive setting
    st.write("Database password length:", len(db.password))
except AccessDenied:
    st.error("You may not read the database settings.")
except (KeyError, AttributeError):
    st.warning("No database settings in this environment.")
