"""Shared set-up for the console's AppTest tests: a vault with one user per role."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from vault_core import AccessLevel, open_vault

ROOT = Path(__file__).resolve().parents[1]
CONSOLE = ROOT / "vault_core" / "console"
APP = str(CONSOLE / "router.py")  # the packaged router; page paths are relative to it ("pages/secrets.py")
PW = "password for tests"
CANARY = "canary-7f3a9c-value"
# user -> roles; rules below give reader READ and writer WRITE (only) in development
USERS = {"ann": ["admin"], "rita": [], "walt": [], "nora": [], "aud": ["auditor"], "opal": ["operator"]}


@pytest.fixture
def console(tmp_path, monkeypatch):
    """A vault at VAULT_PATH with users, rules and secrets; returns the owner's (non-strict) vault."""
    path = tmp_path / "vault"
    monkeypatch.setenv("VAULT_PATH", str(path))
    vault = open_vault(path, principal="owner")
    vault.bcrypt_rounds = 4
    for user, roles in USERS.items():
        vault.add_user(user, PW, roles, must_change_password=False)
    vault.grant("rita", [AccessLevel.READ], environment="development", subject_kind="user")
    vault.grant("walt", [AccessLevel.WRITE], environment="development", subject_kind="user")
    vault.grant("operator", ["read", "write", "rotate"], subject_kind="role")
    vault.store_secret("db_url", CANARY, environment="development", description="<img src=x onerror=alert(1)>",
                       tags=["<img src=x onerror=alert(1)>", "core"])
    vault.store_secret("prod_key", "prod-value-1", environment="production", description="production only")
    yield vault
    vault.storage.dispose()


def login(vault, user: str | None, page: str | None = None) -> AppTest:
    """An AppTest of the router (or of one page script) with ``user`` logged in (None = logged out).

    The token is a real session from ``verify_login``. AppTest cannot send the
    cookie a browser's handshake carries, so the token goes where a run without a
    browser looks for it (``auth.session_token``); it is validated like a cookie.
    """
    at = AppTest.from_file(str(CONSOLE / page) if page else APP, default_timeout=30)
    if user is not None:
        at.session_state["vault_session_token"] = vault.verify_login(user, PW, "10.9.8.7", "apptest")
    at.run()
    return at


def texts(at: AppTest) -> str:
    """Every visible text of the run, for 'shown / not shown' checks."""
    parts = []
    for kind in ("title", "subheader", "text", "markdown", "caption", "error", "info", "warning", "success", "code"):
        parts += [str(e.value) for e in getattr(at, kind)]
    for df in at.dataframe:
        parts.append(df.value.to_csv())
    return "\n".join(parts)


def button(at: AppTest, label: str):
    found = [b for b in at.button if b.label == label]
    assert found, f"no button {label!r}: {[b.label for b in at.button]}"
    return found[0]
