"""Machines on the Users page (admins): AppRole identities for apps that read over the HTTP API.

A new secret id is shown once, in the run that made it, and never kept (only its hash is stored).
Every button is an audited vault operation (``service.machines``).
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from ..errors import AccessDenied, Conflict, NotFound, ValidationError
from ..service.machines import DEFAULT_MAX_TTL, DEFAULT_TTL, MachinesService
from . import feedback
from .auth import Guard

ERRORS = (ValidationError, Conflict, NotFound, AccessDenied)


def _shown_once(box, machine: str, secret_id: str) -> None:
    box.success(f"Secret id of {machine} (shown once: give it to the app as VAULT_SECRET_ID):")
    box.code(secret_id, language=None)


def _add(machines: MachinesService) -> None:
    box = st.container()
    with st.expander("Add machine"), st.form("m_add", clear_on_submit=True):
        name = st.text_input("Machine name", key="m_new_name")
        c = st.columns(3)
        ttl = c[0].number_input("Token TTL (s)", 1, 32 * 86400, DEFAULT_TTL, key="m_new_ttl")
        max_ttl = c[1].number_input("Token max TTL (s)", 1, 32 * 86400, DEFAULT_MAX_TTL, key="m_new_max")
        uses = c[2].number_input("Logins per secret id (0: unlimited)", 0, 1_000_000, 0, key="m_new_uses")
        cidrs = st.text_input("Allowed source networks (comma separated; empty: any)", key="m_new_cidrs")
        if not st.form_submit_button("Add machine"):
            return
        try:
            role_id = machines.create_machine(name, token_ttl=int(ttl), token_max_ttl=int(max_ttl),
                                              bound_cidrs=cidrs, secret_id_uses=int(uses))
            secret_id = machines.new_secret_id(name)
        except ERRORS as exc:
            box.error(feedback.sentence(exc))
            return
        box.info(f"Machine {name.strip().lower()} added. Role id (VAULT_ROLE_ID): {role_id}. Grant it rules on "
                 "the Access page.")
        _shown_once(box, name.strip().lower(), secret_id)


def _manage(machines: MachinesService, names: list[str]) -> None:
    who = st.selectbox("Manage machine", names, index=None, key="m_pick")
    if who is None:
        return
    c = st.columns(4)
    actions = {"New secret id": c[0], "Rotate secret id": c[1], "Revoke tokens": c[2], "Delete machine": c[3]}
    pressed = [label for label, col in actions.items() if col.button(label, key=f"m_{label}")]
    try:
        if "New secret id" in pressed or "Rotate secret id" in pressed:
            rotate = "Rotate secret id" in pressed
            _shown_once(st, who, machines.new_secret_id(who, revoke_others=rotate))
            if rotate:
                st.info(f"Every older secret id of {who} is revoked; its live tokens keep working.")
        if "Revoke tokens" in pressed:
            feedback.done(f"{machines.revoke_machine_tokens(who)} token(s) of {who} revoked.")
        if "Delete machine" in pressed:
            machines.delete_machine(who)
            feedback.done(f"Machine {who} deleted: its secret ids and tokens no longer work.")
    except ERRORS as exc:
        st.error(feedback.sentence(exc))


def render(g: Guard) -> None:
    """The Machines section (call inside the page's ``guard.context()``)."""
    st.subheader("Machines")
    st.caption("Apps log in with a role id and a secret id (AppRole) and read over the HTTP API at /v1/; "
               "the rules of the machine's name decide what they may read.")
    machines = g.vault.machines
    _add(machines)
    try:
        rows = machines.list_machines()
    except AccessDenied as exc:
        st.error(feedback.sentence(exc))
        return
    table = pd.DataFrame(rows, columns=["name", "role_id", "token_ttl", "token_max_ttl", "bound_cidrs",
                                        "secret_id_uses", "secret_ids", "tokens"])
    st.dataframe(table, hide_index=True, width="stretch", column_config={
        "name": "Machine", "role_id": "Role id", "token_ttl": "TTL (s)", "token_max_ttl": "Max TTL (s)",
        "bound_cidrs": "Source networks", "secret_id_uses": "Uses per secret id", "secret_ids": "Live secret ids",
        "tokens": "Live tokens"})
    _manage(machines, [r["name"] for r in rows])
