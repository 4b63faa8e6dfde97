"""Lengths of time in words, for people: one wording for the console (console/fmt.py) and the CLI."""

from __future__ import annotations


def duration(seconds: float | None) -> str:
    """A length of time in words: '40 seconds', '5 minutes', '3 hours', '12 days', '2 years'; '' for none."""
    if seconds is None:
        return ""
    s = abs(float(seconds))
    for unit, size in (("year", 365 * 86400), ("day", 86400), ("hour", 3600), ("minute", 60)):
        if s >= size:
            n = int(s // size)
            return f"{n} {unit}{'s' if n != 1 else ''}"
    n = int(s)
    return f"{n} second{'s' if n != 1 else ''}"
