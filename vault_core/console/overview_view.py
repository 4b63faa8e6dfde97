"""The environment overview (admins, auditors; on the Health page): names × environments.

Each cell says whether the secret is present, missing, deleted, expiring (within 30 days, or expired) or due
for rotation, and which other environments hold the *same value*. Values are never read for that: every
written version has an audit row carrying the keyed hash (HMAC under the vault's hash key) of the value it
stored, so two cells whose current versions were written with the same hash hold the same value. The hashes
stay on the server; the page shows only the environments' names.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pandas as pd
import streamlit as st

from ..environments import Environment
from ..models import SecretMetadata
from .auth import Guard

ENVS = [e.value for e in Environment]
MAX_SECRETS = 400  # rows read for one overview (name prefix narrows it)
AUDIT_DEPTH = 200  # audit rows per secret searched for the write of its current version


def _secrets(g: Guard, prefix: str | None) -> list[SecretMetadata]:
    out: list[SecretMetadata] = []
    for deleted in (False, True):
        cursor = None
        while len(out) < MAX_SECRETS:
            page = g.vault.list_secrets(prefix=prefix, limit=200, cursor=cursor, only_deleted=deleted)
            out += list(page)
            cursor = page.next_cursor
            if cursor is None:
                break
    return out[:MAX_SECRETS]


def value_hash(g: Guard, m: SecretMetadata) -> str | None:
    """The keyed hash recorded when the current version was written (None if not found)."""
    for row in g.vault.get_audit_log(secret_id=m.id, limit=AUDIT_DEPTH):
        if row["version"] == m.current_version and row.get("value_hash") and row["outcome"] == "allowed":
            return row["value_hash"]
    return None


def _state(m: SecretMetadata, now: datetime) -> str:
    if m.deleted_at is not None:
        return "deleted"
    parts = []
    if m.expires_at is not None and m.expires_at < now + timedelta(days=30):
        parts.append("expired" if m.expires_at < now else f"expires in {(m.expires_at - now).days} days")
    if m.next_rotation_at is not None and m.next_rotation_at <= now:
        parts.append("rotation due")
    return ", ".join(parts) or "present"


def overview(g: Guard, prefix: str | None = None) -> pd.DataFrame:
    """The grid: one row per name, one column per environment, a state (and shared values) per cell."""
    now = datetime.now(timezone.utc)
    metas = _secrets(g, prefix)
    cells: dict[str, dict[str, str]] = {}
    hashes: dict[str, dict[str, str]] = {}
    for m in sorted(metas, key=lambda m: m.deleted_at is None):  # a live secret wins over a deleted twin
        cells.setdefault(m.name, {})[m.environment] = _state(m, now)
        if m.deleted_at is None:
            digest = value_hash(g, m)
            if digest:
                hashes.setdefault(m.name, {})[m.environment] = digest
    for name, by_env in hashes.items():
        for env, digest in by_env.items():
            same = [e for e, d in by_env.items() if d == digest and e != env]
            if same:
                cells[name][env] += f"; same value as {', '.join(same)}"
    rows = [{"Name": name, **{env: cells[name].get(env, "missing") for env in ENVS}} for name in sorted(cells)]
    return pd.DataFrame(rows, columns=["Name", *ENVS])


def render(g: Guard) -> None:
    """The overview section, drawn only when asked for (it reads the audit log once per secret); call in
    ``g.context()``."""
    st.subheader("Environment overview", anchor=False)
    if not st.toggle("Show names × environments (present, missing, deleted, expiring, rotation due, same values)",
                     key="ov_show"):
        return
    prefix = st.text_input("Names starting with (optional)", key="ov_prefix", max_chars=256).strip() or None
    st.dataframe(overview(g, prefix), hide_index=True, width="stretch",
                 column_config={env: st.column_config.TextColumn(env.title()) for env in ENVS})
    st.caption("Same values are found by comparing keyed hashes recorded in the audit log; no value is read.")
