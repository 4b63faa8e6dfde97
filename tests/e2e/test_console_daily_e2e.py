"""Daily admin flows of issue 18 in Chromium against `streamlit run`: a 4-line PEM kept byte for byte,
a secret opened by its address, READ granted from the secret's page and used in a second browser."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser import wait_for_app_idle
from tests.e2e.helpers import PW, choose, create, log_in, open_app, pick_in_cell
from tests.e2e.test_admin_pages_e2e import served
from vault_core import open_vault

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PEM = ("-----BEGIN PRIVATE KEY-----\nMIIBVQIBADANBgkqhkiG9w0BAQEFAASCAT8wggE7AgEAAkEAu1SU1LfVLPHCozMx\n"
       "H2Mo4lgOEePzNm0tRgeLezV6ffAt0gunVTLw7onLRnrq0/IzW7yWR7QkrmBL7jTK\n-----END PRIVATE KEY-----\n")
GRANTED = "granted-value-4d2e"


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    path = tmp_path_factory.mktemp("daily-console") / "vault"
    vault = open_vault(path, principal="owner")
    vault.bcrypt_rounds = 4
    vault.add_user("ann", PW, ["admin"], must_change_password=False)
    vault.add_user("vic", PW, [], must_change_password=False)
    vault.store_secret("team/token", GRANTED, environment="staging")
    for env in ("development", "production"):
        vault.store_secret("mail/relay", "relay-same-value", environment=env)
    with served(vault, path, "ann", {"width": 1440, "height": 900}) as running:
        yield running


CELLS = '[data-testid="stDataFrame"] [role="gridcell"]'


def code_blocks(page) -> list[str]:
    return page.locator('[data-testid="stCode"] code').all_text_contents()


def test_a_pasted_four_line_pem_is_revealed_byte_identical(env):
    vault, _, _, page = env
    create(page, "tls/key", PEM)  # typed, then Create pressed at once
    masked = page.locator(".st-key-masked_new textarea")  # the value field draws discs, not the text
    assert masked.evaluate("e => getComputedStyle(e).webkitTextSecurity") == "disc"
    expect(page.get_by_text("Created development/tls/key.")).to_be_visible()
    assert vault.get_secret("tls/key", "development") == PEM
    expect(page.get_by_role("heading", name="development / tls/key")).to_be_visible()  # opened at once
    expect(page.locator(CELLS).filter(has_text="tls/key").first).to_be_attached()  # and listed
    assert PEM.splitlines()[1] not in page.content()  # masked until revealed
    page.get_by_role("button", name="Reveal value").click()
    wait_for_app_idle(page)
    expect(page.get_by_role("button", name="Hide value")).to_be_visible()
    assert PEM in code_blocks(page)
    page.get_by_role("button", name="Hide value").click()
    wait_for_app_idle(page)
    assert PEM.splitlines()[1] not in page.content()


def test_a_secret_opens_from_its_address(env):
    _, server, _, page = env
    page.goto(server.url + "/?env=development&name=tls/key")
    wait_for_app_idle(page, settle_ms=500)
    expect(page.get_by_role("heading", name="development / tls/key")).to_be_visible()
    link = page.locator('[data-testid="stCode"] code').filter(has_text="?env=")
    expect(link).to_have_text(server.url + "/?env=development&name=tls%2Fkey")  # the copy button copies this


def test_read_granted_from_the_secret_page_works_in_a_second_browser(env):
    vault, server, browser, page = env
    choose(page, "Secret", "staging/team/token")
    page.get_by_text("Grant access").click()
    choose(page, "User or role", "user vic")
    page.get_by_text("read", exact=True).click()
    page.get_by_role("button", name="Review").click()
    wait_for_app_idle(page)
    expect(page.get_by_text("+ allow read to user vic on staging/team/token")).to_be_visible()
    page.get_by_role("button", name="Apply", exact=True).click()
    wait_for_app_idle(page)
    expect(page.get_by_text("Granted: allow read to user vic on staging/team/token.")).to_be_visible()
    other = browser.new_context(viewport={"width": 1024, "height": 768})
    try:
        vpage = open_app(other, server.url)
        log_in(vpage, "vic")
        choose(vpage, "Secret", "staging/team/token")
        assert GRANTED not in vpage.content()
        vpage.get_by_role("button", name="Reveal value").click()
        wait_for_app_idle(vpage)
        assert GRANTED in code_blocks(vpage)
    finally:
        other.close()
    row = vault.get_audit_log(operation="reveal", principal="vic")[0]
    assert (row["secret_name"], row["outcome"]) == ("team/token", "allowed")


def test_the_environment_grid_marks_a_missing_cell_and_two_equal_values(env):
    _, _, _, page = env
    page.get_by_role("link", name="Health", exact=True).click()
    wait_for_app_idle(page, settle_ms=500)
    page.get_by_text("Show names × environments", exact=False).click()
    wait_for_app_idle(page, settle_ms=500)
    cells = page.locator(CELLS)
    expect(cells.filter(has_text="present; same value as production")).to_have_count(1)
    expect(cells.filter(has_text="present; same value as development")).to_have_count(1)
    expect(cells.filter(has_text="missing").first).to_be_attached()
    assert "relay-same-value" not in page.content()


def new_secret_as(page, name: str, shape: str):
    """Open the New secret form, name the secret and choose how its value is given; returns the form."""
    if not page.get_by_role("heading", name="Secrets", exact=True).count():
        page.get_by_role("link", name="Secrets", exact=True).click()
        expect(page.get_by_role("heading", name="Secrets", exact=True)).to_be_visible()
        wait_for_app_idle(page, settle_ms=500)
    form = page.locator('[data-testid="stExpander"]').filter(has=page.get_by_text("New secret", exact=True))
    field = form.get_by_label("Name", exact=True)
    if not field.is_visible():
        form.get_by_text("New secret", exact=True).click()
    field.fill(name)  # typed first: a new shape redraws the form's inputs and keeps what was typed
    form.get_by_role("radiogroup", name="Value as").get_by_text(shape, exact=True).click()
    wait_for_app_idle(page, settle_ms=300)
    expect(field).to_have_value(name)
    return form


def test_an_uploaded_file_is_stored_byte_for_byte(env):
    vault, _, _, page = env
    form = new_secret_as(page, "tls/uploaded", "File")
    form.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(
        files=[{"name": "key.pem", "mimeType": "application/x-pem-file", "buffer": PEM.encode()}])
    wait_for_app_idle(page, settle_ms=500)
    page.get_by_role("button", name="Create").click()
    wait_for_app_idle(page, settle_ms=500)
    expect(page.get_by_text("Created development/tls/uploaded.")).to_be_visible()
    assert vault.get_secret("tls/uploaded", "development") == PEM


def test_key_value_pairs_are_one_secret_shown_back_as_pairs(env):
    from tests.e2e.test_admin_pages_e2e import edit_cell

    vault, _, _, page = env
    form = new_secret_as(page, "app/settings", "Key/value pairs")
    grid = form.locator('[data-testid="stDataFrame"]')
    edit_cell(page, grid, 0, 0, "user")  # the editor starts with one empty row
    edit_cell(page, grid, 0, 1, "app")
    page.get_by_role("button", name="Create").click()
    wait_for_app_idle(page, settle_ms=500)
    expect(page.get_by_text("Created development/app/settings.")).to_be_visible()
    assert vault.get_secret("app/settings", "development") == '{"user":"app"}'
    page.get_by_role("button", name="Reveal value").click()
    wait_for_app_idle(page)
    expect(page.locator(CELLS).filter(has_text="app").first).to_be_attached()


def test_rule_levels_are_picked_by_keyboard_and_checked_once_the_row_is_complete(env):
    from tests.e2e.test_admin_pages_e2e import edit_cell, go

    vault, _, _, page = env
    go(page, "Access")
    grid = page.locator('[data-testid="stDataFrame"]').nth(1)  # the editor (the first table: built-in rules)
    row = len([r for r in vault.list_rules() if r.id > 0])
    grid.hover()
    page.get_by_role("button", name="Add row").click()
    edit_cell(page, grid, row, 2, "vic")  # columns: id, subject kind, subject, environment, pattern, levels
    edit_cell(page, grid, row, 4, "mail/*")
    page.get_by_role("button", name="Review changes").click()
    wait_for_app_idle(page)
    expect(page.get_by_text(f"Row {row + 1} is not finished: give it at least one level.")).to_be_visible()
    pick_in_cell(page, grid, row, 5, ["wri", "rea"])  # typed to filter, Enter to pick, Tab to leave
    page.get_by_role("button", name="Review changes").click()
    wait_for_app_idle(page)
    expect(page.get_by_text("+ allow read,write to any vic on */mail/*")).to_be_visible()
    page.get_by_role("button", name="Apply 1 change(s)").click()
    wait_for_app_idle(page)
    expect(page.get_by_text("Applied 1 change(s).")).to_be_visible()
    (rule,) = [r for r in vault.list_rules(subject="vic") if r.pattern == "mail/*"]
    assert (rule.pattern, sorted(lv.value for lv in rule.levels)) == ("mail/*", ["read", "write"])


def test_edit_saves_what_was_typed_when_save_is_pressed_at_once(env):
    vault, server, _, page = env
    page.goto(server.url + "/?env=development&name=mail/relay")
    wait_for_app_idle(page, settle_ms=500)
    expect(page.get_by_role("heading", name="development / mail/relay")).to_be_visible()
    page.locator('[data-testid="stExpander"] summary').filter(has=page.get_by_text("Edit", exact=True)).click()
    value = page.get_by_label("New value (leave empty to keep the current one)", exact=True)
    expect(value).to_be_visible()
    value.fill("relay-new-value\n")
    page.get_by_label("Description", exact=True).last.fill("the outgoing relay")
    page.get_by_role("button", name="Save", exact=True).click()  # no pause: the form carries the typed text
    wait_for_app_idle(page, settle_ms=500)
    expect(page.get_by_text("Saved development/mail/relay: version 2.")).to_be_visible()
    expect(page.locator(CELLS).filter(has_text="the outgoing relay").first).to_be_attached()  # the table, at once
    assert vault.get_secret("mail/relay", "development") == "relay-new-value\n"
    assert vault.get_metadata("mail/relay", "development").description == "the outgoing relay"
