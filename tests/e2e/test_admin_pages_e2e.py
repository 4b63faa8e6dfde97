"""Access, Rotation, Audit and Health pages in Chromium against `streamlit run streamlit_app.py` (issue 6).

That is the checkout's entry point: Streamlit finds its st.App and serves the same app as
`vault-console serve` (routes, middleware, lifespan), so this file also proves that path works.

One server and one browser for the module; each test opens its own context
(its own cookie jar, so its own login). The tamper test breaks the audit
chain, so it runs last.
"""

from __future__ import annotations

import csv
import io
import re
import sqlite3
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import expect, sync_playwright

from tests.browser import StreamlitServer, launch_chromium, wait_for_app_idle
from tests.e2e.helpers import PW, choose, log_in, open_app, pick_in_cell
from vault_core import open_vault
from vault_core.console.demo import seed_demo
from vault_core.errors import AccessDenied

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
SHARED = "shared-token-value-6b1e"
FORMULAS = ["=HYPERLINK(\"http://x\")", "+SUM(1,1)", "-2+3", "@cmd"]
CELLS = '[data-testid="stDataFrame"] [role="gridcell"]'


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    path = tmp_path_factory.mktemp("admin-console") / "vault"
    vault = open_vault(path, principal="owner")
    vault.bcrypt_rounds = 4
    seed_demo(vault)  # the demo data of `vault-console serve --demo`: secrets, users, rules, history
    vault.add_user("ann", PW, ["admin"], must_change_password=False)
    vault.add_user("uma", PW, [], must_change_password=False)
    vault.store_secret("shared/token", SHARED, environment="development")
    for agent in FORMULAS:  # uma's audit rows carry cells a spreadsheet would run
        with vault.security_context("uma", "10.1.2.3", agent), pytest.raises(AccessDenied):
            vault.get_secret("shared/token", "development")
    with served(vault, path, "ann", {"width": 1400, "height": 1000}) as running:
        yield running


@contextmanager
def served(vault, path, user: str, viewport: dict):
    """`streamlit run` on the vault at ``path`` and a Chromium page logged in as ``user``:
    yields (vault, server, browser, page)."""
    with StreamlitServer(ROOT / "streamlit_app.py", env={"VAULT_PATH": str(path), "FORWARDED_ALLOW_IPS": ""},
                         cwd=ROOT) as server, sync_playwright() as pw:
        browser = launch_chromium(pw)
        context = browser.new_context(viewport=viewport)
        page = open_app(context, server.url)
        log_in(page, user)
        try:
            yield vault, server, browser, page
        finally:
            context.close()
            browser.close()
            vault.storage.dispose()


def go(page, title: str) -> None:
    """Open a page from the sidebar menu and wait for its heading (a click during a rerun may be lost)."""
    heading = page.get_by_role("heading", name=title, exact=True)
    for _ in range(3):
        wait_for_app_idle(page, settle_ms=300)
        page.get_by_role("link", name=title, exact=True).click()
        wait_for_app_idle(page, settle_ms=300)
        try:
            expect(heading).to_be_visible(timeout=5000)
            return
        except AssertionError:
            continue
    expect(heading).to_be_visible()


def cells(page) -> list[str]:
    """The text of every rendered table cell on the page (the grids' accessible cells)."""
    return [c.strip() for c in page.locator(CELLS).all_inner_texts()]


def edit_cell(page, grid, row: int, col: int, text: str) -> None:
    """Type ``text`` into cell (row, col) of a data editor: select it, Enter opens the editor, Enter commits."""
    box = grid.bounding_box()
    x, y = box["x"] + 45, box["y"] + 35 + row * 35 + 17  # the row's first cell (header 35 px)
    editor = page.locator("textarea.gdg-input")
    for _ in range(3):  # a grid redrawn by a rerun can drop the first click (the pointer must come in first)
        page.mouse.move(x, y)
        page.wait_for_timeout(200)
        page.mouse.click(x, y)
        for _ in range(col):
            page.keyboard.press("ArrowRight")
        page.keyboard.press("Enter")
        try:
            editor.wait_for(state="visible", timeout=2000)
            break
        except PlaywrightTimeout:
            page.keyboard.press("Escape")
    expect(editor).to_be_visible()
    editor.fill(text)
    page.keyboard.press("Enter")
    wait_for_app_idle(page, settle_ms=300)


def test_admin_grants_read_in_the_rule_editor_and_the_user_reveals(env):
    vault, server, browser, page = env
    go(page, "Access")
    grid = page.locator('[data-testid="stDataFrame"]').nth(1)  # the editor (the first table: built-in rules)
    row = len([r for r in vault.list_rules() if r.id > 0])
    grid.hover()
    page.get_by_role("button", name="Add row").click()
    edit_cell(page, grid, row, 2, "uma")  # columns: id, subject kind, subject, environment, pattern, levels
    edit_cell(page, grid, row, 4, "shared/token")
    pick_in_cell(page, grid, row, 5, ["read"])  # levels: a multiselect cell
    page.get_by_role("button", name="Review changes").click()
    wait_for_app_idle(page)
    expect(page.get_by_text("+ allow read to any uma on */shared/token")).to_be_visible()
    page.get_by_role("button", name="Apply 1 change(s)").click()
    wait_for_app_idle(page)
    expect(page.get_by_text("Applied 1 change(s).")).to_be_visible()
    expect(page.get_by_role("button", name=re.compile("^Apply"))).to_have_count(0)  # the plan is gone
    expect(page.locator(CELLS).filter(has_text=re.compile("^shared/token$"))).to_have_count(1)
    rules = vault.list_rules(subject="uma")
    assert [(r.pattern, sorted(lv.value for lv in r.levels)) for r in rules] == [("shared/token", ["read"])]
    assert vault.get_audit_log(operation="rule_add", principal="ann")[0]["outcome"] == "allowed"

    other = browser.new_context()  # uma, in her own browser
    try:
        upage = open_app(other, server.url)
        log_in(upage, "uma")
        expect(upage.get_by_role("heading", name="Secrets")).to_be_visible()
        choose(upage, "Secret", "development/shared/token")
        expect(upage.get_by_role("heading", name="development / shared/token")).to_be_visible()
        assert SHARED not in upage.content()
        upage.get_by_role("button", name="Reveal value").click()
        wait_for_app_idle(upage)
        expect(upage.get_by_text(SHARED)).to_be_visible()
    finally:
        other.close()
    row = vault.get_audit_log(operation="reveal", principal="uma")[0]
    assert (row["secret_name"], row["outcome"]) == ("shared/token", "allowed")


def test_rotation_page_rotates_and_the_new_version_and_audit_rows_show(env):
    vault, _, _, page = env
    before = vault.get_metadata("api_key_stripe", "development").current_version
    go(page, "Rotation")
    choose(page, "Secrets to rotate now", "development/api_key_stripe")
    page.keyboard.press("Escape")
    page.get_by_role("button", name="Rotate now…").click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_text("generator 'token'")).to_be_visible()  # it says what it will do, first
    expect(dialog.get_by_text("no apply hook is registered", exact=False)).to_be_visible()
    assert vault.get_metadata("api_key_stripe", "development").current_version == before
    dialog.get_by_role("button", name="Rotate 1 secret(s) now").click()
    wait_for_app_idle(page)
    expect(page.get_by_text("Rotated 1 of 1 secret(s).")).to_be_visible()
    expect(page.locator(CELLS).filter(has_text=re.compile("^rotated$"))).to_have_count(1)
    after = vault.get_metadata("api_key_stripe", "development").current_version
    assert after == before + 1

    go(page, "Secrets")
    choose(page, "Secret", "development/api_key_stripe")
    expect(page.locator(CELLS).filter(has_text=re.compile("^current$"))).to_have_count(1)
    shown = cells(page)
    i = shown.index("current")  # the versions table: version, label, created, by
    assert shown[i - 1] == str(after) and shown[i + 2] == "ann"
    assert "previous" in shown

    go(page, "Audit")
    choose(page, "Operation", "rotate")  # picked, not typed
    expect(page.locator(CELLS).filter(has_text=re.compile("^(store|login|reveal|rule_add)$"))).to_have_count(0)
    expect(page.locator(CELLS).filter(has_text=re.compile("^rotate$")).first).to_be_attached()
    shown = cells(page)
    assert "api_key_stripe" in shown and "ann" in shown


def test_audit_filtered_to_one_user_downloads_a_neutralised_csv(env):
    vault, _, _, page = env
    go(page, "Audit")
    choose(page, "Operation", "any operation")
    choose(page, "Principal", "uma")
    wait_for_app_idle(page)
    link = page.get_by_role("link", name="Download audit.csv")
    expect(link).to_have_attribute("href", re.compile(r"/export/audit\.csv\?principal=uma"))
    got = page.request.get("/".join(page.url.split("/")[:3]) + link.get_attribute("href"))  # with the cookie
    assert got.status == 200 and got.headers["cache-control"] == "no-store"
    text = got.text()
    rows = list(csv.reader(io.StringIO(text)))
    header, body = rows[0], rows[1:]
    assert "principal" in header and "user_agent" in header and "seq" in header
    assert len(body) >= len(FORMULAS) + 2  # the denials, the login, the reveal
    assert {r[header.index("principal")] for r in body} == {"uma"}
    agents = {r[header.index("user_agent")] for r in body}
    assert {"'" + f for f in FORMULAS} <= agents
    assert not [c for r in body for c in r if c[:1] in ("=", "+", "-", "@")]
    exported = vault.get_audit_log(operation="audit_export", principal="ann")[0]
    assert exported["outcome"] == "allowed"


def test_health_page_draws_its_charts_from_demo_data(env):
    vault, _, _, page = env
    go(page, "Health")
    charts = page.locator('[data-testid="stPlotlyChart"]')
    expect(charts).to_have_count(3)  # by environment, by type, operations per day
    for i in range(3):
        expect(charts.nth(i).locator(".js-plotly-plot")).to_have_count(1)
    # drawn, not just mounted: bars and pie slices are SVG paths with geometry
    bars = page.locator('[data-testid="stPlotlyChart"] .js-plotly-plot g.point path')
    slices = page.locator('[data-testid="stPlotlyChart"] .js-plotly-plot g.slice path')
    expect(bars.first).to_be_attached()
    expect(slices.first).to_be_attached()
    assert slices.count() == len(vault.get_vault_health()["by_type"])
    assert all(d and d != "M0,0Z" for d in bars.evaluate_all("els => els.map(e => e.getAttribute('d'))"))
    expect(page.get_by_text("Secrets by environment")).to_be_visible()


def test_tampered_audit_row_fails_verification_on_the_audit_page(env):
    vault, _, _, page = env
    target = vault.get_audit_log(operation="rotate", principal="ann")[0]["seq"]
    with sqlite3.connect(vault.vault_dir / "vault.db") as db:  # an attacker with the database file
        db.execute("UPDATE audit_log SET reason = 'nothing to see' WHERE seq = ?", (target,))
    go(page, "Audit")
    page.get_by_role("button", name="Verify the hash chain").click()
    wait_for_app_idle(page)
    expect(page.get_by_text(f"Chain broken: first bad row is {target}.")).to_be_visible()
