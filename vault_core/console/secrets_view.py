"""The Secrets page: browse (server-side keyset paging), create, and the open secret (``secret_page``).

User-supplied text (descriptions, tags) is shown with ``st.text`` /
``st.dataframe``, which render it as text.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pandas as pd
import streamlit as st

from ..environments import Environment
from ..errors import AccessDenied, Conflict, NotFound, ValidationError
from ..models import SecretMetadata, SecretType
from ..names import canonical_name
from . import feedback, fmt
from .auth import Guard
from .roles import read_only_secrets
from .secret_page import RESTORED, TABLE_GEN, act, details, expiry, levels, open_secret, opened, tags
from .value_input import buttons, certificate_note, clear, value_input
from .value_input import shape as value_shape

PAGE_SIZE = 50
SCAN_PAGES = 20  # bound on server pages read to fill one filtered page
EXPIRY = ("any", "expiring within 30 days", "expired or rotation overdue")
ENVS = [e.value for e in Environment]
TYPES = [t.value for t in SecretType]
USER_ERRORS = (ValidationError, Conflict, NotFound, AccessDenied)
COLUMNS = {"name": "Name", "environment": "Environment", "type": "Type", "version": "Version", "tags": "Tags",
           "description": "Description", "updated": "Updated", "updated by": "Updated by", "expires": "Expires",
           "next rotation": "Next rotation"}


def _matches_expiry(m: SecretMetadata, mode: str, now: datetime) -> bool:
    if mode == EXPIRY[1]:
        return m.expires_at is not None and now <= m.expires_at < now + timedelta(days=30)
    if mode == EXPIRY[2]:
        return ((m.expires_at is not None and m.expires_at < now)
                or (m.next_rotation_at is not None and m.next_rotation_at <= now))
    return True


def _filters(admin: bool) -> dict[str, Any]:
    if st.session_state.pop(RESTORED, False):  # a restored secret is live again: list the live ones
        st.session_state["f_deleted"] = False
    cols = st.columns([3, 3, 2, 4, 3])  # "Environment" on one line at 1024 px wide
    env = cols[0].selectbox("Environment", ["all"] + ENVS, key="f_env")
    stype = cols[1].selectbox("Type", ["all"] + TYPES, key="f_type")
    tag = cols[2].text_input("Tag", key="f_tag", max_chars=64)
    search = cols[3].text_input("Name contains", key="f_search", max_chars=256)
    expiry = cols[4].selectbox("Expiry", EXPIRY, key="f_expiry")
    deleted = st.toggle("Show deleted secrets", key="f_deleted") if admin else False
    return {"environment": None if env == "all" else env, "secret_type": None if stype == "all" else stype,
            "tag": tag.strip() or None, "search": search.strip() or None, "expiry": expiry, "deleted": deleted}


def _fetch(g: Guard, f: dict[str, Any], cursor: str | None) -> tuple[list[SecretMetadata], str | None]:
    """One screen of rows from the server, following cursors; the expiry filter is applied per row."""
    now = datetime.now(timezone.utc)
    out: list[SecretMetadata] = []
    for _ in range(SCAN_PAGES):
        page = g.vault.list_secrets(f["environment"], f["secret_type"], tag=f["tag"], search=f["search"],
                                    limit=PAGE_SIZE, cursor=cursor, only_deleted=f["deleted"])
        for i, m in enumerate(page):
            if _matches_expiry(m, f["expiry"], now):
                out.append(m)
                if len(out) == PAGE_SIZE:
                    more = page.next_cursor is not None or i < len(page) - 1
                    return out, (f"{m.environment}/{m.name}" if more else None)
        cursor = page.next_cursor
        if cursor is None:
            return out, None
    return out, cursor


def _table(rows: list[SecretMetadata]) -> pd.DataFrame:
    return pd.DataFrame([{
        "name": m.name, "environment": m.environment, "type": m.secret_type, "version": m.current_version,
        "tags": ", ".join(m.tags), "description": m.description[:120], "updated": m.updated_at,
        "updated by": m.updated_by, "expires": m.expires_at, "next rotation": m.next_rotation_at,
    } for m in rows], columns=list(COLUMNS)).rename(columns=COLUMNS)


def _column_config() -> dict[str, Any]:
    dates = {c: fmt.date_column(c) for c in ("Updated", "Expires", "Next rotation")}
    return {"Name": st.column_config.TextColumn("Name", pinned=True),  # stays in view when the table scrolls
            "Version": st.column_config.NumberColumn("Version", width="small"), **dates}


def _pick_row(table_key: str, keys: list[tuple[str, str]]) -> None:
    """Table selection callback: open the selected row's secret."""
    rows = st.session_state[table_key]["selection"]["rows"]
    if rows and rows[0] < len(keys):
        open_secret(*keys[rows[0]])
        st.session_state.pop("secret_pick", None)


def _pick(keys: dict[str, tuple[str, str]]) -> None:
    """Picker callback: open the chosen secret."""
    choice = st.session_state.get("secret_pick")
    if choice in keys:
        open_secret(*keys[choice])


def _browse(g: Guard, admin: bool) -> None:
    f = _filters(admin)
    key = repr(sorted(f.items()))
    paging = st.session_state.get("secrets_paging")
    if not paging or paging["key"] != key:
        paging = st.session_state["secrets_paging"] = {"key": key, "cursors": [None]}
    rows, next_cursor = _fetch(g, f, paging["cursors"][-1])
    keys = [(m.environment, m.name) for m in rows]
    table_key = f"secrets_table_{st.session_state.get(TABLE_GEN, 0)}_{len(paging['cursors'])}"
    st.dataframe(_table(rows), key=table_key, hide_index=True, on_select=lambda: _pick_row(table_key, keys),
                 selection_mode="single-row", width="stretch", column_config=_column_config())
    left, mid, right = st.columns([1, 2, 1])
    if left.button("Previous page", disabled=len(paging["cursors"]) == 1):
        paging["cursors"].pop()
        st.rerun()
    mid.caption(f"Page {len(paging['cursors'])}: {len(rows)} secret(s)")
    if right.button("Next page", disabled=next_cursor is None):
        paging["cursors"].append(next_cursor)
        st.rerun()
    by_label = {f"{env}/{name}": (env, name) for env, name in keys}
    st.selectbox("Secret", list(by_label), index=None, key="secret_pick", on_change=_pick, args=(by_label,),
                 placeholder="Select a row above, or choose here")


NEW_KEYS = {"new_name": "", "new_desc": "", "new_tags": "", "new_days": 0, "new_expires": None}
CLEAR_NEW = "_secrets_clear_new"  # session state: the next run starts the New secret form empty


def _create_secret(g: Guard, name: str, value: str | bytes) -> None:
    """Store the new secret; on success clear the form, open the secret and rerun."""
    s = st.session_state
    env, stype = s["new_env"], s["new_type"]
    when = expiry(s["new_expires"])
    if when is None and stype == "certificate":
        when = certificate_note(value)[1]

    def action() -> str:
        g.vault.store_secret(name=name, value=value, secret_type=stype, environment=env,
                             description=s["new_desc"], rotation_interval_days=int(s["new_days"]) or None,
                             tags=tags(s["new_tags"]), expires_at=when, cas=0)
        return f"Created {env}/{name}."

    def then() -> None:
        s[CLEAR_NEW] = True
        open_secret(env, name)

    act(action, then)


def _write_reason(g: Guard, env: str, name: str) -> tuple[str | None, str | None, str | None]:
    """(canonical name, problem with the name, reason the user may not create it) of what was typed."""
    if not name.strip():
        return None, None, None
    try:
        cname = canonical_name(name)
    except ValidationError as exc:
        return None, feedback.sentence(exc), None
    if "write" not in levels(g, env, cname):
        return cname, None, (f"You do not hold the write level on {env}/{cname}, so you cannot create it "
                             "(change the name and press Check).")
    return cname, None, None


def _create_form(g: Guard) -> None:
    if st.session_state.pop(CLEAR_NEW, False):  # before the inputs exist in this run
        clear("new")
        st.session_state.update(NEW_KEYS)
    with st.expander("New secret"):
        # Picked, not typed: outside the form, so that a new type or shape redraws the form at once.
        c1, c2, c3 = st.columns([1, 1, 2])
        env = c1.selectbox("Environment", ENVS, key="new_env")
        stype = c2.selectbox("Type", TYPES, index=TYPES.index("generic"), key="new_type")
        with c3:
            shape = value_shape("new")
        # Typed: in a form, so that pressing Create always carries what was typed (outside a form, a press
        # landing during the rerun that leaving the text area starts could be dropped).
        with st.form("new_secret_form", border=False):
            c1, c2 = st.columns(2)
            name = c1.text_input("Name", max_chars=256, key="new_name")
            c2.number_input("Rotate every N days (0 = never)", 0, 3650, 0, key="new_days")
            value, problem, note = value_input("new", stype, shape)
            st.text_area("Description", max_chars=2000, key="new_desc")
            st.text_input("Tags (comma separated)", key="new_tags")
            st.date_input("Expires on (optional; a certificate's own expiry otherwise)", value=None,
                          key="new_expires")
            cname, name_problem, reason = _write_reason(g, env, name)
            problem = name_problem or problem
            pressed = buttons("new", stype, shape, "Create", reason)
        if note:
            st.info(note)
        if reason:
            st.warning(reason)
        if not pressed:
            if problem:
                st.error(problem)
            return
        if problem or not cname or not value:
            st.error(problem or "Enter a name and a value.")
            return
        _create_secret(g, cname, value)


def render(g: Guard) -> None:
    """The whole page; call inside ``g.context()``."""
    roles = set(g.session.roles)
    read_only = read_only_secrets(roles)
    st.title("Secrets")
    feedback.show()
    if read_only:
        st.caption("Auditor view: metadata only.")
    else:
        _create_form(g)
    _browse(g, "admin" in roles)
    where = opened()
    if where is None:
        return
    try:
        m = g.vault.get_metadata(where[1], where[0])
    except USER_ERRORS as exc:
        st.error(feedback.sentence(exc))
        return
    if m is None:
        st.info(f"There is no secret {where[0]}/{where[1]}.")
        return
    details(g, m, read_only)
