"""Helpers for Playwright end-to-end tests against a Streamlit app (Debian's /usr/bin/chromium)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any

CHROMIUM_PATH = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def launch_kwargs() -> dict[str, Any]:
    """Keyword arguments for ``playwright.chromium.launch`` (also usable as pytest-playwright's
    ``browser_type_launch_args``). Raises if Debian's chromium is missing: never skip."""
    if not os.access(CHROMIUM_PATH, os.X_OK):
        raise FileNotFoundError(f"{CHROMIUM_PATH} not found: apt-get install -y chromium")
    return {"executable_path": CHROMIUM_PATH, "headless": True, "args": list(CHROMIUM_ARGS)}


def launch_chromium(playwright: Any) -> Any:
    """Launch headless Debian Chromium via a sync Playwright instance; returns the Browser."""
    return playwright.chromium.launch(**launch_kwargs())


# JS predicate: connected to the server, script not running, no "running" status icon.
_IDLE_JS = """() => {
  const app = document.querySelector('[data-testid="stApp"]');
  if (!app) return false;
  const conn = app.getAttribute('data-test-connection-state');
  const state = app.getAttribute('data-test-script-state');
  return conn === 'CONNECTED'
    && (state === 'notRunning' || state === 'compilationError')
    && !document.querySelector('[data-testid="stStatusWidgetRunningIcon"]');
}"""


def wait_for_app_idle(page: Any, timeout_ms: float = 30_000, settle_ms: float = 200) -> None:
    """Wait until the Streamlit app is connected and its script has finished running.

    ``settle_ms`` first lets a just-triggered rerun (e.g. a click) begin, so we don't
    mistake the state before the rerun for idle."""
    if settle_ms:
        page.wait_for_timeout(settle_ms)
    page.wait_for_selector('[data-testid="stApp"]', timeout=timeout_ms)
    page.wait_for_function(_IDLE_JS, timeout=timeout_ms)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class StreamlitServer:
    """``streamlit run`` in a subprocess on a free 127.0.0.1 port; use as a context manager.

    ``env`` is merged over ``os.environ``. ``.url`` is the app URL; ``.output()`` the
    server's combined stdout/stderr so far. ``command(port)``, if given, is the command
    line to run instead (e.g. ``vault-console serve``)."""

    def __init__(self, app_path: str | os.PathLike[str] | None, env: dict[str, str] | None = None,
                 cwd: str | os.PathLike[str] | None = None, timeout: float = 60.0,
                 command: Any = None) -> None:
        self.app_path = Path(app_path) if app_path is not None else None
        self.command = command
        self.env = {**os.environ, **(env or {})}
        self.cwd = cwd
        self.timeout = timeout
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._proc: subprocess.Popen[bytes] | None = None
        self._chunks: list[str] = []
        self._lock = threading.Lock()

    def output(self) -> str:
        """Captured server output so far."""
        with self._lock:
            return "".join(self._chunks)

    def _pump(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        for line in iter(self._proc.stdout.readline, b""):
            with self._lock:
                self._chunks.append(line.decode(errors="replace"))

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=2) as r:
                return r.status == 200 and r.read().decode().strip() == "ok"
        except OSError:
            return False

    def start(self) -> StreamlitServer:
        """Start the server and wait for /_stcore/health to say ok (RuntimeError otherwise)."""
        cmd = self.command(self.port) if self.command else [
            sys.executable, "-m", "streamlit", "run", str(self.app_path),
            "--server.port", str(self.port), "--server.headless", "true",
            "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"]
        self._proc = subprocess.Popen(cmd, env=self.env, cwd=self.cwd, stdin=subprocess.DEVNULL,
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        threading.Thread(target=self._pump, daemon=True).start()
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                break
            if self._healthy():
                return self
            time.sleep(0.25)
        code = self._proc.poll()
        self.stop()
        raise RuntimeError(f"Streamlit did not become healthy on {self.url} "
                           f"(exit code {code}):\n{self.output()}")

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def stop(self) -> None:
        """Terminate the server (kill after 10 s)."""
        if self._proc is None or self._proc.poll() is not None:
            return
        self._proc.terminate()
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(timeout=10)

    def __enter__(self) -> StreamlitServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def console_server(vault_path: str | os.PathLike[str], env: dict[str, str] | None = None,
                   exe: str | os.PathLike[str] | None = None, cwd: str | os.PathLike[str] | None = None,
                   demo: bool = False) -> StreamlitServer:
    """``vault-console serve`` (of this venv, or ``exe``) on a free port, for ``vault_path``."""
    program = str(exe or Path(sys.executable).parent / "vault-console")
    extra = ["--demo"] if demo else []
    env = {"VAULT_PATH": str(vault_path), "VAULT_PRINCIPAL": "owner", **(env or {})}  # tests make vaults as owner
    return StreamlitServer(None, env=env, cwd=cwd,
                           command=lambda port: [program, "serve", "--port", str(port), "--address", "127.0.0.1",
                                                 *extra])
