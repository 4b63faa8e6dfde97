"""What a page says after an action: a message kept in session state across the rerun it asks for.

An action that changed something calls ``done(text)``: the message is kept
and the script reruns, so the whole page (tables, details, pickers) is drawn
again from the vault's new state and the message is shown at the top by
``show()``. A message never carries a value: callers pass names, versions
and counts only.
"""

from __future__ import annotations

import re
from typing import NoReturn

import streamlit as st

from ..errors import AccessDenied

FLASH = "_console_flash"  # session state: [(kind, text)] shown once by the next run's show()
_DENIED = re.compile(r"^(?P<who>\S+) may not (?P<level>\w+) (?P<where>\S+?): (?P<why>.+)$", re.S)


def keep(text: str, kind: str = "success") -> None:
    """Keep a message for the next run (``kind``: success, info, warning or error)."""
    st.session_state.setdefault(FLASH, []).append((kind, text))


def done(text: str, kind: str = "success") -> NoReturn:
    """Keep the message and rerun the whole app, so the page shows the new state.

    Raises streamlit's rerun exception (never returns).
    """
    keep(text, kind)
    st.rerun()


def show() -> None:
    """Show (once) the messages kept by the previous run.

    Always inside one container, present on every run: a message appearing or going away then never shifts
    the elements after it, which would remount them (an open expander would close).
    """
    box = st.container()
    for kind, text in st.session_state.pop(FLASH, []):
        getattr(box, kind)(text)


def sentence(exc: Exception) -> str:
    """An error as a sentence for the page; a denial says who lacks which level where, and why."""
    text = str(exc).strip() or type(exc).__name__
    if isinstance(exc, AccessDenied):
        m = _DENIED.match(text)
        if m:
            return (f"Not done: {m['who']} does not hold the {m['level']} level on {m['where']} "
                    f"({m['why'].rstrip('.')}).")
        return f"Not done: {text[0].lower()}{text[1:].rstrip('.')}."
    return f"{text[0].upper()}{text[1:].rstrip('.')}."
