"""Vault console router (the st.App's script): page config, session, role-based navigation.

``st.navigation`` is built on every rerun from the logged-in user's roles
(see ``vault_core/console/roles.py``): a page a role may not use is never
registered, and without a live session no page exists at all, so no script
in ``pages/`` is reachable by URL. Each page checks its role again itself.
Logging in and out happens in the app's routes (``console/routes.py``).
"""

from pathlib import Path

import streamlit as st

from vault_core.console import auth
from vault_core.console.roles import ICONS, PAGES, pages_for
from vault_core.errors import VaultError

ICON = Path(__file__).parent / "static" / "lock.png"  # bundled: no request to a font CDN

st.set_page_config(page_title="Vault console", page_icon=str(ICON), layout="wide")

try:
    vault = auth.get_vault()
except VaultError as exc:
    auth.sealed_message(exc)
    st.stop()

session = auth.current_session(vault)

if session is None:
    page = st.navigation([st.Page(auth.login_prompt, title="Log in", url_path="login", default=True)],
                         position="hidden")
    page.run()
    st.stop()

if session.must_change_password:
    page = st.navigation([st.Page(auth.password_prompt, title="Change password", url_path="change-password",
                                  default=True)], position="hidden")
    page.run()
    st.stop()

# The user box and the logout form are drawn by each page's guard (auth.page_guard).
keys = ["account"] if session.must_enrol_two_factor else pages_for(session.roles)  # enrol first (two-factor)
page = st.navigation([st.Page(PAGES[k][0], title=PAGES[k][1], icon=ICONS[k], url_path=k, default=(i == 0))
                      for i, k in enumerate(keys)])
page.run()
