"""Value generators for rotation: passwords with a policy, URL-safe tokens, random keys."""

from __future__ import annotations

import base64
import secrets
import string
from collections.abc import Callable

from .errors import ValidationError
from .models import SecretType

_SYMBOLS = "!#$%&()*+,-.:;<=>?@[]^_{|}~"


def generate_password(length: int = 32, *, lowercase: bool = True, uppercase: bool = True, digits: bool = True,
                      symbols: bool = True, exclude: str = "") -> str:
    """A random password holding at least one character of each enabled class."""
    classes = [c for c, on in ((string.ascii_lowercase, lowercase), (string.ascii_uppercase, uppercase),
                               (string.digits, digits), (_SYMBOLS, symbols)) if on]
    classes = ["".join(ch for ch in c if ch not in exclude) for c in classes]
    if not classes or not all(classes):
        raise ValidationError("the password policy leaves a character class empty")
    if not len(classes) <= length <= 4096:
        raise ValidationError("password length must cover every class and be at most 4096")
    alphabet = "".join(classes)
    while True:
        pw = "".join(secrets.choice(alphabet) for _ in range(length))
        if all(any(ch in c for ch in pw) for c in classes):
            return pw


def generate_token(nbytes: int = 32) -> str:
    """A URL-safe random token of ``nbytes`` random bytes."""
    return secrets.token_urlsafe(nbytes)


def generate_key(nbytes: int = 32) -> str:
    """A random encryption key, base64-encoded (256 bits by default)."""
    return base64.b64encode(secrets.token_bytes(nbytes)).decode()


BUILTIN_GENERATORS: dict[str, Callable[[], str]] = {
    "password": generate_password,
    "token": generate_token,
    "key": generate_key,
}

_DEFAULT_FOR_TYPE = {
    SecretType.PASSWORD: "password",
    SecretType.ENCRYPTION_KEY: "key",
}


def default_generator_name(secret_type: str) -> str:
    """The built-in generator a type rotates with when none was chosen."""
    return _DEFAULT_FOR_TYPE.get(SecretType.parse(secret_type), "token")
