"""Health: the design card's entry point; the page itself is vault_core/console/pages/health.py (in the wheel)."""

import runpy

runpy.run_module("vault_core.console.pages.health", run_name="__main__")
