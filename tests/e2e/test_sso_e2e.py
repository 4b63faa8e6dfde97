"""Single sign-on in Chromium (issue 22) against a real OIDC provider running in the test
(``oidc-provider-mock``): Streamlit's ``st.login`` flow, then the vault's own session."""

from __future__ import annotations

from urllib.parse import urlparse

import pytest
from oidc_provider_mock import User, run_server_in_thread
from playwright.sync_api import expect, sync_playwright

from tests.browser import console_server, launch_chromium, wait_for_app_idle
from tests.e2e.helpers import PW, log_in, settle
from vault_core import open_vault
from vault_core.console.sso import COOKIE_SECRET, client_secret_name

pytestmark = [pytest.mark.browser, pytest.mark.slow]
CLIENT_SECRET = "canary-sso-client-secret-0f3c"


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    users = [User(sub="sub-ada", claims={"email": "ada@example.com", "groups": ["vault-admins"]}),
             User(sub="sub-rex", claims={"email": "rex@example.com", "groups": ["vault-readers"]}),
             User(sub="sub-eve", claims={"email": "eve@example.com", "groups": ["strangers"]})]
    path = tmp_path_factory.mktemp("sso") / "vault"
    vault = open_vault(path, principal="owner")
    vault.bcrypt_rounds = 4
    vault.add_user("ada", PW, ["viewer"], must_change_password=False)
    vault.add_user("rex", PW, ["viewer"], must_change_password=False)
    with run_server_in_thread(user_claims=users) as idp:
        issuer = f"http://localhost:{idp.server_port}"
        vault.set_sso_provider("corp", issuer=issuer, client_id="vault-console",
                               server_metadata_url=issuer + "/.well-known/openid-configuration")
        vault.map_sso_group("corp", "vault-admins", ["admin"])
        vault.map_sso_group("corp", "vault-readers", ["viewer"])
        for sub, user in (("sub-ada", "ada"), ("sub-rex", "rex"), ("sub-eve", "rex")):
            vault.link_sso_identity("corp", sub, user)
        vault.store_secret(name=COOKIE_SECRET, value="canary-cookie-secret-" + "x" * 32, environment="production")
        vault.store_secret(name=client_secret_name("corp"), value=CLIENT_SECRET, environment="production")
        with console_server(path) as server, sync_playwright() as pw:
            browser = launch_chromium(pw)
            try:
                yield vault, server.url.replace("127.0.0.1", "localhost"), browser, idp
            finally:
                browser.close()
                vault.storage.dispose()


def sso_log_in(browser, url: str, sub: str):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.goto(url + "/login")
    page.get_by_role("link", name="Sign in with corp").click()
    page.wait_for_load_state()
    page.locator("input[name=sub]").fill(sub)
    page.get_by_role("button", name="Authorize").click()
    page.wait_for_load_state()
    settle(page)
    return context, page


def nav_links(page) -> set[str]:
    return {t.split("\n")[-1].strip() for t in page.locator("[data-testid=stSidebarNav] a").all_inner_texts()}


def test_sso_lands_on_the_pages_the_mapped_roles_allow(env):
    vault, url, browser, _ = env
    context, page = sso_log_in(browser, url, "sub-ada")
    wait_for_app_idle(page, settle_ms=800)
    expect(page.get_by_text("Signed in as")).to_be_visible()
    assert "Users" in nav_links(page)  # admin, from the group mapping (ada's own role was viewer)
    rows = vault.get_audit_log(operation="login", limit=5)
    assert rows[0]["user_id"] == "ada" and "subject=sub-ada" in rows[0]["reason"]
    assert CLIENT_SECRET not in page.content()
    assert not any(c["name"].startswith("_streamlit_user") for c in context.cookies())
    context.close()


def test_an_unmapped_group_lands_nowhere(env):
    vault, url, browser, _ = env
    context, page = sso_log_in(browser, url, "sub-eve")
    assert urlparse(page.url).path == "/login"
    expect(page.get_by_role("alert")).to_contain_text("no group of the token is mapped")
    page.goto(url + "/")
    settle(page)
    assert urlparse(page.url).path == "/login"
    assert "subject=sub-eve" in vault.get_audit_log(operation="sso_login", limit=5)[0]["reason"]
    context.close()


def test_a_saved_streamlit_cookie_replayed_after_logout_reaches_no_page(env):
    vault, url, browser, _ = env
    context = browser.new_context()
    saved: list[dict] = []

    def keep(response) -> None:  # the callback's Set-Cookie, as an attacker who copied it would have it
        if "/oauth2callback" in response.url:
            for h in response.headers_array():
                if h["name"].lower() == "set-cookie" and h["value"].startswith("_streamlit_user"):
                    name, _, rest = h["value"].partition("=")
                    saved.append({"name": name, "value": rest.split(";")[0], "url": url})

    context.on("response", keep)
    page = context.new_page()
    page.goto(url + "/login")
    page.get_by_role("link", name="Sign in with corp").click()
    page.locator("input[name=sub]").fill("sub-rex")
    page.get_by_role("button", name="Authorize").click()
    page.wait_for_url(url + "/**")
    settle(page)
    page.wait_for_timeout(500)
    wait_for_app_idle(page, settle_ms=800)
    expect(page.get_by_text("Signed in as")).to_be_visible()
    assert saved, "the callback set Streamlit's cookie"
    page.get_by_role("button", name="Log out").click()
    settle(page)
    for path in ("/", "/secrets", "/users"):
        context.add_cookies(saved)  # the refusal deletes it: the attacker puts it back every time
        page.goto(url + path)
        settle(page)
        assert urlparse(page.url).path == "/login"
        expect(page.get_by_role("alert")).to_contain_text("sign in with the provider again")
    refused = vault.get_audit_log(operation="sso_login", outcome="denied", limit=3)
    assert all("subject=sub-rex" in r["reason"] for r in refused)
    context.close()


def test_removing_the_group_mapping_ends_the_session_at_the_next_run(env):
    vault, url, browser, _ = env
    vault.map_sso_group("corp", "temp", ["viewer"])
    context, page = sso_log_in(browser, url, "sub-rex")
    wait_for_app_idle(page, settle_ms=800)
    expect(page.get_by_text("Signed in as")).to_be_visible()
    vault.unmap_sso_group("corp", "vault-readers")
    try:
        page.reload()
        settle(page)
        assert urlparse(page.url).path == "/login"
    finally:
        vault.map_sso_group("corp", "vault-readers", ["viewer"])
    context.close()


def test_the_provider_down_gives_a_clear_message_and_password_login_works(env):
    vault, url, browser, idp = env
    vault.set_sso_provider("corp", issuer=vault.sso.provider("corp")["issuer"], client_id="vault-console",
                           server_metadata_url="http://localhost:9/.well-known/openid-configuration")
    context = browser.new_context()
    page = context.new_page()
    page.goto(url + "/login")
    page.get_by_role("link", name="Sign in with corp").click()
    page.wait_for_load_state()
    expect(page.get_by_role("alert")).to_contain_text("cannot be reached")
    assert vault.get_audit_log(operation="sso_login", limit=1)[0]["outcome"] == "failed"
    log_in(page, "rex")
    wait_for_app_idle(page, settle_ms=800)
    expect(page.get_by_text("Signed in as")).to_be_visible()
    context.close()
