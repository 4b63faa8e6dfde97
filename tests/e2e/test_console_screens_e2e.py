"""Every console page for an admin at 1440×900 and 1024×768 in Chromium (issue 18): no horizontal scroll of the
page or its main area, no clipped button or broken one-word label, the page's key actions inside the viewport,
and the Secrets table's main columns drawn without scrolling it."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser import wait_for_app_idle
from tests.e2e.helpers import PW
from tests.e2e.test_admin_pages_e2e import served
from vault_core import open_vault
from vault_core.console.demo import seed_demo

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SIZES = [(1440, 900), (1024, 768)]
SECRET = "/?env=production&name=database_url"
# page address -> (expanders to open, the key actions: buttons or links by their name)
PAGES = {
    "/": (["New secret"], ["Check", "Create", "Next page"]),
    SECRET: (["Edit"], ["Reveal value", "Delete…", "Save"]),
    "/rotation": ([], ["Rotate now…"]),
    "/access": ([], ["Review changes"]),
    "/audit": ([], [re.compile(r"^Download audit"), "Verify the hash chain"]),
    "/health": ([], [re.compile(r"^Show names × environments")]),
    "/users": (["Add user"], ["Add user"]),
    "/account": ([], ["End all my sessions (logs out everywhere)"]),
}

LAYOUT = """() => {
  const main = document.querySelector('[data-testid="stMain"]');
  const out = {innerWidth: window.innerWidth, pageWidth: document.documentElement.scrollWidth,
               mainScroll: main.scrollWidth, mainClient: main.clientWidth, clipped: [], broken: []};
  for (const b of main.querySelectorAll('button, a[data-testid="stBaseLinkButton-secondary"]')) {
    const r = b.getBoundingClientRect();
    if (r.width && (r.left < 0 || r.right > window.innerWidth || b.scrollWidth > b.clientWidth + 1))
      out.clipped.push(b.innerText);
  }
  for (const l of main.querySelectorAll('[data-testid="stWidgetLabel"] p')) {  // a one-word label on two lines
    const words = l.innerText.trim();
    const line = parseFloat(getComputedStyle(l).lineHeight) || 20;
    if (words && !/\\s/.test(words) && l.getBoundingClientRect().height > 1.5 * line) out.broken.push(words);
  }
  return out;
}"""
GRID_COLUMNS = """() => [...document.querySelector('[data-testid="stDataFrame"]')
  .querySelectorAll('[role="columnheader"]')].map(h => h.innerText)"""  # the grid draws only the columns in view


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    path = tmp_path_factory.mktemp("screens") / "vault"
    vault = open_vault(path, principal="owner")
    vault.bcrypt_rounds = 4
    seed_demo(vault)
    vault.add_user("ann", PW, ["admin"], must_change_password=False)
    with served(vault, path, "ann", {"width": SIZES[0][0], "height": SIZES[0][1]}) as running:
        yield running


def show(page, url: str, expanders: list[str]) -> None:
    page.goto(url)
    expect(page.locator('[data-testid="stMain"] h1').first).to_be_visible(timeout=30_000)  # the page is drawn
    wait_for_app_idle(page, settle_ms=800)
    for title in expanders:
        head = page.locator('[data-testid="stExpander"] summary').filter(
            has=page.get_by_text(title, exact=True))
        expect(head).to_have_count(1)
        head.click()
        wait_for_app_idle(page, settle_ms=300)


def key_action(page, name):
    """The button, link or toggle named ``name`` (a string, exactly, or a pattern)."""
    exact = {"exact": True} if isinstance(name, str) else {}
    found = page.get_by_role("button", name=name, **exact).or_(page.get_by_role("link", name=name, **exact))
    return found.or_(page.get_by_role("switch", name=name, **exact)).first


@pytest.mark.parametrize("size", SIZES, ids=[f"{w}x{h}" for w, h in SIZES])
def test_every_page_fits_the_screen_with_its_key_actions_in_view(env, size):
    _, server, _, page = env
    width, height = size
    page.set_viewport_size({"width": width, "height": height})
    failures = []
    for path, (expanders, actions) in PAGES.items():
        show(page, server.url + path, expanders)
        layout = page.evaluate(LAYOUT)
        print(path, size, layout)
        if layout["pageWidth"] > width or layout["mainScroll"] > layout["mainClient"]:
            failures.append(f"{path}: scrolls sideways ({layout})")
        if layout["clipped"] or layout["broken"]:
            failures.append(f"{path}: clipped buttons {layout['clipped']}, broken labels {layout['broken']}")
        for name in actions:
            action = key_action(page, name)
            expect(action).to_be_visible(timeout=30_000)
            action.scroll_into_view_if_needed()
            wait_for_app_idle(page, settle_ms=300)  # a rerun can redraw the page under the scroll (CI: y=-129)
            action.scroll_into_view_if_needed()
            box = action.bounding_box()
            if not box or box["x"] < 0 or box["x"] + box["width"] > width or box["y"] < 0 \
                    or box["y"] + box["height"] > height:
                failures.append(f"{path}: {name} is not inside the {width}×{height} viewport ({box})")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("size", SIZES, ids=[f"{w}x{h}" for w, h in SIZES])
def test_the_secrets_table_shows_its_main_columns_without_scrolling(env, size):
    _, server, _, page = env
    page.set_viewport_size({"width": size[0], "height": size[1]})
    show(page, server.url + "/", [])
    expect(page.locator('[data-testid="stDataFrame"] [role="columnheader"]').first).to_be_attached()
    drawn = page.evaluate(GRID_COLUMNS)
    print(size, drawn)
    assert {"Name", "Environment", "Type", "Version"} <= set(drawn), drawn
