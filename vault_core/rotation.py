"""Rotation building blocks: value generators, certificate expiry, failure reasons by kind, results.

Nothing here touches storage or keys; ``service/rotation.py`` stages, tests
and promotes, and ``scheduler.py`` runs due rotations.
"""

from __future__ import annotations

import base64
import secrets
import string
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .errors import ValidationError
from .types import US_PER_DAY, SecretType, to_datetime
from .validate import check_int

_SYMBOLS = "!#$%&()*+,-.:;<=>?@[]^_{|}~"
SCHEDULER_PRINCIPAL = "system:scheduler"
ROTATOR_ROLE = "rotator"


@dataclass(frozen=True)
class PasswordPolicy:
    """Length, character classes and excluded characters of generated passwords."""

    length: int = 32
    lowercase: bool = True
    uppercase: bool = True
    digits: bool = True
    symbols: bool = True
    exclude: str = ""

    def classes(self) -> list[str]:
        chosen = [c for c, on in ((string.ascii_lowercase, self.lowercase), (string.ascii_uppercase, self.uppercase),
                                  (string.digits, self.digits), (_SYMBOLS, self.symbols)) if on]
        return ["".join(ch for ch in c if ch not in self.exclude) for c in chosen]


def generate_password(length: int = 32, *, lowercase: bool = True, uppercase: bool = True, digits: bool = True,
                      symbols: bool = True, exclude: str = "") -> str:
    """A random password holding at least one character of each enabled class, none of ``exclude``."""
    check_int(length, "password length", 1, 4096)
    if not isinstance(exclude, str):
        raise ValidationError("exclude must be a string of characters")
    classes = PasswordPolicy(length, lowercase, uppercase, digits, symbols, exclude).classes()
    if not classes or not all(classes):
        raise ValidationError("the password policy leaves a character class empty")
    if not len(classes) <= length <= 4096:
        raise ValidationError("password length must cover every class and be at most 4096")
    alphabet = "".join(classes)
    while True:  # rejection sampling keeps the choice uniform over policy-conforming passwords
        pw = "".join(secrets.choice(alphabet) for _ in range(length))
        if all(any(ch in c for ch in pw) for c in classes):
            return pw


def password_generator(policy: PasswordPolicy | None = None, **options: Any) -> Callable[[], str]:
    """A generator for ``register_generator``: ``password_generator(length=20, symbols=False)``."""
    pol = policy or PasswordPolicy(**options)
    generate_password(pol.length, lowercase=pol.lowercase, uppercase=pol.uppercase, digits=pol.digits,
                      symbols=pol.symbols, exclude=pol.exclude)  # validate the policy now, not at 3 a.m.

    def generate() -> str:
        return generate_password(pol.length, lowercase=pol.lowercase, uppercase=pol.uppercase,
                                 digits=pol.digits, symbols=pol.symbols, exclude=pol.exclude)
    generate.__name__ = f"password_{pol.length}"
    return generate


def generate_token(nbytes: int = 32) -> str:
    """A URL-safe random token of ``nbytes`` random bytes."""
    check_int(nbytes, "random bytes", 16, 1024)
    return secrets.token_urlsafe(nbytes)


def generate_key(nbytes: int = 32) -> str:
    """A random encryption key, base64-encoded (256 bits by default)."""
    check_int(nbytes, "random bytes", 16, 1024)
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


def certificate_expiry(value: str | bytes) -> datetime | None:
    """The earliest ``not_valid_after`` of the PEM certificates in ``value`` (UTC), or None.

    A bundle (leaf + chain, or cert + key) is valid only while all its
    certificates are, hence the minimum. Anything unparseable gives None.
    """
    from cryptography import x509

    data = value.encode() if isinstance(value, str) else bytes(value)
    if b"-----BEGIN CERTIFICATE-----" not in data:
        return None
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError:
        return None
    return min(c.not_valid_after_utc for c in certs) if certs else None


def failure_reason(step: str, exc: BaseException) -> str:
    """``"<step> failed (<exception class>)"``: what a failed generator or hook is recorded as.

    Never the exception's message: a hook's text may carry the old value, the new one or an
    encoding of either (``f"old={old}"``), and it would land in the audit log and the error.
    """
    return f"{step} failed ({type(exc).__name__})"


# -- results and reminders (plain data for the console and the CLI) ------------------------------
SCHEDULER_LEASE = "rotation-scheduler"
REMINDER_WINDOWS = (7, 30, 90)


@dataclass
class RotationResult:
    """One secret handled by ``rotate_due``: outcome rotated, skipped or failed."""

    secret_id: str
    outcome: str
    version: int | None = None
    reason: str = ""


@dataclass
class RotationRun:
    """What one ``rotate_due`` call did; ``lease`` is False when another process held the scheduler lease."""

    lease: bool = False
    results: list[RotationResult] = field(default_factory=list)

    @property
    def rotated(self) -> list[RotationResult]:
        return [r for r in self.results if r.outcome == "rotated"]

    @property
    def failed(self) -> list[RotationResult]:
        return [r for r in self.results if r.outcome == "failed"]

    def summary(self) -> dict[str, Any]:
        return {"lease": self.lease, "rotated": len(self.rotated), "failed": len(self.failed),
                "skipped": sum(r.outcome == "skipped" for r in self.results)}

    def to_dict(self) -> dict[str, Any]:
        """Counts and one entry per secret (ids, versions, reasons; never values), for JSON output."""
        from dataclasses import asdict

        return {**self.summary(), "results": [asdict(r) for r in self.results]}


def remind(rows, now: int) -> dict[str, list[dict[str, Any]]]:
    """Sort secrets into reminder buckets (each secret at most once per kind).

    Rotation: ``overdue`` (due more than a day ago: the scheduler is not
    keeping up), ``due`` (due now), ``due_7d`` (due within 7 days).
    Expiry: ``expired``, then ``expiring_7d`` / ``expiring_30d`` / ``expiring_90d``
    (exclusive: a secret expiring in 3 days is only in ``expiring_7d``).
    """
    out: dict[str, list[dict[str, Any]]] = {k: [] for k in (
        "overdue", "due", "due_7d", "expired", *(f"expiring_{d}d" for d in REMINDER_WINDOWS))}
    for r in rows:
        item = {"secret_id": r["id"], "environment": r["environment"], "name": r["name"],
                "secret_type": r["secret_type"], "next_rotation_at": to_datetime(r["next_rotation_at"]),
                "expires_at": to_datetime(r["expires_at"]), "last_rotated_at": to_datetime(r["last_rotated_at"])}
        nxt, exp = r["next_rotation_at"], r["expires_at"]
        if nxt is not None:
            item["rotation_days_left"] = round((nxt - now) / US_PER_DAY, 2)
            if nxt <= now - US_PER_DAY:
                out["overdue"].append(item)
            elif nxt <= now:
                out["due"].append(item)
            elif nxt <= now + 7 * US_PER_DAY:
                out["due_7d"].append(item)
        if exp is not None:
            item["expiry_days_left"] = round((exp - now) / US_PER_DAY, 2)
            if exp <= now:
                out["expired"].append(item)
            else:
                for days in REMINDER_WINDOWS:
                    if exp <= now + days * US_PER_DAY:
                        out[f"expiring_{days}d"].append(item)
                        break
    return out


def schedule_item(r, now: int) -> dict[str, Any]:
    """One row of the rotation schedule (metadata only)."""
    return {"secret_id": r["id"], "environment": r["environment"], "name": r["name"],
            "secret_type": r["secret_type"], "generator": r["generator"],
            "rotation_interval_days": r["rotation_interval_days"], "next_rotation_at": to_datetime(r["next_rotation_at"]),
            "last_rotated_at": to_datetime(r["last_rotated_at"]), "overdue": r["next_rotation_at"] <= now}


def history_item(r) -> dict[str, Any]:
    """One rotation event from its audit row: who, when, which version, outcome and why."""
    return {"seq": r["seq"], "at": to_datetime(r["ts"]), "principal": r["principal"], "operation": r["operation"],
            "environment": r["environment"], "secret_id": r["secret_id"], "name": r["secret_name"],
            "version": r["version"], "outcome": r["outcome"], "reason": r["reason"]}
