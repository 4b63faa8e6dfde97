"""Warm server-side runs of console pages with Streamlit AppTest, logged in as an admin.

The pages open the vault at ``VAULT_PATH`` (the big benchmark vault), the
session token comes from ``vault.verify_login`` and goes where the login form
puts it, as in tests/console_fixtures.py. The first run of each page is the
cold one (imports, the cached vault); the figures are the runs after it.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from .timing import summarise

ROOT = Path(__file__).resolve().parent.parent
PAGES = ("secrets", "audit", "health")
USER, PASSWORD = "bench-admin", "bench admin password"
TOKEN_KEY = "vault_session_token"
_REFUSED = "You may not use this page."


def find_page(name: str) -> Path | None:
    """pages/<name>.py, if the console engineer has written it."""
    path = ROOT / "pages" / f"{name}.py"
    return path if path.exists() else None


def _login(vault) -> str:
    from vault_core.errors import Conflict

    vault.bcrypt_rounds = 4  # the cost of a login is not what is measured here
    try:
        vault.add_user(USER, PASSWORD, ["admin"], must_change_password=False)
    except Conflict:
        pass
    return vault.verify_login(USER, PASSWORD, "10.9.8.7", "benchmarks")


def _problem(at) -> str | None:
    if at.exception:
        return f"exception: {str(at.exception[0].value)[:200]}"
    errors = [str(e.value) for e in at.error]
    if _REFUSED in errors:
        return "the page refused the session"
    return None


def run_pages(vault, runs: int, work: Path) -> dict[str, Any]:
    found = {name: find_page(name) for name in PAGES}
    missing = [n for n, p in found.items() if p is None]
    out: dict[str, Any] = {"runs": {}}
    if missing:
        out["note"] = f"pages not present at run time: {', '.join(missing)}"
    try:
        from streamlit.testing.v1 import AppTest
    except ImportError as exc:  # pragma: no cover - streamlit is a dependency
        return {"runs": {}, "note": f"streamlit AppTest unavailable: {exc}"}
    saved = {k: os.environ.get(k) for k in ("VAULT_PATH", "VAULT_DATABASE_URL")}
    os.environ["VAULT_PATH"] = str(vault.vault_dir)
    os.environ.pop("VAULT_DATABASE_URL", None)
    try:
        token = _login(vault)
        for name, path in found.items():
            if path is None:
                continue
            at = AppTest.from_file(str(path), default_timeout=120)
            at.session_state[TOKEN_KEY] = token
            t = time.perf_counter_ns()
            at.run()
            cold = (time.perf_counter_ns() - t) / 1e6
            problem = _problem(at)
            if problem:
                out["runs"][name] = {"error": problem, "file": f"pages/{path.name}"}
                continue
            samples = []
            for _ in range(runs):
                t = time.perf_counter_ns()
                at.run()
                samples.append(time.perf_counter_ns() - t)
            problem = _problem(at)
            stat = summarise(samples).to_dict()
            stat.update(cold_ms=round(cold, 1), file=f"pages/{path.name}",
                        placeholder="not built yet" in " ".join(str(i.value) for i in at.info))
            if problem:
                stat["error"] = problem
            out["runs"][name] = stat
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return out
