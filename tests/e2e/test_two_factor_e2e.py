"""Two-factor in Chromium (issue 17): enrolment on the Account page shows a QR code (inside the CSP),
and the next login asks for the code and succeeds with one made by pyotp from the shown secret."""

from __future__ import annotations

import re
import time

import pyotp
import pytest
from playwright.sync_api import expect, sync_playwright

from tests.browser import console_server, launch_chromium, wait_for_app_idle
from tests.e2e.helpers import PW, log_in, open_app, settle
from tests.e2e.test_console_e2e import CSP_WATCH
from vault_core import open_vault

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    path = tmp_path_factory.mktemp("two-factor") / "vault"
    vault = open_vault(path, principal="owner")
    vault.bcrypt_rounds = 4
    vault.add_user("gus", PW, ["operator"], must_change_password=False)
    with console_server(path) as server, sync_playwright() as pw:
        browser = launch_chromium(pw)
        try:
            yield vault, server, browser
        finally:
            browser.close()
            vault.storage.dispose()


def test_enrolment_shows_a_qr_and_the_next_login_asks_for_the_code(env):
    vault, server, browser = env
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.add_init_script(CSP_WATCH)
    page = open_app(context, server.url)
    log_in(page, "gus")
    page.get_by_role("link", name="Account", exact=True).click()
    wait_for_app_idle(page, settle_ms=800)
    page.get_by_role("button", name="Set up two-factor sign-in").click()
    wait_for_app_idle(page, settle_ms=800)
    qr = page.locator("img#two-factor-qr")
    expect(qr).to_be_visible()
    assert qr.evaluate("img => img.complete && img.naturalWidth > 0")  # the data: SVG really drew
    shown = page.get_by_text(re.compile(r"^([A-Z2-7]{4} ){7}[A-Z2-7]{4}$"))
    secret = shown.inner_text().replace(" ", "")
    page.get_by_label("First code from the app").fill(pyotp.TOTP(secret).now())
    page.get_by_role("button", name="Confirm and turn on").click()
    wait_for_app_idle(page, settle_ms=800)
    expect(page.get_by_text("Two-factor sign-in is on.", exact=False)).to_be_visible()
    assert page.evaluate("window.__csp") == []
    context.close()

    second = browser.new_context()
    page = open_app(second, server.url)
    log_in(page, "gus")
    code_field = page.get_by_label("Code from your authenticator app, or a recovery code")
    expect(code_field).to_be_visible()
    assert not any(c["name"].endswith("vault_session") for c in second.cookies())  # not before the code
    code_field.fill(pyotp.TOTP(secret).at(time.time() + 30))  # the confirmation spent the current step
    page.get_by_role("button", name="Verify").click()
    settle(page)
    expect(page.get_by_role("heading", name="Secrets")).to_be_visible()
    assert secret not in page.content()
    assert any(c["name"].endswith("vault_session") for c in second.cookies())
    second.close()
