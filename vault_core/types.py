"""Value types shared by every layer: environments, secret types, access levels, metadata, time units."""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field
import os
from datetime import datetime, timezone
from typing import Any


class _ParseEnum(str, enum.Enum):
    """A str enum that parses its value or name, case-insensitively."""

    @classmethod
    def parse(cls, raw: Any) -> "_ParseEnum":
        from .errors import ValidationError

        if isinstance(raw, cls):
            return raw
        if isinstance(raw, str):
            member = cls._value2member_map_.get(raw)  # the common case: exactly a value
            if member is not None:
                return member
            key = raw.strip().lower()
            for member in cls:
                if key in (member.value, member.name.lower()):
                    return member
            raise ValidationError(f"unknown {cls.__name__}: choose one of {', '.join(m.value for m in cls)}")
        raise ValidationError(f"{cls.__name__} must be a {cls.__name__} or a string, not {type(raw).__name__}")

    def __str__(self) -> str:
        return self.value


# -- time: every instant is an int of microseconds since the epoch, UTC ------------------
US = 1_000_000
US_PER_MIN = 60 * US
US_PER_DAY = 86_400 * US


def now_us() -> int:
    """The wall clock in microseconds (the vault's default ``clock``)."""
    import time

    return time.time_ns() // 1000


class Clock:
    """The time source every service reads, in microseconds. Callable; ``source`` may be swapped (tests move time)."""

    __slots__ = ("source",)

    def __init__(self, source: Any = None):
        self.source = source or now_us

    def __call__(self) -> int:
        return self.source()

    def __repr__(self) -> str:
        return f"Clock({getattr(self.source, '__name__', 'custom')})"


def to_datetime(us: int | None) -> datetime | None:
    """Microseconds since the epoch as an aware UTC datetime (None stays None)."""
    return None if us is None else datetime.fromtimestamp(us / US, tz=timezone.utc)


class Environment(_ParseEnum):
    DEVELOPMENT = "development"
    STAGING = "staging"
    PRODUCTION = "production"
    TESTING = "testing"


def default_environment() -> Environment:
    """The environment named by ``VAULT_ENVIRONMENT`` (development when unset)."""
    return Environment.parse(os.environ.get("VAULT_ENVIRONMENT") or "development")


class SecretType(_ParseEnum):
    API_KEY = "api_key"
    PASSWORD = "password"
    DATABASE_URL = "database_url"
    ENCRYPTION_KEY = "encryption_key"
    TOKEN = "token"
    CERTIFICATE = "certificate"
    GENERIC = "generic"


class AccessLevel(_ParseEnum):
    READ = "read"
    WRITE = "write"
    ROTATE = "rotate"
    ADMIN = "admin"


@dataclass(frozen=True)
class SecretMetadata:
    """Everything about a secret except its value (metadata never carries one)."""

    id: str
    name: str
    environment: str
    secret_type: str
    description: str
    tags: tuple[str, ...]
    current_version: int
    created_at: datetime
    created_by: str
    updated_at: datetime
    updated_by: str
    expires_at: datetime | None = None
    rotation_interval_days: int | None = None
    next_rotation_at: datetime | None = None
    last_rotated_at: datetime | None = None
    deleted_at: datetime | None = None
    generator: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["tags"] = list(self.tags)
        return d


@dataclass(frozen=True)
class VersionInfo:
    """One stored version of a secret (never its value)."""

    version: int
    state: str
    created_at: datetime
    created_by: str


@dataclass(frozen=True)
class Listing:
    """The readable live secrets of one environment, for caches of metadata (never a value).

    ``entries`` maps a name to ``(current version, tags)``: every readable secret when ``complete``,
    else only the names that may have changed since the ``since`` token given, a name mapped to None
    being gone or no longer readable. ``token`` marks this snapshot: give it as the next ``since``.
    The token is opaque, and left out of the ``repr``.
    """

    entries: dict[str, tuple[int, tuple[str, ...]] | None]
    complete: bool
    token: tuple[int, bytes, int] = field(repr=False)


class Page(list):
    """A list of results plus the cursor of the next page (None on the last page)."""

    next_cursor: str | None = None

    def __init__(self, items=(), next_cursor: str | None = None):
        super().__init__(items)
        self.next_cursor = next_cursor
