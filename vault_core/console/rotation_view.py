"""The Rotation page (admins, operators): schedule, rotate now after a confirmation, revert, schedules, history.

*Rotate now…* opens a dialog that lists each secret with the generator that will make its new value and the
hooks registered for it in this process, and warns when a type that usually needs an ``apply`` hook (API
keys, database credentials, passwords) has none: the new value would not reach the service using it. Every
change reruns the page with its message, so the schedule and history show it at once.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from ..errors import AccessDenied, Conflict, NotFound, ValidationError, VaultError
from ..rotation import default_generator_name
from . import feedback, fmt
from .auth import Guard

USER_ERRORS = (ValidationError, Conflict, NotFound, AccessDenied)
MAX_ROWS = 1000
PENDING = "_rotation_confirm"  # session state: the labels the open confirmation dialog is about
RESULTS = "_rotation_results"  # session state: the last rotation's per-secret outcome (no values), shown once
NEEDS_APPLY = {"api_key": "an API key", "database_url": "a database URL", "password": "a password"}
SCHEDULE = {"environment": "Environment", "name": "Name", "secret_type": "Type", "generator": "Generator",
            "rotation_interval_days": "Rotation", "next_rotation_at": "Next rotation",
            "last_rotated_at": "Last rotated", "overdue": "Overdue"}
HISTORY = {"at": "When", "principal": "By", "operation": "Operation", "environment": "Environment",
           "name": "Name", "version": "Version", "outcome": "Outcome", "reason": "Reason"}


def generator_of(row: dict[str, Any]) -> str:
    return row.get("generator") or default_generator_name(row["secret_type"])


def plan(g: Guard, rows: list[dict[str, Any]]) -> tuple[pd.DataFrame, list[str]]:
    """What a rotation of ``rows`` will do: one line per secret, and the warnings."""
    lines, warnings = [], []
    for r in rows:
        gen = generator_of(r)
        hooks = g.vault.rotation_hooks(gen)
        staged = [h for h in ("apply", "test") if hooks[h]]
        label = f"{r['environment']}/{r['name']}"
        lines.append({"Secret": label, "Type": r["secret_type"], "New value from": f"generator '{gen}'",
                      "Hooks": " and ".join(staged) + (" (staged: promoted only if they pass)" if staged else "")})
        if r["secret_type"] in NEEDS_APPLY and not hooks["apply"]:
            warnings.append(f"{label} is {NEEDS_APPLY[r['secret_type']]}, and no apply hook is registered for "
                            f"generator '{gen}' in this console: the new value will not reach the service that "
                            "uses it, which keeps the old one until someone updates it.")
    return pd.DataFrame(lines, columns=["Secret", "Type", "New value from", "Hooks"]), warnings


def _rotate_many(g: Guard, picked: list[dict[str, Any]]) -> list[dict[str, Any]]:
    bar = st.progress(0.0, text=f"Rotating {len(picked)} secret(s)…")
    results = []
    for i, row in enumerate(picked, start=1):
        label = f"{row['environment']}/{row['name']}"
        try:
            version = g.vault.rotate_secret(secret_id=row["secret_id"])
            results.append({"Secret": label, "Outcome": "rotated", "New version": version, "Reason": ""})
        except (VaultError, Exception) as exc:  # one failure must not stop the others
            reason = feedback.sentence(exc) if isinstance(exc, VaultError) else \
                f"{type(exc).__name__} in the generator."
            results.append({"Secret": label, "Outcome": "failed", "New version": None, "Reason": reason})
        bar.progress(i / len(picked), text=f"Rotated {i} of {len(picked)}")
    return results


def _close() -> None:
    st.session_state.pop(PENDING, None)


@st.dialog("Rotate secrets", width="large", on_dismiss=_close)
def _confirm(g: Guard, picked: list[dict[str, Any]]) -> None:
    with g.context():  # a dialog rerun skips the page body, so enter the context here
        lines, warnings = plan(g, picked)
        st.text(f"{len(picked)} secret(s) get a new value now; the current one becomes 'previous' "
                "(Revert brings it back).")
        st.dataframe(lines, hide_index=True, width="stretch")
        for w in warnings:
            st.warning(w)
        left, right = st.columns(2)
        if right.button("Cancel", key="r_cancel"):
            _close()
            st.rerun()
        if left.button(f"Rotate {len(picked)} secret(s) now", type="primary", key="r_confirm"):
            results = _rotate_many(g, picked)
            _close()
            st.session_state[RESULTS] = results
            ok = sum(r["Outcome"] == "rotated" for r in results)
            feedback.done(f"Rotated {ok} of {len(results)} secret(s).", "success" if ok == len(results) else "warning")


def _history(g: Guard) -> None:
    st.subheader("History", anchor=False)
    try:
        rows = g.vault.rotation_history(limit=100)
    except USER_ERRORS as exc:
        st.info(feedback.sentence(exc))
        return
    st.dataframe(pd.DataFrame(rows, columns=list(HISTORY)).rename(columns=HISTORY), hide_index=True,
                 width="stretch", column_config={"When": fmt.date_column("When")})


def _set_schedule(g: Guard) -> None:
    with st.expander("Set a rotation schedule"):
        search = st.text_input("Find secrets (name contains)", key="rs_search", max_chars=256)
        try:
            page = g.vault.list_secrets(search=search.strip() or None, limit=50)
        except USER_ERRORS as exc:
            st.error(feedback.sentence(exc))
            return
        found = {f"{m.environment}/{m.name}": m for m in page}
        chosen = st.multiselect("Secrets", list(found), key="rs_pick")
        days = int(st.number_input("Rotate every N days (0 = no schedule)", 0, 3650, 30, key="rs_days"))
        if not st.button("Save schedule", key="rs_save", disabled=not chosen):
            return
        done = 0
        try:
            for label in chosen:
                g.vault.update_secret(secret_id=found[label].id, rotation_interval_days=days or None)
                done += 1
        except USER_ERRORS as exc:
            st.error(f"Stopped after {done} secret(s). {feedback.sentence(exc)}")
            return
        st.session_state.pop("rs_pick", None)
        feedback.done(f"Schedule of {done} secret(s): {fmt.days(days) or 'no rotation'}.")


def _actions(g: Guard, labels: dict[str, dict[str, Any]]) -> None:
    chosen = st.multiselect("Secrets to rotate now", list(labels), key="r_pick")
    c = st.columns(3)
    if c[0].button("Rotate now…", disabled=not chosen, key="r_go"):
        st.session_state[PENDING] = chosen
    pending = [k for k in st.session_state.get(PENDING) or [] if k in labels]
    if pending:
        _confirm(g, [labels[k] for k in pending])
    if c[1].button("Revert to previous", key="r_rev", disabled=len(chosen) != 1,
                   help=None if len(chosen) == 1 else "Choose exactly one secret to revert."):
        try:
            version = g.vault.revert_secret(secret_id=labels[chosen[0]]["secret_id"])
        except USER_ERRORS as exc:
            st.error(feedback.sentence(exc))
        else:
            feedback.done(f"Reverted {chosen[0]}: the previous value is current again (version {version}).")
    if "admin" in g.session.roles and c[2].button("Rotate all due", key="r_due"):
        try:
            run = g.vault.rotate_due()
        except USER_ERRORS as exc:
            st.error(feedback.sentence(exc))
        else:
            if not run.lease:
                feedback.keep("Another process is running scheduled rotation right now.", "info")
            feedback.done(f"Rotated {len(run.rotated)}, failed {len(run.failed)}.")


def render(g: Guard) -> None:
    st.title("Rotation")
    feedback.show()
    results = st.session_state.pop(RESULTS, None)
    if results:
        st.dataframe(pd.DataFrame(results), hide_index=True, width="stretch")
    days = st.slider("Show rotations due within (days)", 0, 365, 90, key="r_days")
    try:
        rows = g.vault.rotation_schedule(days, limit=MAX_ROWS)
    except USER_ERRORS as exc:
        st.error(feedback.sentence(exc))
        return
    table = pd.DataFrame(rows, columns=list(SCHEDULE))
    table["generator"] = [generator_of(r) for r in rows]
    table["rotation_interval_days"] = [fmt.days(r["rotation_interval_days"]) for r in rows]
    st.dataframe(table.rename(columns=SCHEDULE), hide_index=True, width="stretch",
                 column_config={"Next rotation": fmt.date_column("Next rotation"),
                                "Last rotated": fmt.date_column("Last rotated"),
                                "Overdue": st.column_config.CheckboxColumn("Overdue")})
    _actions(g, {f"{r['environment']}/{r['name']}": r for r in rows})
    _set_schedule(g)
    _history(g)
