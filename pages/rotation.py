"""Rotation: placeholder until its issue fills it (the role is still checked)."""

import streamlit as st

from vault_core.console.auth import page_guard

guard = page_guard("rotation")
st.title("Rotation")
st.info("This page is not built yet.")
