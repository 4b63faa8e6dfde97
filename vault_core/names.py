"""Compatibility path: the checkers live in ``validate`` (kept for the console's and streamlit's imports)."""

from .validate import *  # noqa: F401,F403  (pyflakes: star import on purpose)
