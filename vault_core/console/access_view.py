"""The Access page (admins): rules in an editor with a diff to confirm, roles, a permission simulator."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from ..access import ANY_ENV, parse_levels
from ..environments import Environment
from ..errors import AccessDenied, Conflict, NotFound, ValidationError
from ..models import AccessLevel
from ..names import canonical_pattern, canonical_principal
from . import feedback
from .auth import Guard

USER_ERRORS = (ValidationError, Conflict, NotFound, AccessDenied)
FIELDS = ["subject_kind", "subject", "environment", "pattern", "levels", "effect", "note"]
ENV_CHOICES = [ANY_ENV] + [e.value for e in Environment]
LEVELS = [lv.value for lv in AccessLevel]
PLAN = "_rules_plan"  # session state: the reviewed changes {"revoke": [ids], "grant": [rules]}


def _row(rule) -> dict[str, Any]:
    d = rule.to_dict()
    return {"id": d["id"], **{f: d[f] for f in FIELDS if f != "levels"}, "levels": sorted(d["levels"])}


def _levels(raw: dict[str, Any]) -> list[str]:
    """The levels cell as a list: the multiselect cell gives a list, a stored or typed one may be 'read,write'."""
    value = raw.get("levels")
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return []
    parts = value.split(",") if isinstance(value, str) else list(value)
    return [str(p).strip() for p in parts if str(p).strip()]


def _text(raw: dict[str, Any], field: str) -> str:
    """A cell as text: an empty cell of the editor may be None, NaN or ''."""
    value = raw.get(field)
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return ""
    return str(value).strip()


def _clean(raw: dict[str, Any]) -> dict[str, Any]:
    """A rule row as grant() takes it; raises ValidationError with the reason."""
    subject = _text(raw, "subject")
    if not subject:
        raise ValidationError("each rule needs a subject")
    kind = _text(raw, "subject_kind") or "any"
    if kind not in ("user", "role", "any"):
        raise ValidationError("subject_kind must be user, role or any")
    effect = _text(raw, "effect") or "allow"
    if effect not in ("allow", "deny"):
        raise ValidationError("effect must be allow or deny")
    env = _text(raw, "environment") or ANY_ENV
    if env not in ENV_CHOICES:
        raise ValidationError(f"environment must be one of {', '.join(ENV_CHOICES)}")
    pattern = _text(raw, "pattern") or "*"
    levels = sorted(lv.value for lv in parse_levels(_levels(raw)))
    return {"subject_kind": kind, "subject": canonical_principal(subject), "environment": env,
            "pattern": pattern if pattern == "*" else canonical_pattern(pattern), "levels": ",".join(levels),
            "effect": effect, "note": _text(raw, "note")}


def _unfinished(raw: dict[str, Any]) -> str | None:
    """What a row still lacks before it can be checked (a subject, a level), or None when it is complete."""
    lacks = [what for what, ok in (("a subject", _text(raw, "subject")), ("at least one level", _levels(raw)))
             if not ok]
    return f"is not finished: give it {' and '.join(lacks)}" if lacks else None


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Do two rows hold the same rule (levels in any order, empty cells alike)?"""
    def norm(row):
        return {f: (",".join(sorted(_levels(row))) if f == "levels" else _text(row, f)) for f in FIELDS}
    return norm(a) == norm(b)


def diff_rules(before: pd.DataFrame, after: pd.DataFrame) -> tuple[list[int], list[dict[str, Any]], list[str]]:
    """(rule ids to revoke, rules to grant, validation errors) between two editor tables."""
    old = {int(r["id"]): {f: r[f] for f in FIELDS} for r in before.to_dict("records")}
    revoke, grant, errors = [], [], []
    seen: set[int] = set()
    for i, raw in enumerate(after.to_dict("records"), start=1):
        rid = raw.get("id")
        rid = None if rid is None or pd.isna(rid) else int(rid)
        if rid is None and not any(_text(raw, f) for f in FIELDS if f != "levels") and not _levels(raw):
            continue  # a row just added and not yet filled in
        lacking = _unfinished(raw)
        if lacking:  # checked only once complete: no error about a row still being filled in
            errors.append(f"row {i} {lacking}")
            continue
        try:
            clean = _clean(raw)
        except ValidationError as exc:
            errors.append(f"row {i}: {exc}")
            continue
        if rid is not None and rid in old:
            seen.add(rid)
            if not _same(old[rid], clean):
                revoke.append(rid)
                grant.append(clean)
        else:
            grant.append(clean)
    revoke += [rid for rid in old if rid not in seen]
    return sorted(set(revoke)), grant, errors


def apply_changes(vault, revoke: list[int], grant: list[dict[str, Any]]) -> tuple[int, str | None]:
    """Revoke then grant, in order; (changes done, the reason it stopped or None).

    Each change is its own audited vault call: a failure stops the rest and
    says how far it got, so the admin can review the table and try again.
    """
    done = 0
    try:
        for rid in revoke:
            vault.revoke(rid)
            done += 1
        for rule in grant:
            vault.grant(rule["subject"], rule["levels"].split(","), environment=rule["environment"],
                        pattern=rule["pattern"], effect=rule["effect"], subject_kind=rule["subject_kind"],
                        note=rule["note"])
            done += 1
    except USER_ERRORS as exc:
        return done, str(exc)
    return done, None


def describe(plan: dict[str, list]) -> list[str]:
    """One line per change of a plan, as the confirm step shows them."""
    lines = [f"- revoke rule {rid}" for rid in plan["revoke"]]
    lines += [f"+ {r['effect']} {r['levels']} to {r['subject_kind']} {r['subject']} on "
              f"{r['environment']}/{r['pattern']}" for r in plan["grant"]]
    return lines


def _confirm(g: Guard) -> None:
    """The reviewed plan (from session state) with Apply and Discard."""
    plan = st.session_state.get(PLAN)
    if not plan:
        return
    st.subheader("Changes to apply")
    for line in describe(plan):
        st.text(line)
    left, right = st.columns([1, 4])
    if right.button("Discard", key="rules_discard"):
        st.session_state.pop(PLAN, None)
        st.rerun()
    if left.button(f"Apply {len(plan['revoke']) + len(plan['grant'])} change(s)", type="primary",
                   key="rules_apply"):
        done, problem = apply_changes(g.vault, plan["revoke"], plan["grant"])
        st.session_state.pop(PLAN, None)
        st.session_state.pop("rules_editor", None)  # the editor starts again from the stored rules
        if problem:
            feedback.done(f"Stopped after {done} change(s): {feedback.sentence(Exception(problem))}", "error")
        feedback.done(f"Applied {done} change(s).")


def _columns() -> dict[str, Any]:
    """The rule tables' columns, labelled in words; in the editor, cells picked from lists where they can be."""
    return {
        "id": st.column_config.NumberColumn("Rule", disabled=True),
        "subject_kind": st.column_config.SelectboxColumn("Subject kind", options=["user", "role", "any"]),
        "subject": st.column_config.TextColumn("Subject"),
        "environment": st.column_config.SelectboxColumn("Environment", options=ENV_CHOICES),
        "pattern": st.column_config.TextColumn("Name or pattern", help="a name or a glob such as app/*; empty = *"),
        "levels": st.column_config.MultiselectColumn(
            "Levels", options=LEVELS, accept_new_options=False,
            help="pick one or more (type to filter, Enter to add, Tab to finish): " + ", ".join(LEVELS)),
        "effect": st.column_config.SelectboxColumn("Effect", options=["allow", "deny"]),
        "note": st.column_config.TextColumn("Note"),
    }


def _rules(g: Guard) -> None:
    rules = g.vault.list_rules()
    builtin = [r for r in rules if r.id <= 0]
    editable = pd.DataFrame([_row(r) for r in rules if r.id > 0], columns=["id"] + FIELDS)
    st.caption("Built-in rules (not editable)")
    st.dataframe(pd.DataFrame([_row(r) for r in builtin], columns=["id"] + FIELDS), hide_index=True,
                 column_config=_columns())
    st.caption("Rules: edit cells, add rows (+) or delete rows, then review the changes")
    with st.form("rules_form", border=False):  # edits stay in the grid (no rerun, no lost focus) until Review
        edited = st.data_editor(editable, key="rules_editor", num_rows="dynamic", hide_index=True, width="stretch",
                                column_config=_columns())
        review = st.form_submit_button("Review changes")
    if review:
        revoke, grant, errors = diff_rules(editable, edited)
        for err in errors:
            st.error(f"{err[0].upper()}{err[1:].rstrip('.')}.")
        if not errors and not (revoke or grant):
            st.info("No changes to review.")
        elif not errors:
            st.session_state[PLAN] = {"revoke": revoke, "grant": grant}
    _confirm(g)


def _roles(g: Guard) -> None:
    people = g.vault.list_principals()
    st.dataframe(pd.DataFrame([{"principal": p["name"], "kind": p["kind"], "roles": ", ".join(p["roles"])}
                               for p in people]), hide_index=True)
    st.caption("Change roles on the Users page.")


def _simulator(g: Guard) -> None:
    with st.form("simulate"):
        c = st.columns(3)
        who = c[0].text_input("Principal", key="sim_who")
        env = c[1].selectbox("Environment", [e.value for e in Environment], key="sim_env")
        name = c[2].text_input("Secret name", key="sim_name")
        level = st.selectbox("Who holds level", [lv.value for lv in AccessLevel], key="sim_level")
        go = st.form_submit_button("Simulate")
    if not go:
        return
    try:
        if who.strip():
            known = {p["name"] for p in g.vault.list_principals()}
            if canonical_principal(who) not in known:
                st.error(f"There is no user named {canonical_principal(who)}; simulate a user the vault knows.")
                return
            result = g.vault.effective_permissions(who, env, name)
            st.text(f"{result['principal']} (roles: {', '.join(result['roles']) or 'none'}) on "
                    f"{result['environment']}/{result['name']}: {', '.join(result['levels']) or 'nothing'}")
            reasons = [{"level": lv, "decision": "allowed", "rule": why} for lv, why in result["allowed_by"].items()]
            reasons += [{"level": lv, "decision": "denied", "rule": why} for lv, why in result["denied_by"].items()]
            st.dataframe(pd.DataFrame(reasons, columns=["level", "decision", "rule"]), hide_index=True)
        holders = g.vault.who_can(name, env, level)
        st.caption(f"Who holds {level} on {env}/{name}")
        st.dataframe(pd.DataFrame(holders, columns=["principal", "roles", "reason"]), hide_index=True)
    except USER_ERRORS as exc:
        st.error(feedback.sentence(exc))


def render(g: Guard) -> None:
    st.title("Access")
    feedback.show()
    tab_rules, tab_roles, tab_sim = st.tabs(["Rules", "Roles", "Simulator"])
    with tab_rules:
        _rules(g)
    with tab_roles:
        _roles(g)
    with tab_sim:
        _simulator(g)
