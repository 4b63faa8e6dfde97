"""End-to-end smoke test: a tiny Streamlit app renders in Debian Chromium."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import expect, sync_playwright

from tests.browser import StreamlitServer, launch_chromium, wait_for_app_idle

APP = 'import streamlit as st\nst.title("hello")\nif st.button("go"):\n    st.write("clicked")\n'


def test_streamlit_app_renders_in_chromium(tmp_path: Path) -> None:
    app = tmp_path / "app.py"
    app.write_text(APP)
    with StreamlitServer(app, env={}, cwd=tmp_path) as server, sync_playwright() as pw:
        browser = launch_chromium(pw)
        try:
            page = browser.new_page()
            page.goto(server.url)
            wait_for_app_idle(page)
            expect(page.get_by_role("heading", name="hello")).to_be_visible()
            page.get_by_role("button", name="go").click()
            wait_for_app_idle(page)
            expect(page.get_by_text("clicked")).to_be_visible()
        finally:
            browser.close()
