"""Compatibility path: ``Environment`` lives in ``types``, ``EnvironmentSecrets`` in ``vault``.

Kept for modules outside the core (console, streamlit, examples) that import from here.
"""

from .types import Environment, default_environment
from .vault import EnvironmentSecrets

__all__ = ["Environment", "EnvironmentSecrets", "default_environment"]
