"""Vault console router: page config, login, security context, role-based navigation.

``st.navigation`` is built on every rerun from the logged-in user's roles
(see ``vault_core/console/roles.py``): a page a role may not use is never
registered, and before login only the login page exists, so no script in
``pages/`` is reachable by URL. Each page checks its role again itself.
"""

import streamlit as st

from vault_core.console import auth
from vault_core.console.roles import ICONS, PAGES, pages_for
from vault_core.errors import VaultError

st.set_page_config(page_title="Vault console", page_icon=":material/lock:", layout="wide")

try:
    vault = auth.get_vault()
except VaultError as exc:
    auth.sealed_message(exc)
    st.stop()

cookie_slot = st.container()  # always first: cookie components live here without shifting the page
auth.apply_cookie_action(vault, cookie_slot)
session = auth.current_session(vault)

if session is None:
    page = st.navigation([st.Page(lambda: auth.login_form(vault), title="Log in", url_path="login",
                                  default=True)], position="hidden")
    page.run()
    st.stop()

if session.must_change_password:
    page = st.navigation([st.Page(lambda: auth.change_password_form(vault, session, forced=True),
                                  title="Change password", url_path="change-password", default=True)],
                         position="hidden")
    page.run()
    st.stop()

# The user box and the logout button are drawn by each page's guard (auth.page_guard).
keys = pages_for(session.roles)
page = st.navigation([st.Page(PAGES[k][0], title=PAGES[k][1], icon=ICONS[k], url_path=k, default=(i == 0))
                      for i, k in enumerate(keys)])
page.run()
