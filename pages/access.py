"""Access: the design card's entry point; the page itself is vault_core/console/pages/access.py (in the wheel)."""

import runpy

runpy.run_module("vault_core.console.pages.access", run_name="__main__")
