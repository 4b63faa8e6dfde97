"""The Audit page: filters, keyset paging, chain verification, export, audit-hash lookup."""

from __future__ import annotations

from datetime import datetime, time, timezone
from typing import Any

import pandas as pd
import streamlit as st

from ..environments import Environment
from ..audit import audit_cursor
from ..errors import ValidationError
from .auth import Guard
from .routes import export_url

PAGE_SIZE = 100
COLUMNS = ["seq", "timestamp", "principal", "roles", "operation", "environment", "secret_name", "version",
           "outcome", "reason", "client_ip", "forwarded_for", "forwarded_trusted", "user_agent", "session_id"]


def _day(d, end: bool = False) -> datetime | None:
    return None if d is None else datetime.combine(d, time.max if end else time.min, tzinfo=timezone.utc)


def _filters() -> dict[str, Any]:
    c = st.columns(6)
    f = {"principal": c[0].text_input("Principal", key="a_principal").strip() or None,
         "operation": c[1].text_input("Operation", key="a_operation").strip() or None,
         "environment": (lambda e: None if e == "all" else e)(
             c[2].selectbox("Environment", ["all"] + [e.value for e in Environment], key="a_env")),
         "outcome": (lambda o: None if o == "all" else o)(
             c[3].selectbox("Outcome", ["all", "allowed", "denied", "failed"], key="a_outcome")),
         "since": _day(c[4].date_input("From", value=None, key="a_since")),
         "until": _day(c[5].date_input("To (inclusive)", value=None, key="a_until"), end=True)}
    name = st.text_input("Secret name", key="a_name").strip()
    f["name"] = name or None
    return f


def _table(g: Guard, f: dict[str, Any]) -> None:
    key = repr(sorted(f.items()))
    paging = st.session_state.get("audit_paging")
    if not paging or paging["key"] != key:
        paging = st.session_state["audit_paging"] = {"key": key, "cursors": [None]}
    rows = g.vault.get_audit_log(limit=PAGE_SIZE, cursor=paging["cursors"][-1], **f)
    st.dataframe(pd.DataFrame(rows, columns=COLUMNS), hide_index=True, width="stretch")
    left, mid, right = st.columns([1, 2, 1])
    if left.button("Newer", disabled=len(paging["cursors"]) == 1, key="a_prev"):
        paging["cursors"].pop()
        st.rerun()
    mid.caption(f"Page {len(paging['cursors'])}: {len(rows)} row(s), newest first")
    if right.button("Older", disabled=len(rows) < PAGE_SIZE, key="a_next"):
        paging["cursors"].append(audit_cursor(rows[-1]))
        st.rerun()


def _verify(g: Guard) -> None:
    if st.button("Verify the hash chain", key="a_verify"):
        report = g.vault.verify_audit_log()
        if report.ok:
            st.success(f"Chain intact: {report.rows_checked} rows checked, head at row {report.head_seq}.")
        else:
            st.error(f"Chain broken: first bad row is {report.first_bad_seq}. {report.problem}")


def _export(f: dict[str, Any]) -> None:
    """A link to the export route: it checks the session cookie and the right, audits and streams."""
    c = st.columns([1, 1, 2])
    fmt = c[0].selectbox("Export format", ["csv", "jsonl"], key="a_fmt")
    c[1].link_button(f"Download audit.{fmt}", export_url(fmt, f), icon=":material/download:")


def _hash_lookup(g: Guard) -> None:
    with st.form("a_hash", clear_on_submit=True):
        value = st.text_input("Check whether a known value passed through (never stored; compared by keyed hash)",
                              type="password")
        go = st.form_submit_button("Look up")
    if not go or not value:
        return
    digest = g.vault.audit_hash(value)
    found = g.vault.find_value(value)  # indexed on the keyed hash: the whole log, not a recent slice
    del value
    st.text(f"Audit hash: {digest}")
    if found:
        st.dataframe(pd.DataFrame(found, columns=COLUMNS), hide_index=True)
    else:
        st.info("No write in the audit log carries that value.")


def render(g: Guard) -> None:
    st.title("Audit")
    f = _filters()
    try:
        _table(g, f)
    except ValidationError as exc:
        st.error(str(exc))
        return
    st.divider()
    _verify(g)
    _export(f)
    _hash_lookup(g)
