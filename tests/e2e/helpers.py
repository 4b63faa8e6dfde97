"""Shared Playwright helpers for the console's end-to-end tests (a running console server)."""

from __future__ import annotations

from urllib.parse import urlparse

from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import expect

from tests.browser import wait_for_app_idle

PW = "e2e password 123"


def on_route(page) -> bool:
    """Is the page one of the console's own HTML routes (login, logout, password) rather than the app?"""
    return urlparse(page.url).path in ("/login", "/login/code", "/logout", "/password")


def settle(page) -> None:
    """Wait for whatever loaded: a route's form, or the Streamlit app finishing its run."""
    page.wait_for_load_state()
    if not on_route(page):
        wait_for_app_idle(page, settle_ms=500)


def open_app(context, url: str, path: str = ""):
    """Open ``url + path`` (a stranger is redirected to the login route) and wait for it."""
    page = context.new_page()
    page.goto(url + path)
    settle(page)
    return page


def log_in(page, user: str, password: str = PW) -> None:
    """Log in through the /login route's form (opened first if the page is elsewhere)."""
    if urlparse(page.url).path != "/login":
        parts = urlparse(page.url)
        page.goto(f"{parts.scheme}://{parts.netloc}/login")
    page.get_by_label("Username", exact=True).fill(user)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Log in").click()
    settle(page)


def choose(page, label: str, option: str) -> None:
    """Pick ``option`` in a selectbox (retried: a rerun may close the list while it opens)."""
    for _ in range(3):
        wait_for_app_idle(page, settle_ms=300)
        box = page.get_by_label(label, exact=True)
        expect(box).to_have_count(1)
        box.click()
        box.press_sequentially(option.rsplit("/", 1)[-1])
        item = page.get_by_role("option", name=option, exact=True)
        try:
            item.click(timeout=5000)
        except PlaywrightError:  # a rerun closed the list or replaced the option
            page.keyboard.press("Escape")
            continue
        wait_for_app_idle(page)
        return
    raise AssertionError(f"could not choose {option!r} in {label!r}")


def create(page, name: str, value: str) -> None:
    """Fill and submit the New secret form (opening its expander first)."""
    wait_for_app_idle(page, settle_ms=500)
    field, secret = page.get_by_label("Name", exact=True), page.get_by_label("Value", exact=True)
    expect(field).to_have_count(1)  # a rerun can briefly leave stale copies of the form
    if not field.is_visible():
        page.get_by_text("New secret").click()
    expect(field).to_be_visible()
    field.fill(name)
    secret.fill(value)
    expect(secret).to_have_value(value)
    page.get_by_role("button", name="Create").click()  # at once: the form sends what was typed with the press
    wait_for_app_idle(page, settle_ms=500)


def pick_in_cell(page, grid, row: int, col: int, options: list[str]) -> None:
    """Pick ``options`` in the multiselect cell (row, col) of a data editor by keyboard only: select the cell,
    Enter opens its list, type to filter and Enter to pick each option, Tab to commit the cell."""
    box = grid.bounding_box()
    x, y = box["x"] + 45, box["y"] + 35 + row * 35 + 17  # the row's first cell (header 35 px)
    page.mouse.move(x, y)  # after a rerun the grid takes a click only once the pointer has come in
    page.wait_for_timeout(200)
    page.mouse.click(x, y)
    for _ in range(col):
        page.keyboard.press("ArrowRight")
    page.keyboard.press("Enter")
    expect(page.get_by_role("combobox").last).to_be_focused()
    for option in options:
        page.keyboard.type(option)
        page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    wait_for_app_idle(page, settle_ms=300)
