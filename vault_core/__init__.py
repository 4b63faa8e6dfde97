"""vault_core: an in-process secrets vault (the seed's API, imported from here)."""

from .access import Rule
from .context import SecurityContext, current_context
from .errors import (
    AccessDenied,
    AuditFailure,
    Conflict,
    IntegrityError,
    InvalidKey,
    NotFound,
    Sealed,
    StorageError,
    ValidationError,
    VaultError,
)
from .audit import VerifyReport, audit_cursor
from .types import AccessLevel, Environment, Listing, Page, SecretMetadata, SecretType, VersionInfo
from .vault import EnvironmentSecrets, Vault, get_vault, open_vault, setup_vault

__all__ = [
    "AccessDenied", "AccessLevel", "AuditFailure", "Conflict", "Environment", "EnvironmentSecrets",
    "IntegrityError", "InvalidKey", "Listing", "NotFound", "Page", "Rule", "Sealed", "SecretMetadata", "SecretType",
    "SecurityContext", "StorageError", "ValidationError", "Vault", "VaultError", "VerifyReport",
    "VersionInfo", "audit_cursor", "current_context", "get_vault", "open_vault", "setup_vault",
]
