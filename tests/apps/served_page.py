"""A page served by ``vault_app`` (tests/apps/served_app.py): st.secrets and st.connection from the vault."""

import streamlit as st
from sqlalchemy import text

from vault_core.integrations.connection import VaultSQLConnection

st.text("greeting:" + st.secrets["app"]["greeting"])  # plain st.secrets, fed by the vault
conn = st.connection("db", type=VaultSQLConnection)
if st.button("Drop pooled connections"):
    conn.engine.dispose()
with conn.session as session:
    names = session.execute(text("SELECT name FROM pets ORDER BY name")).scalars().all()
st.text("pets:" + ",".join(names))
