"""The Rotation page (admins, operators): schedule, rotate now (one or many), revert, history.

Uses the rotation engineer's ``rotation_schedule``, ``rotate_due``,
``revert_secret`` and ``rotation_history`` when the vault has them, and
falls back to ``list_secrets`` / ``get_audit_log`` otherwise.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from ..errors import AccessDenied, Conflict, NotFound, ValidationError, VaultError
from .auth import Guard

USER_ERRORS = (ValidationError, Conflict, NotFound, AccessDenied)
MAX_ROWS = 1000


def _schedule(g: Guard, days: int) -> list[dict[str, Any]]:
    if hasattr(g.vault, "rotation_schedule"):
        return g.vault.rotation_schedule(days, limit=MAX_ROWS)
    rows, cursor = [], None
    while len(rows) < MAX_ROWS:
        page = g.vault.list_secrets(limit=500, cursor=cursor)
        rows += [{"secret_id": m.id, "environment": m.environment, "name": m.name, "secret_type": m.secret_type,
                  "rotation_interval_days": m.rotation_interval_days, "next_rotation_at": m.next_rotation_at,
                  "last_rotated_at": m.last_rotated_at} for m in page if m.next_rotation_at is not None]
        cursor = page.next_cursor
        if cursor is None:
            break
    return sorted(rows, key=lambda r: r["next_rotation_at"])


def _rotate_many(g: Guard, picked: list[dict[str, Any]]) -> None:
    bar = st.progress(0.0, text="Rotating…")
    results = []
    for i, row in enumerate(picked, start=1):
        label = f"{row['environment']}/{row['name']}"
        try:
            version = g.vault.rotate_secret(secret_id=row["secret_id"])
            results.append({"secret": label, "outcome": "rotated", "version": version, "reason": ""})
        except (VaultError, Exception) as exc:  # one failure must not stop the others
            reason = str(exc) if isinstance(exc, VaultError) else f"{type(exc).__name__} in the generator"
            results.append({"secret": label, "outcome": "failed", "version": None, "reason": reason})
        bar.progress(i / len(picked), text=f"Rotated {i} of {len(picked)}")
    st.dataframe(pd.DataFrame(results), hide_index=True)


def _history(g: Guard) -> None:
    st.subheader("History")
    try:
        if hasattr(g.vault, "rotation_history"):
            rows = g.vault.rotation_history(limit=100)
        else:
            rows = g.vault.get_audit_log(operation="rotate", limit=100)
    except USER_ERRORS as exc:
        st.info(str(exc))
        return
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")


def render(g: Guard) -> None:
    st.title("Rotation")
    days = st.slider("Show rotations due within (days)", 0, 365, 90, key="r_days")
    try:
        rows = _schedule(g, days)
    except USER_ERRORS as exc:
        st.error(str(exc))
        return
    table = pd.DataFrame(rows, columns=["environment", "name", "secret_type", "rotation_interval_days",
                                        "next_rotation_at", "last_rotated_at"])
    st.dataframe(table, hide_index=True, width="stretch")
    labels = {f"{r['environment']}/{r['name']}": r for r in rows}
    chosen = st.multiselect("Secrets to rotate now", list(labels), key="r_pick")
    c = st.columns(3)
    if c[0].button("Rotate now", disabled=not chosen, key="r_go"):
        _rotate_many(g, [labels[k] for k in chosen])
    if hasattr(g.vault, "revert_secret") and len(chosen) == 1 and c[1].button("Revert to previous", key="r_rev"):
        try:
            version = g.vault.revert_secret(secret_id=labels[chosen[0]]["secret_id"])
            st.success(f"Reverted: the previous value is current again (version {version}).")
        except USER_ERRORS as exc:
            st.error(str(exc))
    if hasattr(g.vault, "rotate_due") and "admin" in g.session.roles and c[2].button("Rotate all due", key="r_due"):
        try:
            run = g.vault.rotate_due()
        except USER_ERRORS as exc:
            st.error(str(exc))
        else:
            if not run.lease:
                st.info("Another process is running scheduled rotation right now.")
            st.success(f"Rotated {len(run.rotated)}, failed {len(run.failed)}.")
    _history(g)
