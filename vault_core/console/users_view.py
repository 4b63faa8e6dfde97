"""The Users page (admins): add users, set roles, reset passwords, lock, unlock, end sessions, reset a
user's two-factor enrolment, and the roles that require two-factor.

A change reruns the page with its message (``feedback.done``), so the users table shows it at once. A new
one-time password is the exception: it is shown once, in the run that made it, and never kept.
"""

from __future__ import annotations

import secrets as pysecrets
from datetime import datetime, timezone

import pandas as pd
import streamlit as st

from ..errors import AccessDenied, Conflict, NotFound, ValidationError
from ..service.users import LOCKED_FOREVER
from ..service.two_factor import status_label
from . import feedback, fmt
from .auth import Guard

USER_ERRORS = (ValidationError, Conflict, NotFound, AccessDenied)
KNOWN_ROLES = ["admin", "auditor", "operator"]


def _locked(us: int | None) -> str:
    if us is None or us <= datetime.now(timezone.utc).timestamp() * 1e6:
        return ""
    return "until unlocked" if us >= LOCKED_FOREVER else f"until {fmt.when(us)}"


def _roles(text: str) -> list[str]:
    return [r.strip() for r in text.split(",") if r.strip()]


def _add(g: Guard) -> None:
    box = st.container()
    with st.expander("Add user"), st.form("u_add", clear_on_submit=True):
        name = st.text_input("User name", key="u_new_name")
        roles = st.multiselect("Roles", KNOWN_ROLES, key="u_new_roles")
        extra = st.text_input("Other roles (comma separated)", key="u_new_extra")
        if not st.form_submit_button("Add user"):
            return
        password = pysecrets.token_urlsafe(12)
        try:
            user = g.vault.add_user(name, password, roles + _roles(extra), must_change_password=True)
        except USER_ERRORS as exc:
            box.error(feedback.sentence(exc))
            return
        box.success(f"User {user} added. One-time password (shown once, must be changed at first login):")
        box.code(password, language=None)


def _manage(g: Guard, users: list[dict]) -> None:
    names = [u["name"] for u in users if u["kind"] == "user"]
    if not names:
        return
    who = st.selectbox("Manage user", names, index=None, key="u_pick")
    if who is None:
        return
    current = next(u for u in users if u["name"] == who)
    with st.form("u_roles"):
        chosen = st.multiselect("Roles", sorted(set(KNOWN_ROLES) | set(current["roles"])),
                                default=current["roles"], key=f"u_roles_{who}")
        if st.form_submit_button("Save roles (ends the user's sessions)"):
            try:
                g.vault.set_roles(who, chosen)
            except USER_ERRORS as exc:
                st.error(feedback.sentence(exc))
            else:
                feedback.done(f"Roles of {who}: {', '.join(chosen) or 'none'}.")
    c = st.columns(6)
    actions = {"Reset password": c[0], "Lock": c[1], "Unlock": c[2], "End sessions": c[3],
               "Reset two-factor": c[4], "SSO only": c[5]}
    pressed = [label for label, col in actions.items() if col.button(label, key=f"u_{label}")]
    try:
        if "Reset password" in pressed:
            password = pysecrets.token_urlsafe(12)
            g.vault.set_password(who, password, must_change=True)
            st.success(f"New one-time password of {who} (shown once; their sessions have ended):")
            st.code(password, language=None)
        if "Lock" in pressed:
            g.vault.lock_user(who)
            feedback.done(f"{who} is locked and logged out.")
        if "Unlock" in pressed:
            g.vault.unlock_user(who)
            feedback.done(f"{who} is unlocked.")
        if "End sessions" in pressed:
            g.vault.end_sessions(who)
            feedback.done(f"Every session of {who} has ended.")
        if "SSO only" in pressed:
            g.vault.make_sso_only(who)
            feedback.done(f"{who} signs in through SSO only: the password is removed and their sessions have "
                          "ended.")
        if "Reset two-factor" in pressed:
            g.vault.reset_two_factor(who)
            feedback.done(f"Two-factor of {who} is reset and their sessions have ended; they log in with the "
                          "password and enrol again.")
    except USER_ERRORS as exc:
        st.error(feedback.sentence(exc))
    st.caption(f"Active sessions of {who}")
    sessions_table(g.vault.list_sessions(who))


def sessions_table(sessions: list[dict]) -> None:
    """Sessions (``list_sessions`` rows) with their times in the console's one format (``fmt``)."""
    table = pd.DataFrame(sessions, columns=["session", "created_at", "expires_at", "client_ip", "user_agent"])
    for col in ("created_at", "expires_at"):
        table[col] = [fmt.epoch_us(v) for v in table[col]]
    st.dataframe(table, hide_index=True, column_config={
        "session": "Session", "created_at": fmt.date_column("Started"), "expires_at": fmt.date_column("Expires"),
        "client_ip": "Client IP", "user_agent": "Browser"})


def _policy(g: Guard, users: list[dict]) -> None:
    """Which roles require two-factor (``admin`` does by default once an admin has enrolled)."""
    policy = g.vault.two_factor_policy()
    roles = sorted(set(KNOWN_ROLES) | set(policy) | {r for u in users for r in u["roles"]})
    with st.expander("Two-factor policy"), st.form("u_2fa_policy"):
        st.caption("Users with a required role who have not set up two-factor may use only their Account page, "
                   "to set it up.")
        chosen = st.multiselect("Roles that require two-factor", roles,
                                default=[r for r in roles if policy.get(r)], key="u_2fa_roles")
        if not st.form_submit_button("Save two-factor policy"):
            return
        changes = [(r, r in chosen) for r in roles if bool(policy.get(r)) != (r in chosen)]
        try:
            for role, required in changes:
                g.vault.require_two_factor(role, required)
        except USER_ERRORS as exc:
            st.error(feedback.sentence(exc))
            return
    feedback.done("Two-factor is required for: " + (", ".join(chosen) or "no role") + ".")


def render(g: Guard) -> None:
    st.title("Users")
    feedback.show()
    _add(g)
    users = g.vault.list_principals()
    factor = {s["user"]: s for s in g.vault.two_factor_status()}
    table = pd.DataFrame([{"Name": u["name"], "Kind": u["kind"], "Display name": u["display_name"],
                           "Email": u["email"], "Roles": ", ".join(u["roles"]), "Locked": _locked(u["locked_until"]),
                           "Disabled": "yes" if u["disabled"] else "", "Password set": bool(u["has_password"]),
                           "Two-factor": status_label(factor.get(u["name"])),
                           "Created": fmt.epoch_us(u["created_at"])} for u in users])
    st.dataframe(table, hide_index=True, width="stretch", column_config={"Created": fmt.date_column("Created")})
    _policy(g, users)
    _manage(g, users)
