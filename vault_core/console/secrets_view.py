"""The Secrets page: browse (server-side keyset paging), details, reveal, create, edit, delete.

A revealed value lives only in a local variable of the run that revealed
it: never in session state or a cache, so the next rerun or a page change
forgets it. User-supplied text (descriptions, tags) is shown with
``st.text`` / ``st.dataframe``, which render it as text.
"""

from __future__ import annotations

import base64
from datetime import datetime, time, timedelta, timezone
from typing import Any

import pandas as pd
import streamlit as st

from ..environments import Environment
from ..errors import AccessDenied, Conflict, NotFound, ValidationError
from ..models import SecretMetadata, SecretType
from .auth import Guard
from .roles import read_only_secrets

PAGE_SIZE = 50
SCAN_PAGES = 20  # bound on server pages read to fill one filtered page
EXPIRY = ("any", "expiring within 30 days", "expired or rotation overdue")
ENVS = [e.value for e in Environment]
TYPES = [t.value for t in SecretType]
PENDING = "_secrets_pending_dialog"
USER_ERRORS = (ValidationError, Conflict, NotFound, AccessDenied)


def _matches_expiry(m: SecretMetadata, mode: str, now: datetime) -> bool:
    if mode == EXPIRY[1]:
        return m.expires_at is not None and now <= m.expires_at < now + timedelta(days=30)
    if mode == EXPIRY[2]:
        return ((m.expires_at is not None and m.expires_at < now)
                or (m.next_rotation_at is not None and m.next_rotation_at <= now))
    return True


def _filters(admin: bool) -> dict[str, Any]:
    cols = st.columns([1, 1, 1, 2, 2])
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
    } for m in rows], columns=["name", "environment", "type", "version", "tags", "description", "updated",
                               "updated by", "expires", "next rotation"])


def _show_value(value: str | bytes | None) -> None:
    if value is None:
        st.info("That version no longer exists.")
    elif isinstance(value, bytes):
        st.code(base64.b64encode(value).decode(), language=None)
        st.caption("Binary value, shown as base64.")
    else:
        st.code(value, language=None)  # st.code has a copy button


def _browse(g: Guard, admin: bool) -> SecretMetadata | None:
    f = _filters(admin)
    key = repr(sorted(f.items()))
    paging = st.session_state.get("secrets_paging")
    if not paging or paging["key"] != key:
        paging = st.session_state["secrets_paging"] = {"key": key, "cursors": [None]}
    rows, next_cursor = _fetch(g, f, paging["cursors"][-1])
    event = st.dataframe(_table(rows), key=f"secrets_table_{len(paging['cursors'])}", hide_index=True,
                         on_select="rerun", selection_mode="single-row", width="stretch")
    left, mid, right = st.columns([1, 2, 1])
    if left.button("Previous page", disabled=len(paging["cursors"]) == 1):
        paging["cursors"].pop()
        st.rerun()
    mid.caption(f"Page {len(paging['cursors'])}: {len(rows)} secret(s)")
    if right.button("Next page", disabled=next_cursor is None):
        paging["cursors"].append(next_cursor)
        st.rerun()
    picked = event.selection.rows if event is not None and hasattr(event, "selection") else []
    if picked and picked[0] < len(rows):
        return rows[picked[0]]  # a row selected in the table wins
    by_label = {f"{m.environment}/{m.name}": m for m in rows}
    choice = st.selectbox("Secret", list(by_label), index=None, key="secret_pick",
                          placeholder="Select a row above, or choose here")
    return by_label.get(choice) if choice else None


def _details(g: Guard, m: SecretMetadata, read_only: bool, admin: bool) -> None:
    st.subheader(f"{m.environment} / {m.name}")
    meta = {"id": m.id, "type": m.secret_type, "current version": str(m.current_version),
            "created": f"{m.created_at:%Y-%m-%d %H:%M} UTC by {m.created_by}",
            "updated": f"{m.updated_at:%Y-%m-%d %H:%M} UTC by {m.updated_by}",
            "expires": str(m.expires_at or "never"), "rotation every (days)": str(m.rotation_interval_days or "-"),
            "next rotation": str(m.next_rotation_at or "-"), "deleted": str(m.deleted_at or "no")}
    st.dataframe(pd.DataFrame({"field": list(meta), "value": list(meta.values())}), hide_index=True)
    st.caption("Description")
    st.text(m.description or "(none)")
    st.caption("Tags")
    st.text(", ".join(m.tags) or "(none)")
    versions = g.vault.list_versions(secret_id=m.id)
    st.caption("Versions (labels: current, previous, pending)")
    st.dataframe(pd.DataFrame([{"version": v.version, "label": v.state, "created": v.created_at,
                                "by": v.created_by} for v in versions]), hide_index=True)
    if m.deleted_at is not None:
        if admin:
            _deleted_actions(g, m)
        return
    if read_only:
        st.info("Read-only: auditors see metadata, never values.")
        return
    numbers = [v.version for v in versions] or [m.current_version]
    cols = st.columns([1, 1, 2])
    version = cols[0].selectbox("Version", numbers, key=f"rv_{m.id}")
    if cols[1].button("Reveal value", key=f"reveal_{m.id}", icon=":material/visibility:"):
        try:
            value = g.vault.reveal_secret(secret_id=m.id, version=version)  # audited as 'reveal'
            _show_value(value)  # this run only: gone at the next rerun
            del value
        except USER_ERRORS as exc:
            st.error(str(exc))
    else:
        st.text("Value: ••••••••")
    _edit_form(g, m)
    _rollback(g, m, [n for n in numbers if n != m.current_version])
    if st.button("Delete…", key=f"delete_{m.id}", icon=":material/delete:"):
        st.session_state[PENDING] = ("delete", m.id)
    if st.session_state.get(PENDING) == ("delete", m.id):
        _confirm_delete(g, m)


def _edit_form(g: Guard, m: SecretMetadata) -> None:
    box = st.container()  # messages stay visible when the expander closes
    with st.expander("Edit"), st.form(f"edit_{m.id}", clear_on_submit=True):
        value = st.text_input("New value (leave empty to keep the current one)", type="password")
        description = st.text_area("Description", value=m.description, max_chars=2000)
        tags = st.text_input("Tags (comma separated)", value=", ".join(m.tags))
        days = st.number_input("Rotate every N days (0 = never)", 0, 3650, m.rotation_interval_days or 0)
        if not st.form_submit_button("Save"):
            return
        changes: dict[str, Any] = {"description": description, "tags": _tags(tags),
                                   "rotation_interval_days": int(days) or None}
        if value:
            changes["value"] = value
        try:
            version = g.vault.update_secret(secret_id=m.id, cas=m.current_version, **changes)
        except USER_ERRORS as exc:
            box.error(str(exc))
            return
        box.success(f"Saved (version {version}).")


def _rollback(g: Guard, m: SecretMetadata, older: list[int]) -> None:
    if not older:
        return
    cols = st.columns([1, 3])
    target = cols[0].selectbox("Roll back to", older, key=f"rb_{m.id}")
    if cols[1].button(f"Roll back to version {target}", key=f"rbgo_{m.id}"):
        try:
            value = g.vault.get_secret(secret_id=m.id, version=target)
            if value is None:
                raise NotFound(f"version {target} no longer exists")
            new = g.vault.update_secret(secret_id=m.id, value=value, cas=m.current_version)
            del value
        except USER_ERRORS as exc:
            st.error(str(exc))
            return
        st.success(f"Version {target} is now the current value (as version {new}).")


def _close_dialog() -> None:
    st.session_state.pop(PENDING, None)


def _confirmed(g: Guard, label: str, action) -> None:
    """Confirm / Cancel buttons of a dialog; the action runs in the caller's security context."""
    left, right = st.columns(2)
    if right.button("Cancel", key=f"cancel_{label}"):
        _close_dialog()
        st.rerun()
    if left.button(label, type="primary", key=f"confirm_{label}"):
        with g.context():  # a dialog rerun skips the page body, so enter the context here
            try:
                action()
            except USER_ERRORS as exc:
                st.error(str(exc))
                return
        _close_dialog()
        st.session_state.pop("secret_pick", None)
        st.rerun()


@st.dialog("Delete secret", on_dismiss=_close_dialog)
def _confirm_delete(g: Guard, m: SecretMetadata) -> None:
    st.text(f"Delete {m.environment}/{m.name}? An admin can restore it.")
    _confirmed(g, "Delete", lambda: g.vault.delete_secret(secret_id=m.id))


@st.dialog("Purge secret", on_dismiss=_close_dialog)
def _confirm_purge(g: Guard, m: SecretMetadata) -> None:
    st.text(f"Purging destroys {m.environment}/{m.name} and every version. Type its name to confirm.")
    typed = st.text_input("Name", key="purge_name")
    if typed == m.name:
        _confirmed(g, "Purge", lambda: g.vault.purge_secret(secret_id=m.id))


def _deleted_actions(g: Guard, m: SecretMetadata) -> None:
    cols = st.columns(2)
    if cols[0].button("Restore", key=f"restore_{m.id}"):
        try:
            g.vault.restore_secret(secret_id=m.id)
        except USER_ERRORS as exc:
            st.error(str(exc))
            return
        st.success("Restored.")
    if cols[1].button("Purge…", key=f"purge_{m.id}"):
        st.session_state[PENDING] = ("purge", m.id)
    if st.session_state.get(PENDING) == ("purge", m.id):
        _confirm_purge(g, m)


def _tags(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _create_form(g: Guard) -> None:
    box = st.container()  # messages stay visible when the expander closes
    with st.expander("New secret"), st.form("create_secret", clear_on_submit=True):
        c1, c2 = st.columns(2)
        name = c1.text_input("Name", max_chars=256, key="new_name")
        env = c2.selectbox("Environment", ENVS, key="new_env")
        stype = c1.selectbox("Type", TYPES, index=TYPES.index("generic"), key="new_type")
        days = c2.number_input("Rotate every N days (0 = never)", 0, 3650, 0, key="new_days")
        value = st.text_input("Value", type="password", key="new_value")
        description = st.text_area("Description", max_chars=2000, key="new_desc")
        tags = st.text_input("Tags (comma separated)", key="new_tags")
        expires = st.date_input("Expires on (optional)", value=None, key="new_expires")
        if not st.form_submit_button("Create"):
            return
        if not value:
            box.error("Enter a value.")
            return
        when = datetime.combine(expires, time(0), tzinfo=timezone.utc) if expires else None
        try:
            g.vault.store_secret(name=name, value=value, secret_type=stype, environment=env, description=description,
                                 rotation_interval_days=int(days) or None, tags=_tags(tags), expires_at=when, cas=0)
        except USER_ERRORS as exc:
            box.error(str(exc))
            return
        box.success(f"Created {env}/{name.strip().lower()}.")


def render(g: Guard) -> None:
    """The whole page; call inside ``g.context()``."""
    roles = set(g.session.roles)
    read_only = read_only_secrets(roles)
    admin = "admin" in roles
    st.title("Secrets")
    if read_only:
        st.caption("Auditor view: metadata only.")
    else:
        _create_form(g)
    selected = _browse(g, admin)
    if selected is not None:
        try:
            fresh = g.vault.get_metadata(secret_id=selected.id)
        except USER_ERRORS as exc:
            st.error(str(exc))
            return
        if fresh is not None:
            _details(g, fresh, read_only, admin)
