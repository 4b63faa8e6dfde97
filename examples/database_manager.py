"""The seed's ``DatabaseManager``: database paths come from the vault, read as the caller.

    manager = DatabaseManager()                 # paths from the vault (or the defaults)
    manager = DatabaseManager("/tmp/fw.db")     # an explicit path wins
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from vault_core import Environment, get_vault
from vault_core.context import current_context
from vault_core.environments import default_environment
from vault_core.streamlit import current_identity


def get_current_environment() -> Environment:
    """``VAULT_ENVIRONMENT`` (development when unset)."""
    return default_environment()


def current_user_id() -> str:
    """The console user of this Streamlit session, else the active context, else the process."""
    ctx = current_identity() or current_context()
    return ctx.user_id if ctx is not None else get_vault().process_identity


def request_ip() -> str | None:
    ctx = current_identity() or current_context()
    return ctx.ip_address if ctx is not None else None


class DatabaseManager:
    """Opens the framework and timer SQLite databases at paths kept in the vault."""

    def __init__(self, framework_db_path: str | None = None, timer_db_path: str | None = None):
        vault = get_vault()
        ctx = current_identity()
        roles = ctx.roles if ctx is not None else ()
        session = ctx.session_id if ctx is not None else None
        with vault.security_context(current_user_id(), request_ip(), roles=roles, session_id=session):
            if not framework_db_path:
                framework_db_path = vault.get_secret(
                    name="framework_db_path", environment=get_current_environment()) or "framework.db"
            if not timer_db_path:
                timer_db_path = vault.get_secret(
                    name="timer_db_path", environment=get_current_environment()) or "task_timer.db"
        self.framework_db_path = Path(framework_db_path)
        self.timer_db_path = Path(timer_db_path)

    def connect_framework(self) -> sqlite3.Connection:
        return sqlite3.connect(self.framework_db_path)

    def connect_timer(self) -> sqlite3.Connection:
        return sqlite3.connect(self.timer_db_path)

    def __repr__(self) -> str:
        return f"DatabaseManager(framework={self.framework_db_path.name!r}, timer={self.timer_db_path.name!r})"
