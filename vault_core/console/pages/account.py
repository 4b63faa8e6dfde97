"""Account: two-factor sign-in, one's sessions; the password is changed by the /password route (every user)."""

import streamlit as st

from vault_core.console import two_factor_view, users_view
from vault_core.console.auth import page_guard

guard = page_guard("account")
st.title("Account")
st.text(f"User: {guard.session.user}")
st.text(f"Roles: {', '.join(guard.session.roles) or 'none'}")
st.subheader("Change password")
st.markdown("[Change my password](/password)")
st.subheader("Two-factor sign-in")
two_factor_view.render(guard)
st.subheader("My sessions")
with guard.context():
    rows = guard.vault.list_sessions(guard.session.user)
users_view.sessions_table(rows)
if st.button("End all my sessions (logs out everywhere)"):
    with guard.context():
        guard.vault.end_sessions(guard.session.user)
    st.rerun()  # this session ended too: the next run shows the way to the login
