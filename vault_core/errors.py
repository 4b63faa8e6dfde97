"""The vault's exceptions.

Every message is written by the vault itself and never includes a secret
value, a key or a passphrase: callers may log them freely.
"""

from __future__ import annotations


class VaultError(Exception):
    """Base class of every error the vault raises on purpose."""


class Sealed(VaultError):
    """The vault holds no master key: every operation is refused."""


class InvalidKey(VaultError):
    """The master key or passphrase is wrong, missing or unsafe to use."""


class IntegrityError(VaultError):
    """Stored data failed its authentication check (tampered or moved)."""


class NotFound(VaultError, LookupError):
    """The named object does not exist."""


class AccessDenied(VaultError, PermissionError):
    """The caller lacks the level this operation needs (or no context in strict mode)."""


class Conflict(VaultError):
    """A check-and-set precondition failed: someone else changed the object first."""


class ValidationError(VaultError, ValueError):
    """Input was rejected; nothing was changed. The message never echoes a value."""


class AuditFailure(VaultError):
    """The audit row could not be written, so the operation was not performed."""


class StorageError(VaultError):
    """The storage backend is unreachable, full or otherwise failing."""


class LoginFailed(AccessDenied):
    """Wrong user name or password (the message never says which)."""


class AccountLocked(LoginFailed):
    """Too many failed logins, or locked by an admin."""


class SecondFactorRequired(LoginFailed):
    """The password was right; the login needs a two-factor code too.

    ``ticket`` (never in the message) carries the password step to ``complete_login`` for a few minutes.
    Code that treats every ``LoginFailed`` as a refusal stays safe.
    """

    def __init__(self, message: str, *, ticket: str, user: str = ""):
        super().__init__(message)
        self.ticket = ticket
        self.user = user  # who the ticket is for (a single sign-on names no user on the code form)

    def __repr__(self) -> str:
        return f"SecondFactorRequired({self.args[0]!r})"


class LoginExpired(LoginFailed):
    """The ticket of a two-factor login's first step is forged, expired or outdated: log in again."""


class RotationFailed(VaultError):
    """A staged rotation did not complete: CURRENT is untouched, PENDING discarded.

    ``stage`` is where it failed (generate, apply, test, promote); ``cause`` the
    exception type name. The message never holds the value.
    """

    def __init__(self, message: str, *, stage: str, cause: str):
        super().__init__(message)
        self.stage, self.cause = stage, cause
