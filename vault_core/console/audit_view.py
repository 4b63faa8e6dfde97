"""The Audit page: filters to pick (principal, operation, environment, outcome, dates), keyset paging,
chain verification, export, audit-hash lookup."""

from __future__ import annotations

from datetime import datetime, time, timezone
from typing import Any

import pandas as pd
import streamlit as st

from ..environments import Environment
from ..audit import audit_cursor
from ..errors import AccessDenied, ValidationError
from . import fmt
from .auth import Guard
from .routes import export_url

PAGE_SIZE = 100
SEEN = "_audit_seen_principals"  # session state: principals shown in this session's audit tables (names only)
COLUMNS = ["seq", "timestamp", "principal", "roles", "operation", "environment", "secret_name", "version",
           "outcome", "reason", "client_ip", "forwarded_for", "forwarded_trusted", "user_agent", "session_id"]
LABELS = {"seq": "Row", "principal": "Who", "roles": "Roles", "operation": "Operation", "environment": "Environment",
          "secret_name": "Secret", "version": "Version", "outcome": "Outcome", "reason": "Reason",
          "client_ip": "Client IP", "forwarded_for": "Forwarded for", "forwarded_trusted": "Proxy trusted",
          "user_agent": "Browser or client", "session_id": "Session"}


def _show(rows: list[dict[str, Any]]) -> None:
    """Audit rows in one table format: worded labels, times in the browser's zone, empty cells empty."""
    st.dataframe(pd.DataFrame(rows, columns=COLUMNS), hide_index=True, width="stretch",
                 column_config={**LABELS, "timestamp": fmt.date_column("When"),
                                "forwarded_trusted": st.column_config.CheckboxColumn("Proxy trusted")})


def _day(d, end: bool = False) -> datetime | None:
    return None if d is None else datetime.combine(d, time.max if end else time.min, tzinfo=timezone.utc)


def _choices(g: Guard) -> tuple[list[str], list[str]]:
    """(operations, principals) to pick from: the log's operations of the last year (from its counters),
    known users, and every principal this session's audit tables have shown (from the next run on)."""
    operations = sorted({c["operation"] for c in g.vault.audit_counts(365)})
    principals = {p["name"] for p in g.vault.list_principals()} | st.session_state.get(SEEN, set())
    return operations, sorted(principals)


def _pick(col, label: str, options: list[str], key: str, anything: str) -> str | None:
    """A select box with search; a value chosen earlier stays choosable even if it left the lists."""
    current = st.session_state.get(key)
    if current and current not in options:
        options = sorted([*options, current])
    chosen = col.selectbox(label, [anything, *options], key=key)
    return None if chosen == anything else chosen


def _filters(g: Guard) -> dict[str, Any]:
    operations, principals = _choices(g)
    c = st.columns([2, 2, 1.5, 1.5, 2])  # "Environment", "Outcome" on one line at 1024 px wide
    f = {"principal": _pick(c[0], "Principal", principals, "a_principal", "anyone"),
         "operation": _pick(c[1], "Operation", operations, "a_operation", "any operation"),
         "environment": (lambda e: None if e == "all" else e)(
             c[2].selectbox("Environment", ["all"] + [e.value for e in Environment], key="a_env")),
         "outcome": (lambda o: None if o == "all" else o)(
             c[3].selectbox("Outcome", ["all", "allowed", "denied", "failed"], key="a_outcome"))}
    days = c[4].date_input("Dates (from – to, inclusive)", value=(), key="a_dates")
    days = tuple(days) if isinstance(days, (tuple, list)) else (days,)
    f["since"] = _day(days[0]) if days else None
    f["until"] = _day(days[-1], end=True) if days else None
    name = st.text_input("Secret name", key="a_name").strip()
    f["name"] = name or None
    return f


ORDERS = ("Newest first", "Oldest first")  # the view only: exports and audit devices are always oldest first


def _table(g: Guard, f: dict[str, Any]) -> None:
    oldest = st.radio("Order", ORDERS, horizontal=True, key="a_order") == ORDERS[1]
    key = repr((sorted(f.items()), oldest))
    paging = st.session_state.get("audit_paging")
    if not paging or paging["key"] != key:
        paging = st.session_state["audit_paging"] = {"key": key, "cursors": [None]}
    rows = g.vault.get_audit_log(limit=PAGE_SIZE, cursor=paging["cursors"][-1], oldest_first=oldest, **f)
    st.session_state.setdefault(SEEN, set()).update(r["principal"] for r in rows if r["principal"])
    _show(rows)
    back, forward = ("Earlier", "Later") if oldest else ("Newer", "Older")
    left, mid, right = st.columns([1, 2, 1])
    if left.button(back, disabled=len(paging["cursors"]) == 1, key="a_prev"):
        paging["cursors"].pop()
        st.rerun()
    mid.caption(f"Page {len(paging['cursors'])}: {len(rows)} row(s), {'oldest' if oldest else 'newest'} first")
    if right.button(forward, disabled=len(rows) < PAGE_SIZE, key="a_next"):
        paging["cursors"].append(audit_cursor(rows[-1]))
        st.rerun()


def _verify(g: Guard) -> None:
    if st.button("Verify the hash chain", key="a_verify"):
        bar = st.progress(0.0, text="Verifying the hash chain")

        def progress(done: int, total: int) -> None:
            bar.progress(min(1.0, done / total) if total else 1.0, text=f"Verified {done:,} of {total:,} rows")

        report = g.vault.verify_audit_log(progress=progress)
        if report.ok:
            st.success(f"Chain intact: {report.rows_checked} rows checked, head at row {report.head_seq}.")
        else:
            st.error(f"Chain broken: first bad row is {report.first_bad_seq}. {report.problem}")


def _export(f: dict[str, Any]) -> None:
    """A link to the export route: it checks the session cookie and the right, audits and streams."""
    c = st.columns([1, 1, 2])
    fmt = c[0].selectbox("Export format", ["csv", "jsonl", "ocsf", "ecs"], key="a_fmt",
                         help="ocsf / ecs: JSON Lines of OCSF 1.2 events or Elastic Common Schema documents")
    c[1].link_button(f"Download audit.{fmt}", export_url(fmt, f), icon=":material/download:")
    c[2].caption("Exports are oldest first (chain order), each line verifiable offline: "
                 "`vault-console audit verify --file`.")


def _hash_lookup(g: Guard) -> None:
    with st.form("a_hash", clear_on_submit=True):
        value = st.text_input("Check whether a known value passed through (never stored; compared by keyed hash)",
                              type="password")
        go = st.form_submit_button("Look up")
    if not go or not value:
        return
    try:
        found = g.vault.find_value(value)  # one audited, rate-limited lookup; indexed on the keyed hash
    except AccessDenied as exc:  # e.g. over the lookups allowed a minute
        st.error(str(exc))
        return
    finally:
        del value
    if found:
        _show(found)
    else:
        st.info("No write in the audit log carries that value.")


def render(g: Guard) -> None:
    st.title("Audit")
    f = _filters(g)
    try:
        _table(g, f)
    except ValidationError as exc:
        st.error(str(exc))
        return
    st.divider()
    _verify(g)
    _export(f)
    _hash_lookup(g)
