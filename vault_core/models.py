"""Compatibility path: the value types live in ``types`` (kept for the console's imports)."""

from .types import AccessLevel, Page, SecretMetadata, SecretType, VersionInfo, _ParseEnum

__all__ = ["AccessLevel", "Page", "SecretMetadata", "SecretType", "VersionInfo", "_ParseEnum"]
