"""``st.connection`` configured by the vault, rotation-proof (run: ``streamlit run examples/vault_connection_app.py``).

Store the connection once (values from stdin, never argv):

    printf %s 'postgresql+psycopg://app@db.internal:5432/shop' | vault-console put connections.db.url --env production
    printf %s "$DB_PASSWORD" | vault-console put connections.db.password --env production

Rotate it without restarting this app: ``vault.rotate_secret(name="connections.db.password",
environment="production", apply=<ALTER ROLE app PASSWORD ...>, test=<a fresh login>)``.
Every new database connection reads the current password from the vault; the URL has none.
"""

import streamlit as st

from vault_core import AccessDenied
from vault_core.integrations.connection import VaultSQLConnection

st.title("Pets, from a database whose password lives in the vault")
try:
    conn = st.connection("db", type=VaultSQLConnection)  # connections.db.* of VAULT_ENVIRONMENT
    st.dataframe(conn.query("SELECT name FROM pets ORDER BY name", ttl=60))
except AccessDenied:
    st.error("This app's identity may not read connections.db in the vault.")
