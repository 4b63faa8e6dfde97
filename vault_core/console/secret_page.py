"""One secret: details, its address, what the user may do, reveal/hide, edit, roll back, delete, restore, purge.

The open secret is named by the page's query parameters (``?env=production&name=db/password``), so it has
an address and survives every rerun; the page draws it from the vault on each run, so after any action the
details, versions and buttons are the new state. A successful action reruns the app with its message
(``act`` / ``feedback.done``); a refusal is shown where the button is, as a sentence.

Actions are drawn only as far as the user's levels on the secret allow (``effective_permissions``): an action
needing a level the user lacks is disabled, and the page says which level is missing.

A revealed value lives only in a local variable of the run that revealed it: never in session state or a
cache, so the next rerun (the Hide button, or any other) forgets it.
"""

from __future__ import annotations

from datetime import datetime, time, timezone
from typing import Any
from urllib.parse import urlencode, urlsplit

import pandas as pd
import streamlit as st

from ..errors import AccessDenied, Conflict, NotFound, ValidationError
from ..models import SecretMetadata
from . import feedback, fmt, grant_panel
from .auth import Guard
from .value_input import buttons, show_value, value_input
from .value_input import shape as value_shape

USER_ERRORS = (ValidationError, Conflict, NotFound, AccessDenied)
PENDING = "_secrets_pending_dialog"
RESTORED = "_secrets_restored"  # session state: the next run turns "Show deleted secrets" off
TABLE_GEN = "_secrets_table_gen"  # bumped when the listing changes under the table, which drops its selection
NEEDS = {"reveal": "read", "edit": "write", "rollback": "write", "delete": "admin"}


def open_secret(env: str, name: str) -> None:
    st.query_params["env"] = env
    st.query_params["name"] = name


def close_secret() -> None:
    for key in ("env", "name"):
        st.query_params.pop(key, None)
    st.session_state.pop("secret_pick", None)
    st.session_state[TABLE_GEN] = st.session_state.get(TABLE_GEN, 0) + 1


def opened() -> tuple[str, str] | None:
    env, name = st.query_params.get("env"), st.query_params.get("name")
    return (env, name) if env and name else None


def link(m: SecretMetadata) -> str:
    """This secret's address: the page's own URL with its environment and name."""
    base = (st.context.url or "").split("?", 1)[0]
    if base and not urlsplit(base).path:
        base += "/"
    return f"{base}?{urlencode({'env': m.environment, 'name': m.name})}"


def levels(g: Guard, env: str, name: str) -> set[str]:
    """The levels the logged-in user holds on env/name (ADMIN includes the others)."""
    try:
        return set(g.vault.effective_permissions(g.session.user, env, name)["levels"])
    except USER_ERRORS:
        return set()


def lacking(held: set[str], level: str, m: SecretMetadata) -> str | None:
    """The reason an action needing ``level`` is disabled, or None if the user holds it."""
    return None if level in held else f"You do not hold the {level} level on {m.environment}/{m.name}."


def act(action, then=None) -> None:
    """Run ``action`` (returns the message to show); on success run ``then`` and rerun the app with the message.

    On a refusal or bad input the error is shown here as a sentence and the page carries on.
    """
    try:
        message = action()
    except USER_ERRORS as exc:
        st.error(feedback.sentence(exc))
        return
    if then is not None:
        then()
    feedback.done(message)


def _fields(m: SecretMetadata) -> dict[str, str]:
    return {"Type": m.secret_type, "Current version": str(m.current_version),
            "Created": f"{fmt.when(m.created_at)} by {m.created_by}",
            "Updated": f"{fmt.when(m.updated_at)} by {m.updated_by}", "Expires": fmt.when(m.expires_at),
            "Rotation": fmt.days(m.rotation_interval_days), "Next rotation": fmt.when(m.next_rotation_at),
            "Last rotated": fmt.when(m.last_rotated_at), "Deleted": fmt.when(m.deleted_at), "Id": m.id}


def details(g: Guard, m: SecretMetadata, read_only: bool) -> None:
    """The open secret, and the actions the user may take on it."""
    st.subheader(f"{m.environment} / {m.name}", anchor=False)
    st.caption("Link to this secret (the copy button copies it)")
    st.code(link(m), language=None, wrap_lines=True)
    fields = _fields(m)
    st.dataframe(pd.DataFrame({"field": list(fields), "value": list(fields.values())}), hide_index=True,
                 column_config={"field": "Field", "value": "Value"})
    st.caption("Description")
    st.text(m.description)
    st.caption("Tags")
    st.text(", ".join(m.tags))
    versions = g.vault.list_versions(secret_id=m.id)
    st.caption("Versions")
    st.dataframe(pd.DataFrame([{"Version": v.version, "Label": v.state, "Created": v.created_at,
                                "Created by": v.created_by} for v in versions],
                              columns=["Version", "Label", "Created", "Created by"]),
                 hide_index=True, column_config={"Created": fmt.date_column("Created")})
    if read_only:
        st.info("Read-only: auditors see metadata, never values.")
        return
    held = levels(g, m.environment, m.name)
    if m.deleted_at is not None:
        _deleted_actions(g, m, held)
        return
    missing = sorted({lv for lv in NEEDS.values() if lv not in held})
    if missing:
        st.caption(f"You hold {', '.join(sorted(held)) or 'no level'} on this secret; actions needing "
                   f"{', '.join(missing)} are disabled.")
    numbers = [v.version for v in versions] or [m.current_version]
    _reveal(g, m, numbers, lacking(held, "read", m))
    _edit(g, m, lacking(held, "write", m))
    _rollback(g, m, [n for n in numbers if n != m.current_version], lacking(held, "read", m) or
              lacking(held, "write", m))
    if "admin" in held:
        if st.button("Delete…", key=f"delete_{m.id}", icon=":material/delete:"):
            st.session_state[PENDING] = ("delete", m.id)
        if st.session_state.get(PENDING) == ("delete", m.id):
            _confirm_delete(g, m)
        grant_panel.panel(g, m)
    else:
        st.button("Delete…", key=f"delete_{m.id}", icon=":material/delete:", disabled=True,
                  help=lacking(held, "admin", m))


def _reveal(g: Guard, m: SecretMetadata, numbers: list[int], reason: str | None) -> None:
    cols = st.columns([1, 1, 2])
    version = cols[0].selectbox("Version", numbers, key=f"rv_{m.id}", disabled=reason is not None)
    if cols[1].button("Reveal value", key=f"reveal_{m.id}", icon=":material/visibility:",
                      disabled=reason is not None, help=reason):
        try:
            value = g.vault.reveal_secret(secret_id=m.id, version=version)  # audited as 'reveal'
        except USER_ERRORS as exc:
            st.error(feedback.sentence(exc))
            return
        show_value(value)  # this run only: gone at the next rerun
        del value
        st.button("Hide value", key=f"hide_{m.id}", icon=":material/visibility_off:")  # any rerun hides it
    else:
        st.text("Value: ••••••••")


def _stamp(m: SecretMetadata) -> str:
    """Changes with every change of the secret, so the edit inputs start again from the stored state."""
    return f"{m.id}_{m.current_version}_{int(m.updated_at.timestamp() * 1e6)}"


def _save(g: Guard, m: SecretMetadata, prefix: str, value: str | bytes) -> None:
    s = st.session_state
    changes: dict[str, Any] = {"description": s[f"e_desc_{prefix}"], "tags": tags(s[f"e_tags_{prefix}"]),
                               "rotation_interval_days": int(s[f"e_days_{prefix}"]) or None}
    if value:
        changes["value"] = value
    act(lambda: f"Saved {m.environment}/{m.name}: version "
                f"{g.vault.update_secret(secret_id=m.id, cas=m.current_version, **changes)}.")


def _edit(g: Guard, m: SecretMetadata, reason: str | None) -> None:
    prefix = _stamp(m)
    with st.expander("Edit"):
        if reason:
            st.caption(reason)
        shape = value_shape(f"edit_{prefix}")  # outside the form: a new shape redraws it at once
        with st.form(f"edit_form_{prefix}", border=False):  # Save always carries what was typed
            value, problem, note = value_input(f"edit_{prefix}", m.secret_type, shape,
                                               "New value (leave empty to keep the current one)")
            st.text_area("Description", value=m.description, max_chars=2000, key=f"e_desc_{prefix}")
            st.text_input("Tags (comma separated)", value=", ".join(m.tags), key=f"e_tags_{prefix}")
            st.number_input("Rotate every N days (0 = never)", 0, 3650, m.rotation_interval_days or 0,
                            key=f"e_days_{prefix}")
            pressed = buttons(f"edit_{prefix}", m.secret_type, shape, "Save", reason)
        if note:
            st.info(note)
        if problem:
            st.error(problem)
        elif pressed:
            _save(g, m, prefix, value)


def _roll_back(g: Guard, m: SecretMetadata, target: int) -> None:
    def action() -> str:
        value = g.vault.get_secret(secret_id=m.id, version=target)
        if value is None:
            raise NotFound(f"version {target} no longer exists")
        new = g.vault.update_secret(secret_id=m.id, value=value, cas=m.current_version)
        return f"Version {target} of {m.environment}/{m.name} is the current value again (as version {new})."

    act(action)


def _rollback(g: Guard, m: SecretMetadata, older: list[int], reason: str | None) -> None:
    if not older:
        return
    cols = st.columns([1, 3])
    target = cols[0].selectbox("Roll back to", older, key=f"rb_{m.id}", disabled=reason is not None)
    if cols[1].button(f"Roll back to version {target}", key=f"rbgo_{m.id}", disabled=reason is not None,
                      help=reason):
        _roll_back(g, m, target)


def _close_dialog() -> None:
    st.session_state.pop(PENDING, None)


def _confirmed(g: Guard, label: str, action, message: str) -> None:
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
                st.error(feedback.sentence(exc))
                return
        _close_dialog()
        close_secret()
        feedback.done(message)


@st.dialog("Delete secret", on_dismiss=_close_dialog)
def _confirm_delete(g: Guard, m: SecretMetadata) -> None:
    st.text(f"Delete {m.environment}/{m.name}? An admin can restore it.")
    _confirmed(g, "Delete", lambda: g.vault.delete_secret(secret_id=m.id),
               f"Deleted {m.environment}/{m.name}. An admin can restore it.")


@st.dialog("Purge secret", on_dismiss=_close_dialog)
def _confirm_purge(g: Guard, m: SecretMetadata) -> None:
    st.text(f"Purging destroys {m.environment}/{m.name} and every version. Type its name to confirm.")
    typed = st.text_input("Name", key="purge_name")
    if typed == m.name:
        _confirmed(g, "Purge", lambda: g.vault.purge_secret(secret_id=m.id),
                   f"Purged {m.environment}/{m.name} and every version.")


def _restore(g: Guard, m: SecretMetadata) -> None:
    def action() -> str:
        g.vault.restore_secret(secret_id=m.id)
        return f"Restored {m.environment}/{m.name}."

    def then() -> None:
        st.session_state[RESTORED] = True  # the next run shows the live listing, where it is again

    act(action, then)


def _deleted_actions(g: Guard, m: SecretMetadata, held: set[str]) -> None:
    reason = lacking(held, "admin", m)
    st.warning(f"Deleted {fmt.when(m.deleted_at)}.")
    cols = st.columns(2)
    if cols[0].button("Restore", key=f"restore_{m.id}", disabled=reason is not None, help=reason):
        _restore(g, m)
    if cols[1].button("Purge…", key=f"purge_{m.id}", disabled=reason is not None, help=reason):
        st.session_state[PENDING] = ("purge", m.id)
    if st.session_state.get(PENDING) == ("purge", m.id):
        _confirm_purge(g, m)


def tags(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def expiry(d) -> datetime | None:
    return datetime.combine(d, time(0), tzinfo=timezone.utc) if d else None
