"""The console in Chromium against `vault-console serve` (issues 11, 14): login, reveal, XSS, logout,
lockout, forwarded headers, and the attacks of issue 14 from a page on another local port."""

from __future__ import annotations

import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from functools import partial

import pytest
from playwright.sync_api import expect, sync_playwright

from tests.browser import console_server, launch_chromium, wait_for_app_idle
from tests.e2e.helpers import PW, choose, create, log_in, open_app
from vault_core import AccessLevel, open_vault

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SESSION_COOKIE = "__Host-vault_session"  # 127.0.0.1 is a secure context: Secure + the __Host- prefix
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
    vault.store_secret("prod_target", "prod-value-e2e-77", environment="production")
    with console_server(path) as server, sync_playwright() as pw:
        browser = launch_chromium(pw)
        try:
            yield vault, server, browser
        finally:
            browser.close()
            vault.storage.dispose()


ATTACK = """<!doctype html><title>attack</title><script>
window.results = {};
for (const host of ["127.0.0.1", "localhost"]) {
  window.results[host] = "pending";
  const ws = new WebSocket("ws://" + host + ":PORT/_stcore/stream");
  ws.onopen = () => { window.results[host] = "open"; };
  ws.onmessage = () => { window.results[host] = "message"; };
  ws.onclose = () => { if (window.results[host] === "pending") window.results[host] = "refused"; };
}
window.stolen = document.cookie;
</script>"""
FRAME = '<!doctype html><title>frame</title><iframe id="f" src="URL/" width="800" height="600"></iframe>'


@pytest.fixture(scope="module")
def attacker(env, tmp_path_factory):
    """Another local port serving hostile pages (what any local process or dev server could do)."""
    _, server, _ = env
    root = tmp_path_factory.mktemp("attacker")
    (root / "attack.html").write_text(ATTACK.replace("PORT", str(server.port)))
    (root / "frame.html").write_text(FRAME.replace("URL", server.url))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(SimpleHTTPRequestHandler, directory=str(root)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


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


def test_cookie_is_httponly_survives_a_reload_and_logout_removes_it_for_good(env):
    vault, server, browser = env
    context = browser.new_context()
    page = open_app(context, server.url)
    log_in(page, "cid")
    expect(page.get_by_role("heading", name="Secrets")).to_be_visible()
    assert "vault_session" not in page.evaluate("document.cookie")
    cookie = next(c for c in context.cookies() if c["name"] == SESSION_COOKIE)
    assert (cookie["httpOnly"], cookie["secure"], cookie["sameSite"], cookie["path"]) == (True, True, "Strict", "/")
    page.reload()
    wait_for_app_idle(page)
    expect(page.get_by_role("heading", name="Secrets")).to_be_visible()
    saved = context.storage_state()
    page.get_by_role("button", name="Log out").click()
    page.wait_for_load_state()
    expect(page.get_by_text("You are logged out.")).to_be_visible()
    assert not [c for c in context.cookies() if c["name"] == SESSION_COOKIE]
    assert vault.get_audit_log(operation="logout", principal="cid")[0]["outcome"] == "allowed"
    replay = browser.new_context(storage_state=saved)  # the old cookie, replayed
    page2 = open_app(replay, server.url)
    expect(page2.get_by_role("button", name="Log in")).to_be_visible()
    assert "xss_holder" not in page2.content()
    replay.close()
    context.close()


def test_a_page_on_another_port_cannot_drive_the_console(env, attacker):
    vault, server, browser = env
    context = browser.new_context()
    page = open_app(context, server.url)
    log_in(page, "fay")  # the admin is logged in in this browser ...
    expect(page.get_by_role("heading", name="Secrets")).to_be_visible()
    reveals = len(vault.get_audit_log(operation="reveal", limit=1000))
    evil = context.new_page()  # ... and opens a page served from another local port
    evil.goto(attacker + "/attack.html")
    evil.wait_for_function("() => Object.values(window.results).every(r => r !== 'pending')")
    assert evil.evaluate("window.results") == {"127.0.0.1": "refused", "localhost": "refused"}
    assert "vault_session" not in evil.evaluate("window.stolen")
    assert len(vault.get_audit_log(operation="reveal", limit=1000)) == reveals
    context.close()


def test_a_framing_page_gets_a_blank_frame(env, attacker):
    _, server, browser = env
    context = browser.new_context()
    log_in(open_app(context, server.url), "fay")
    page = context.new_page()
    page.goto(attacker + "/frame.html")
    page.wait_for_timeout(2000)
    frame = page.frame_locator("#f")
    expect(frame.locator('[data-testid="stApp"]')).to_have_count(0)
    expect(frame.get_by_role("button")).to_have_count(0)
    context.close()


def test_the_export_url_without_the_cookie_is_refused(env):
    _, server, browser = env
    stranger = browser.new_context()
    assert stranger.request.get(server.url + "/export/audit.csv").status == 401
    admin = browser.new_context()
    log_in(open_app(admin, server.url), "fay")
    got = admin.request.get(server.url + "/export/audit.csv")
    assert got.status == 200 and got.headers["cache-control"] == "no-store" and "principal" in got.text()
    stranger.close()
    admin.close()


CSP_WATCH = """window.__csp = [];
document.addEventListener('securitypolicyviolation',
  e => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));"""


def test_every_page_renders_without_a_csp_violation_or_a_request_elsewhere(env):
    _, server, browser = env
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.add_init_script(CSP_WATCH)
    elsewhere, violations = [], []
    context.on("request", lambda r: None if r.url.startswith((server.url, "data:", "blob:"))
               else elsewhere.append(r.url))
    page = open_app(context, server.url)
    violations += page.evaluate("window.__csp")
    log_in(page, "ann")
    for title in ("Secrets", "Rotation", "Access", "Users", "Audit", "Health", "Account"):
        page.get_by_role("link", name=title, exact=True).click()
        wait_for_app_idle(page, settle_ms=800)
        expect(page.get_by_role("heading", name=title, exact=True)).to_be_visible()
        violations += page.evaluate("window.__csp")
    page.goto(server.url + "/password")
    violations += page.evaluate("window.__csp")
    print(f"pages visited: 10, CSP violations: {len(violations)}, requests to other hosts: {len(elsewhere)}")
    assert violations == [] and elsewhere == [], (violations, elsewhere)
    context.close()


def test_failed_logins_throttle_their_address_in_another_browser_context(env):
    vault, server, browser = env
    first = browser.new_context()
    page = open_app(first, server.url)
    for i in range(5):  # a typo costs nothing; from the second failure on, the address waits 1, 2, 4 s
        if i == 2:
            log_in(page, "dot", "too soon")
            expect(page.get_by_text("too soon after a failed login", exact=False)).to_be_visible()
        if i >= 2:
            page.wait_for_timeout(1000 * 2 ** (i - 2) + 300)
        log_in(page, "dot", f"wrong password {i}")
        expect(page.get_by_text("wrong user name or password")).to_be_visible()
    second = browser.new_context()
    page2 = open_app(second, server.url)
    log_in(page2, "dot")  # the right password, from the same address: refused without being checked
    expect(page2.get_by_text("5 failed logins from this address", exact=False)).to_be_visible()
    expect(page2.get_by_text("try again after", exact=False)).to_be_visible()
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
