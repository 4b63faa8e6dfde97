"""The console in Chromium against `streamlit run` (issue 11): login, reveal, XSS, logout, lockout, headers."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright

from tests.browser import StreamlitServer, launch_chromium, wait_for_app_idle
from tests.e2e.helpers import PW, choose, create, log_in, open_app
from vault_core import AccessLevel, open_vault

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
CANARY = "canary-e2e-51d0c2"
XSS = "<img src=x onerror=alert(1)>"
USERS = ["ann", "bea", "cid", "dot", "eve", "fay"]


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    path = tmp_path_factory.mktemp("console") / "vault"
    vault = open_vault(path, principal="owner")
    vault.bcrypt_rounds = 4
    for user in USERS:
        vault.add_user(user, PW, ["admin"], must_change_password=False)
    vault.grant("ann", [AccessLevel.READ], subject_kind="user")
    vault.store_secret("xss_holder", "harmless", environment="development", description=XSS, tags=[XSS])
    vault.store_secret("hidden_before_login", "x", environment="production")
    # FORWARDED_ALLOW_IPS="" as `vault-console serve` sets it (uvicorn must not rewrite the peer)
    with StreamlitServer(ROOT / "streamlit_app.py", env={"VAULT_PATH": str(path), "FORWARDED_ALLOW_IPS": ""}, cwd=ROOT) as server, \
            sync_playwright() as pw:
        browser = launch_chromium(pw)
        try:
            yield vault, server, browser
        finally:
            browser.close()
            vault.storage.dispose()


def test_nothing_is_reachable_by_url_before_login(env):
    vault, server, browser = env
    context = browser.new_context()
    for path in ("", "/secrets", "/audit", "/users", "/account", "/secrets?x=1", "/login"):
        page = open_app(context, server.url, path)
        expect(page.get_by_role("button", name="Log in")).to_be_visible()
        html = page.content()
        assert "hidden_before_login" not in html and "xss_holder" not in html
        page.close()
    page = context.new_page()  # nested paths do not even load the app's scripts
    page.goto(server.url + "/pages/secrets")
    page.wait_for_timeout(1500)
    assert "hidden_before_login" not in page.content()
    context.close()


def test_login_create_reveal_and_audit(env):
    vault, server, browser = env
    context = browser.new_context()
    page = open_app(context, server.url)
    log_in(page, "ann")
    expect(page.get_by_role("heading", name="Secrets")).to_be_visible()
    create(page, "e2e_canary", CANARY)
    expect(page.get_by_text("Created development/e2e_canary.")).to_be_visible()
    assert CANARY not in page.content()
    choose(page, "Secret", "development/e2e_canary")
    assert CANARY not in page.content()
    page.get_by_role("button", name="Reveal value").click()
    wait_for_app_idle(page)
    expect(page.get_by_text(CANARY)).to_be_visible()
    assert CANARY in page.content()
    rows = vault.get_audit_log(operation="reveal", principal="ann")
    assert rows and rows[0]["outcome"] == "allowed" and rows[0]["secret_name"] == "e2e_canary"
    page.get_by_label("Tag", exact=True).fill("rerun")  # any rerun forgets the value
    page.keyboard.press("Enter")
    wait_for_app_idle(page)
    assert CANARY not in page.content()
    context.close()


def test_hostile_text_renders_as_text_and_hostile_name_is_refused(env):
    vault, server, browser = env
    context = browser.new_context()
    page = open_app(context, server.url)
    alerts = []
    page.on("dialog", lambda d: (alerts.append(d.message), d.dismiss()))
    log_in(page, "bea")
    choose(page, "Secret", "development/xss_holder")
    shown = page.locator('[data-testid="stText"]').filter(has_text=XSS)
    expect(shown.first).to_be_visible()  # the description and the tags, as literal text
    assert shown.count() == 2
    assert page.locator('img[src="x"]').count() == 0
    create(page, XSS, "value-never-echoed")
    expect(page.get_by_text("secret name may hold only letters", exact=False)).to_be_visible(timeout=15_000)
    assert "value-never-echoed" not in page.locator('[data-testid="stAlert"]').all_inner_texts().__str__()
    assert alerts == []
    context.close()


def test_cookie_logs_in_until_logout(env):
    vault, server, browser = env
    context = browser.new_context()
    page = open_app(context, server.url)
    log_in(page, "cid")
    expect(page.get_by_role("heading", name="Secrets")).to_be_visible()
    page.wait_for_function("() => document.cookie.includes('vault_console_session')")
    saved = context.storage_state()
    again = browser.new_context(storage_state=saved)  # the cookie alone logs in ...
    expect(open_app(again, server.url).get_by_role("heading", name="Secrets")).to_be_visible()
    again.close()
    page.get_by_role("button", name="Log out").click()
    wait_for_app_idle(page)
    expect(page.get_by_role("button", name="Log in")).to_be_visible()
    replay = browser.new_context(storage_state=saved)  # ... and not after logout
    page2 = open_app(replay, server.url)
    expect(page2.get_by_role("button", name="Log in")).to_be_visible()
    assert "xss_holder" not in page2.content()
    replay.close()
    context.close()


def test_five_failures_lock_in_another_browser_context(env):
    vault, server, browser = env
    first = browser.new_context()
    page = open_app(first, server.url)
    for i in range(5):
        log_in(page, "dot", f"wrong password {i}")
        expect(page.get_by_text("wrong user name or password")).to_be_visible()
    second = browser.new_context()
    page2 = open_app(second, server.url)
    log_in(page2, "dot")  # the right password, elsewhere
    expect(page2.get_by_text("this account is locked", exact=False)).to_be_visible()
    expect(page2.get_by_role("heading", name="Secrets")).to_have_count(0)
    first.close()
    second.close()


def test_forged_forwarded_for_is_recorded_as_claimed(env):
    vault, server, browser = env
    context = browser.new_context(extra_http_headers={"X-Forwarded-For": "6.6.6.6"},
                                  user_agent="UA-" + "u" * 4_000)  # the server itself refuses ~10 kB headers
    page = open_app(context, server.url)
    log_in(page, "eve")
    expect(page.get_by_role("heading", name="Secrets")).to_be_visible()
    row = vault.get_audit_log(operation="login", principal="eve")[0]
    assert row["forwarded_for"] == "6.6.6.6" and not row["forwarded_trusted"]
    assert row["client_ip"] == "127.0.0.1"
    assert row["user_agent"].startswith("UA-uuu") and len(row["user_agent"]) == 512
    context.close()
