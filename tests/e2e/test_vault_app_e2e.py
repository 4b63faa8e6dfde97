"""In Chromium: an app served by ``vault_app`` keeps working through a password rotation and a
changed secret, with no restart (``streamlit run`` of an st.App, the real PostgreSQL server)."""

from __future__ import annotations

import secrets as pysecrets
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

from tests.browser import StreamlitServer, launch_chromium, wait_for_app_idle
from tests.pg_password import pg_app_role, pg_password_server  # noqa: F401  (fixtures)
from vault_core import open_vault

pytestmark = [pytest.mark.browser, pytest.mark.postgres]
ROOT = Path(__file__).resolve().parents[2]
ENV = "production"


def _texts(page) -> list[str]:
    return page.locator('[data-testid="stText"]').all_inner_texts()


def _rerun_until(page, wanted: list[str], attempts: int = 40) -> list[str]:
    seen: list[str] = []
    for _ in range(attempts):  # the feed copies within its interval; each click is a rerun
        page.get_by_role("button", name="Drop pooled connections").click()
        wait_for_app_idle(page)
        seen = _texts(page)
        if seen == wanted:
            break
        page.wait_for_timeout(250)
    return seen


def test_served_app_survives_rotation_and_follows_secrets(tmp_path, pg_app_role):
    vault = open_vault(tmp_path / "vault", principal="app-service")
    vault.store_secret("connections.db.url", pg_app_role.url(), environment=ENV)
    vault.store_secret("connections.db.password", pg_app_role.password, environment=ENV)
    vault.store_secret("app.greeting", "hello", environment=ENV)
    env = {"VAULT_PATH": str(tmp_path / "vault"), "VAULT_ENVIRONMENT": ENV, "VAULT_PRINCIPAL": "app-service",
           "PYTHONPATH": str(ROOT)}
    try:
        with StreamlitServer(ROOT / "tests" / "apps" / "served_app.py", env=env, cwd=ROOT) as server, \
                sync_playwright() as pw:
            browser = launch_chromium(pw)
            try:
                page = browser.new_page()
                page.goto(server.url)
                wait_for_app_idle(page)
                assert _texts(page) == ["greeting:hello", "pets:ada,bob,cyd"], (page.inner_text("body"), server.output())
                vault.rotate_secret(name="connections.db.password", environment=ENV,
                                    generator=lambda: pysecrets.token_urlsafe(24),
                                    apply=pg_app_role.set_password, test=pg_app_role.login)
                vault.update_secret("app.greeting", ENV, value="hello again")
                assert _rerun_until(page, ["greeting:hello again", "pets:ada,bob,cyd"]) == [
                    "greeting:hello again", "pets:ada,bob,cyd"]
                assert pg_app_role.password not in page.content()
            finally:
                browser.close()
            assert pg_app_role.password not in server.output()
    finally:
        vault.storage.dispose()
