"""The password policy for console users (NIST SP 800-63B, section 5.1.1.2).

A new password must:

* be text of at least ``min_length()`` characters (12, or ``VAULT_PASSWORD_MIN_LENGTH`` if higher) and at
  most 72 UTF-8 bytes — bcrypt's limit: a longer one is refused, never silently cut;
* not be on the bundled list of 111,184 common and breached passwords and dictionary words
  (``data/common-passwords.txt.gz``, built by ``tools/build_password_list.py``), compared case-insensitively,
  also once digits, punctuation and spaces at either end (up to six characters) are taken off, so that
  ``Password2024!`` counts as ``password``;
* not be a run of repeated or sequential characters (``aaaaaaaaaaaa``, ``hunter2hunter2``, ``123456789012``,
  ``qwertyuiopas``);
* not contain the user's name;
* differ from the current password (at a forced first change, the one-time password).

No composition rules (NIST advises against them) and no expiry. A refusal is a ``ValidationError`` that
says which rule failed and never contains the password.
"""

from __future__ import annotations

import gzip
import os
import string
from collections.abc import Callable
from functools import lru_cache
from importlib import resources
from typing import Any

from .errors import ValidationError

MIN_LENGTH = 12
MAX_BYTES = 72  # bcrypt ignores (bcrypt 5 refuses) anything longer
_AFFIX = string.digits + string.punctuation + " "
_MAX_AFFIX = 6
_SEQUENCES = ("0123456789", "abcdefghijklmnopqrstuvwxyz", "qwertyuiopasdfghjklzxcvbnm", "1qaz2wsx3edc4rfv5tgb6yhn")


def min_length() -> int:
    """The configured minimum length: 12, or ``VAULT_PASSWORD_MIN_LENGTH`` when that is higher.

    Raises ``ValidationError`` if the variable is set but not a whole number.
    """
    raw = os.environ.get("VAULT_PASSWORD_MIN_LENGTH", "").strip()
    if not raw:
        return MIN_LENGTH
    if not raw.isdigit():
        raise ValidationError("VAULT_PASSWORD_MIN_LENGTH must be a whole number")
    return max(MIN_LENGTH, int(raw))


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    """The bundled list, lower-case (loaded once per process, about 8 MB in memory)."""
    data = resources.files("vault_core").joinpath("data/common-passwords.txt.gz").read_bytes()
    return frozenset(gzip.decompress(data).decode("utf-8").split("\n")) - {""}


def password_bytes(password: Any) -> bytes:
    """The password as UTF-8 bytes for bcrypt.

    Raises ``ValidationError`` (never echoing the password) if it is not text, holds a NUL or is longer
    than bcrypt can take.
    """
    if not isinstance(password, str):
        raise ValidationError("the password must be text")
    if "\x00" in password:
        raise ValidationError("the password contains a NUL character")
    data = password.encode("utf-8")
    if len(data) > MAX_BYTES:
        raise ValidationError(f"passwords longer than {MAX_BYTES} bytes (UTF-8) are not supported "
                              "(bcrypt limit): choose a shorter one")
    return data


def _is_common(lowered: str) -> bool:
    listed = common_passwords()
    if lowered in listed:
        return True
    core = lowered.strip(_AFFIX)
    return len(lowered) - len(core) <= _MAX_AFFIX and len(core) >= 3 and core in listed


def _is_pattern(lowered: str) -> bool:
    for period in range(1, len(lowered) // 2 + 1):  # a unit repeated: aaaa…, abab…, hunter2hunter2
        unit = lowered[:period]
        if (unit * (len(lowered) // period + 1))[:len(lowered)] == lowered:
            return True
    for seq in _SEQUENCES:  # a run along a sequence, forwards or backwards, wrapping around
        ring = seq * (len(lowered) // len(seq) + 2)
        if lowered in ring or lowered[::-1] in ring:
            return True
    return False


def check_new_password(password: Any, *, user: str, same_as_current: Callable[[bytes], bool] | None = None
                       ) -> bytes:
    """Check a password someone wants to set for ``user``; return its bytes for hashing.

    ``same_as_current`` tells whether the candidate equals the user's current (or one-time) password.
    Raises ``ValidationError`` naming the rule that failed, never the password.
    """
    data = password_bytes(password)
    if len(password) < min_length():
        raise ValidationError(f"the password must have at least {min_length()} characters")
    lowered = password.casefold()
    if not password.strip():
        raise ValidationError("the password cannot be only spaces")
    if _is_pattern(lowered):
        raise ValidationError("the password is a run of repeated or sequential characters")
    if _is_common(lowered):
        raise ValidationError("the password is on the list of common or breached passwords")
    name = user.casefold()
    if any(len(part) >= 3 and part in lowered for part in {name, name.split("@")[0]}):
        raise ValidationError("the password contains the user name")
    if same_as_current is not None and same_as_current(data):
        raise ValidationError("the new password must differ from the current (or one-time) password")
    return data
