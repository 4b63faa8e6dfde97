"""Grant access from a secret's page (admins of that secret): pick, review, apply.

Only existing users and roles can be picked (the choices come from the vault's principals and their roles),
levels are checkboxes, the environment and the name pattern start as the secret's own. *Review* shows the
rule that will be added; *Apply* adds it (an audited ``grant``) and reruns with the result.
"""

from __future__ import annotations

import streamlit as st

from ..access import ANY_ENV
from ..environments import Environment
from ..models import AccessLevel, SecretMetadata
from . import feedback
from .access_view import apply_changes, describe
from .auth import Guard

PLAN = "_grant_plan"  # session state: (secret id, plan) reviewed on a secret's page
LEVELS = [lv.value for lv in AccessLevel]


def subjects(g: Guard) -> dict[str, tuple[str, str]]:
    """'user rita' / 'role operator' -> (kind, name), for every known user and role."""
    people = g.vault.list_principals()
    roles = sorted({r for p in people for r in p["roles"]} | {"admin", "auditor", "operator"})
    out = {f"user {p['name']}": ("user", p["name"]) for p in people if p["kind"] == "user"}
    out.update({f"role {r}": ("role", r) for r in roles})
    return out


def _review(m: SecretMetadata, who: tuple[str, str], levels: list[str], env: str, pattern: str,
            effect: str) -> dict:
    return {"revoke": [], "grant": [{"subject_kind": who[0], "subject": who[1], "environment": env,
                                     "pattern": pattern.strip() or m.name, "levels": ",".join(levels),
                                     "effect": effect, "note": f"granted from the page of {m.environment}/{m.name}"}]}


def panel(g: Guard, m: SecretMetadata) -> None:
    """The Grant access expander of one secret."""
    with st.expander("Grant access"):
        known = subjects(g)
        pick = st.selectbox("User or role", list(known), index=None, key=f"g_who_{m.id}",
                            placeholder="Choose an existing user or role")
        st.caption("Levels")
        cols = st.columns(len(LEVELS))
        levels = [lv for lv, col in zip(LEVELS, cols, strict=True) if col.checkbox(lv, key=f"g_{lv}_{m.id}")]
        envs = [e.value for e in Environment] + [ANY_ENV]
        c = st.columns(3)
        env = c[0].selectbox("Environment", envs, index=envs.index(m.environment), key=f"g_env_{m.id}")
        pattern = c[1].text_input("Name or pattern", value=m.name, key=f"g_pat_{m.id}")
        effect = c[2].radio("Effect", ["allow", "deny"], horizontal=True, key=f"g_eff_{m.id}")
        if st.button("Review", key=f"g_review_{m.id}"):
            if pick is None or not levels:
                st.error("Choose a user or role and at least one level.")
            else:
                st.session_state[PLAN] = (m.id, _review(m, known[pick], levels, env, pattern, effect))
        reviewed = st.session_state.get(PLAN)
        if not reviewed or reviewed[0] != m.id:
            return
        for line in describe(reviewed[1]):
            st.text(line)
        left, right = st.columns([1, 4])
        if right.button("Discard", key=f"g_discard_{m.id}"):
            st.session_state.pop(PLAN, None)
            st.rerun()
        if left.button("Apply", type="primary", key=f"g_apply_{m.id}"):
            st.session_state.pop(PLAN, None)
            done, problem = apply_changes(g.vault, [], reviewed[1]["grant"])
            if problem:
                st.error(f"Not applied. {feedback.sentence(Exception(problem))}")
                return
            rule = reviewed[1]["grant"][0]
            feedback.done(f"Granted: {rule['effect']} {rule['levels'].replace(',', ', ')} to {rule['subject_kind']} "
                          f"{rule['subject']} on {rule['environment']}/{rule['pattern']}.")
