"""The Users page's single sign-on section (admins): the group → role mappings of each provider.

A mapping change is audited by the vault and ends the sessions of everyone linked under the provider's
issuer (they sign in again and get the new roles). Providers and linked identities are set up with the
library (README, *Single sign-on*).
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from . import feedback
from .auth import Guard
from .users_view import KNOWN_ROLES, USER_ERRORS


def render(g: Guard) -> None:
    providers = g.vault.list_sso_providers()
    if not providers:
        return
    st.subheader("Single sign-on: group mappings")
    mappings = g.vault.sso_group_mappings()
    st.dataframe(pd.DataFrame([{"Issuer": m["issuer"], "Group": m["group"], "Roles": ", ".join(m["roles"])}
                               for m in mappings], columns=["Issuer", "Group", "Roles"]), hide_index=True)
    with st.form("sso_map"):
        provider = st.selectbox("Provider", [p["name"] for p in providers], key="sso_provider")
        group = st.text_input("Group (as the ID token's groups claim names it)", key="sso_group")
        roles = st.multiselect("Vault roles (none: remove the mapping)", KNOWN_ROLES, key="sso_roles")
        if not st.form_submit_button("Save group mapping (ends that provider's sessions)"):
            return
        try:
            if roles:
                g.vault.map_sso_group(provider, group, roles)
            else:
                g.vault.unmap_sso_group(provider, group)
        except USER_ERRORS as exc:
            st.error(feedback.sentence(exc))
            return
    feedback.done(f"Group {group} of {provider}: " + (", ".join(roles) if roles else "mapping removed") + ".")
