"""Validation and canonical form of secret names, patterns, values and labels.

One canonical form per name means no variant (case, width, whitespace,
Unicode composition, ``..`` or ``//``) can reach around an access rule.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime, timezone
from typing import Any

from .errors import ValidationError
from .types import US

MAX_NAME_LENGTH = 256
DEFAULT_MAX_VALUE_BYTES = 64 * 1024
MAX_DESCRIPTION_LENGTH = 2000
MAX_TAGS = 32
MAX_TAG_LENGTH = 64

# Lowercase ASCII letters, digits and _ - . / ; segments split by "." or "/".
NAME_PATTERN = re.compile(r"[a-z0-9_][a-z0-9_\-./]*")
_RULE_PATTERN = re.compile(r"[a-z0-9_*?][a-z0-9_\-./*?]*")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _fold(raw: Any, what: str) -> str:
    if not isinstance(raw, str):
        raise ValidationError(f"{what} must be a string, not {type(raw).__name__}")
    if len(raw) > 4 * MAX_NAME_LENGTH:
        raise ValidationError(f"{what} is longer than {MAX_NAME_LENGTH} characters")
    if _CONTROL.search(raw):
        raise ValidationError(f"{what} contains control characters")
    return unicodedata.normalize("NFKC", raw).strip().lower()


def _check_path(folded: str, what: str, pattern: re.Pattern[str]) -> str:
    if not folded:
        raise ValidationError(f"{what} is empty")
    if len(folded) > MAX_NAME_LENGTH:
        raise ValidationError(f"{what} is longer than {MAX_NAME_LENGTH} characters")
    if not pattern.fullmatch(folded):
        raise ValidationError(
            f"{what} may hold only letters a-z, digits and _ - . / (after case folding); "
            "it must start with a letter, digit or _"
        )
    if ".." in folded or "//" in folded or "/." in folded or "./" in folded:
        raise ValidationError(f"{what} may not contain '..', '//' or empty path segments")
    if folded.endswith(("/", ".")):
        raise ValidationError(f"{what} may not end with '/' or '.'")
    return folded


def canonical_name(raw: Any) -> str:
    """The one canonical form of a secret name, or ``ValidationError``."""
    return _check_path(_fold(raw, "secret name"), "secret name", NAME_PATTERN)


def canonical_pattern(raw: Any) -> str:
    """Canonical form of a rule's name pattern (a name that may hold ``*`` and ``?``)."""
    return _check_path(_fold(raw, "name pattern"), "name pattern", _RULE_PATTERN)


def canonical_principal(raw: Any) -> str:
    """Canonical form of a user, service or role name (same alphabet as names)."""
    return _check_path(_fold(raw, "principal"), "principal", re.compile(r"[a-z0-9_][a-z0-9_\-.:@]*"))


def check_value(value: Any, max_bytes: int = DEFAULT_MAX_VALUE_BYTES) -> bytes:
    """Encode a secret value to bytes, refusing wrong types, NULs and oversize values."""
    if isinstance(value, str):
        if "\x00" in value:
            raise ValidationError("secret value contains a NUL character")
        try:
            data = value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValidationError("secret value is not valid Unicode text") from None
    elif isinstance(value, (bytes, bytearray, memoryview)):
        data = bytes(value)
    else:
        raise ValidationError(f"secret value must be str or bytes, not {type(value).__name__}")
    if len(data) > max_bytes:
        raise ValidationError(f"secret value is larger than the limit of {max_bytes} bytes")
    return data


def check_description(raw: Any) -> str:
    if raw is None:
        return ""
    if not isinstance(raw, str):
        raise ValidationError(f"description must be a string, not {type(raw).__name__}")
    if "\x00" in raw:
        raise ValidationError("description contains a NUL character")
    if len(raw) > MAX_DESCRIPTION_LENGTH:
        raise ValidationError(f"description is longer than {MAX_DESCRIPTION_LENGTH} characters")
    return raw


def check_tags(raw: Any) -> tuple[str, ...]:
    """Tags are free text (rendered as text by the console), bounded and NUL-free."""
    if raw is None:
        return ()
    if isinstance(raw, str) or not hasattr(raw, "__iter__"):
        raise ValidationError("tags must be a list of strings")
    tags: list[str] = []
    for tag in raw:
        if not isinstance(tag, str):
            raise ValidationError(f"each tag must be a string, not {type(tag).__name__}")
        tag = unicodedata.normalize("NFKC", tag).strip()
        if not tag or len(tag) > MAX_TAG_LENGTH or _CONTROL.search(tag):
            raise ValidationError(f"each tag must be 1-{MAX_TAG_LENGTH} printable characters")
        if tag not in tags:
            tags.append(tag)
    if len(tags) > MAX_TAGS:
        raise ValidationError(f"at most {MAX_TAGS} tags")
    return tuple(tags)


_SECRET_ID = re.compile(r"[0-9a-f]{32}")
_OPERATION = re.compile(r"[a-z_]{1,32}")
MAX_INT64 = 2**63 - 1


def check_secret_id(raw: Any) -> str:
    """A secret id as the vault makes them: 32 lowercase hex digits."""
    if not isinstance(raw, str) or not _SECRET_ID.fullmatch(raw):
        raise ValidationError("secret_id must be a secret id (32 hexadecimal digits)")
    return raw


def check_operation(raw: Any) -> str:
    if not isinstance(raw, str) or not _OPERATION.fullmatch(raw):
        raise ValidationError("operation must be an operation name (letters a-z and _)")
    return raw


def check_int(raw: Any, what: str, low: int = 0, high: int = MAX_INT64) -> int:
    """A whole number within [low, high] (64-bit by default, so it fits every backend)."""
    if isinstance(raw, bool) or not isinstance(raw, int) or not low <= raw <= high:
        raise ValidationError(f"{what} must be a whole number from {low} to {high}")
    return raw


def check_roles(raw: Any) -> list[str]:
    """A list (or tuple/set) of role names, canonicalised; a bare string is refused, not split."""
    if isinstance(raw, (str, bytes)) or not isinstance(raw, (list, tuple, set, frozenset)):
        raise ValidationError("roles must be a list of role names")
    return sorted({canonical_principal(r) for r in raw})


def check_text(raw: Any, what: str, limit: int = 256) -> str:
    """A short free-text filter (no NUL, no lone surrogates)."""
    if not isinstance(raw, str) or len(raw) > limit or "\x00" in raw:
        raise ValidationError(f"{what} must be a string of at most {limit} characters")
    try:
        raw.encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationError(f"{what} is not valid Unicode text") from None
    return raw


def printable(raw: Any, limit: int = 256) -> str:
    """A bounded, escaped rendering of untrusted text for audit rows and messages."""
    text = raw if isinstance(raw, str) else repr(raw)
    text = text[:limit]
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def to_us(value: Any, what: str) -> int | None:
    """A datetime (naive = UTC) as microseconds, or ValidationError."""
    if value is None:
        return None
    if not isinstance(value, datetime):
        raise ValidationError(f"{what} must be a datetime")
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return int(value.timestamp() * US)
