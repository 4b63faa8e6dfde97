"""Time-based one-time passwords (RFC 6238, through ``pyotp``) and recovery codes for console users.

Pure functions: what to store and how to check it. The caller keeps the TOTP secret encrypted under
the barrier, the recovery codes as keyed hashes, and the last accepted time step, so that a code is
accepted once: a replay within its window (or an older code) is refused.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import secrets as pysecrets
import time

import pyotp

ISSUER = "vault-core"
DIGITS = 6
PERIOD = 30
WINDOW = 1  # steps either side: a phone clock 30 s off still works
RECOVERY_CODES = 10
_RECOVERY_ALPHABET = "23456789abcdefghjkmnpqrstuvwxyz"  # no 0/o, 1/l/i


def new_secret() -> str:
    """A fresh 160-bit base32 TOTP secret (RFC 4226's recommended length)."""
    return pyotp.random_base32(32)


def provisioning_uri(secret: str, user: str, issuer: str = ISSUER) -> str:
    """The ``otpauth://`` URI an authenticator app reads from the enrolment QR code."""
    return pyotp.TOTP(secret, digits=DIGITS, interval=PERIOD).provisioning_uri(name=user, issuer_name=issuer)


def qr_svg(uri: str) -> str:
    """The enrolment QR code as an SVG document (drawn locally by ``segno``: nothing leaves the host)."""
    import segno

    buf = io.BytesIO()
    segno.make(uri, error="m").save(buf, kind="svg", scale=5, border=2, xmldecl=False)
    return buf.getvalue().decode("ascii")


def _normalise(code: str) -> str | None:
    digits = "".join(str(code).split())
    return digits if len(digits) == DIGITS and digits.isdigit() else None


def accepted_step(secret: str, code: str, *, last_step: int | None, now: float | None = None) -> int | None:
    """The time step ``code`` belongs to if it is valid now and newer than ``last_step``, else None.

    Store the returned step as the new ``last_step``: that is what makes each code single-use.
    """
    digits = _normalise(code)
    if digits is None:
        return None
    totp = pyotp.TOTP(secret, digits=DIGITS, interval=PERIOD)
    now = time.time() if now is None else now
    step_now = int(now // PERIOD)
    for step in range(step_now - WINDOW, step_now + WINDOW + 1):
        if hmac.compare_digest(totp.at(step * PERIOD), digits):
            return step if last_step is None or step > last_step else None
    return None


def new_recovery_codes() -> list[str]:
    """Ten one-time recovery codes (``xxxxx-xxxxx``, about 50 bits each), shown once."""
    def one() -> str:
        raw = "".join(pysecrets.choice(_RECOVERY_ALPHABET) for _ in range(10))
        return f"{raw[:5]}-{raw[5:]}"
    return [one() for _ in range(RECOVERY_CODES)]


def recovery_hash(key: bytes, user: str, code: str) -> str:
    """The keyed hash a recovery code is stored as (bound to its user; the code itself is never stored)."""
    norm = "".join(str(code).lower().split()).replace("-", "")
    return hmac.new(key, f"{user}\x00{norm}".encode(), hashlib.sha256).hexdigest()
