"""Test app: queries PostgreSQL through ``st.connection("db", type=VaultSQLConnection)``."""

import streamlit as st
from sqlalchemy import text

from vault_core import AccessDenied
from vault_core.integrations.connection import VaultSessionSQLConnection, VaultSQLConnection

kind = VaultSessionSQLConnection if st.session_state.get("per_user") else VaultSQLConnection
try:
    conn = st.connection("db", type=kind)
    if st.button("Drop pooled connections"):  # what pool_recycle, a failover or a server restart does
        conn.engine.dispose()
    with conn.session as session:  # not conn.query: its cache would hide whether the database answered
        user = session.execute(text("SELECT current_user")).scalar_one()
        names = session.execute(text("SELECT name FROM pets ORDER BY name")).scalars().all()
    st.text(f"user:{user} pets:{','.join(names)}")
except AccessDenied:
    st.error("denied")
