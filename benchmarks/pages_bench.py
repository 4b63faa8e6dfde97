"""Warm server-side runs of console pages with Streamlit AppTest (a logged-in admin session)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PAGES = ("secrets", "audit", "health")


def find_page(name: str) -> Path | None:
    """pages/<something with name>.py, if the console engineer has written it."""
    hits = sorted(p for p in (ROOT / "pages").glob("*.py") if name in p.stem.lower())
    return hits[0] if hits else None


def run_pages(vault, runs: int, work: Path) -> dict[str, Any]:
    found = {name: find_page(name) for name in PAGES}
    missing = [n for n, p in found.items() if p is None]
    if missing:
        return {"runs": {}, "note": f"pages not present at run time: {', '.join(missing)} (pages/ holds "
                f"{sorted(p.name for p in (ROOT / 'pages').glob('*.py')) or 'nothing'})"}
    return {"runs": {}, "note": "pages present but no login helper known"}
