"""One way to show dates, durations and empty cells on every console page.

Times are stored in UTC and shown in the browser's time zone
(``st.context.timezone``; UTC when the browser did not say), in one format,
through ``st.column_config.DatetimeColumn`` in tables and ``when`` in text.
"""

from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pandas as pd
import streamlit as st

from ..humanize import duration  # noqa: F401  (one wording for the console and the CLI)

TEXT_FORMAT = "%Y-%m-%d %H:%M"
COLUMN_FORMAT = "YYYY-MM-DD HH:mm"  # the same, in the moment.js syntax of st.column_config


def zone() -> tuple[timezone | ZoneInfo, str]:
    """The browser's time zone and its name (UTC when unknown or invalid)."""
    name = st.context.timezone or "UTC"
    try:
        return ZoneInfo(name), name
    except (ZoneInfoNotFoundError, ValueError):
        return timezone.utc, "UTC"


def when(value: datetime | int | None) -> str:
    """A time (aware datetime or epoch microseconds) in the browser's zone; '' for none."""
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return ""
    if isinstance(value, int):
        value = datetime.fromtimestamp(value / 1e6, timezone.utc)
    tz, name = zone()
    return f"{value.astimezone(tz):{TEXT_FORMAT}} {name}"


def epoch_us(value: int | None) -> datetime | None:
    """Epoch microseconds (how users and sessions keep times) as an aware datetime."""
    return None if value is None else datetime.fromtimestamp(value / 1e6, timezone.utc)


def date_column(label: str) -> st.column_config.DatetimeColumn:
    """A table column of times, in the browser's zone, with UTC named in its help."""
    _tz, name = zone()
    return st.column_config.DatetimeColumn(label, format=COLUMN_FORMAT, timezone=name,
                                           help=f"In your browser's time zone ({name}); stored in UTC.")


def days(n: int | None) -> str:
    """A rotation interval in words; '' for none."""
    return "" if not n else f"every {n} day{'s' if n != 1 else ''}"
