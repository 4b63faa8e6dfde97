"""The wheel holds the whole console: built, installed WITHOUT -e into a fresh venv, served from an empty
folder, logged into through Chromium (issue 14)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright

from tests.browser import StreamlitServer, launch_chromium, wait_for_app_idle
from tests.e2e.helpers import log_in, open_app

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]


def _run(cmd: list[str], **kw) -> str:
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=900, **kw)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


def test_wheel_installed_without_editable_serves_from_an_empty_folder(tmp_path):
    started = time.monotonic()
    _run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "-q", "-w", str(tmp_path / "dist")])
    wheel = next((tmp_path / "dist").glob("vault_core-*.whl"))
    built = time.monotonic()
    _run([sys.executable, "-m", "venv", str(tmp_path / "venv")])
    python = tmp_path / "venv" / "bin" / "python"
    _run([str(python), "-m", "pip", "install", "-q", str(wheel)])
    installed = time.monotonic()
    where = _run([str(python), "-c", "import importlib.util as u; print(u.find_spec('vault_core.console.router').origin)"],
                 cwd=str(tmp_path)).strip()
    assert where.startswith(str(tmp_path / "venv")) and "site-packages" in where  # not the checkout
    empty = tmp_path / "empty"
    empty.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "STREAMLIT_", "PYTHONPATH"))}
    exe = tmp_path / "venv" / "bin" / "vault-console"
    server = StreamlitServer(None, cwd=empty, command=lambda port: [str(exe), "serve", "--port", str(port)])
    server.env = env
    with server, sync_playwright() as pw:
        serving = time.monotonic()
        password = re.search(r"User: admin  one-time password: (\S+)", server.output()).group(1)
        assert (empty / ".vault" / "vault.db").is_file()
        browser = launch_chromium(pw)
        try:
            page = open_app(browser.new_context(), server.url)
            log_in(page, "admin", password)
            assert page.url.endswith("/password")  # the one-time password must be changed first
            expect(page.get_by_text("You must choose a new password")).to_be_visible()
            page.get_by_label("Current password", exact=True).fill(password)
            page.get_by_label("New password", exact=True).fill("a fresh console passphrase 1")
            page.get_by_label("Repeat the new password", exact=True).fill("a fresh console passphrase 1")
            page.get_by_role("button", name="Change password").click()
            page.wait_for_load_state()
            wait_for_app_idle(page)
            expect(page.get_by_role("heading", name="Secrets")).to_be_visible()
            expect(page.get_by_text("Signed in as")).to_be_visible()
        finally:
            browser.close()
        done = time.monotonic()
    print(f"wheel built {built - started:.1f} s, fresh venv + pip install {installed - built:.1f} s, "
          f"serve healthy {serving - installed:.1f} s, login + password change in Chromium {done - serving:.1f} s")
