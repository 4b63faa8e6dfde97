"""The one owner of the associated data: every stored version is sealed and opened here.

A version's ciphertext is bound to its environment, secret id, name and
version number, so a ciphertext copied to another row (or another version
of the same row) fails authentication instead of decrypting as something
else. Callers pass the secret's row (``environment``, ``id``, ``name``,
``salt``) and the version; nobody else builds the associated data.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .barrier import Barrier


def secret_aad(environment: str, secret_id: str, name: str, version: int) -> bytes:
    """Associated data for one stored version of one secret. Raises nothing."""
    return f"vault/secret/v1\x00{environment}\x00{secret_id}\x00{name}\x00{version}".encode()


def _aad(secret: Mapping[str, Any], version: int) -> bytes:
    return secret_aad(secret["environment"], secret["id"], secret["name"], version)


def seal_version(barrier: Barrier, secret: Mapping[str, Any], version: int, plaintext: bytes) -> bytes:
    """The ciphertext of ``plaintext`` as ``version`` of ``secret``. Raises nothing of its own."""
    return barrier.seal(plaintext, salt=secret["salt"], aad=_aad(secret, version))


def open_version(barrier: Barrier, secret: Mapping[str, Any], version: int, blob: bytes) -> bytes:
    """The plaintext of ``version`` of ``secret``. Raises ``IntegrityError`` when it was tampered with or moved."""
    return barrier.open(blob, salt=secret["salt"], aad=_aad(secret, version))


def reseal_version(barrier: Barrier, secret: Mapping[str, Any], version: int, blob: bytes) -> bytes:
    """The same plaintext sealed under the active key term (re-encryption). Raises ``IntegrityError``."""
    aad = _aad(secret, version)
    return barrier.seal(barrier.open(blob, salt=secret["salt"], aad=aad), salt=secret["salt"], aad=aad)



def _bound_aad(purpose: str, principal: str) -> bytes:
    return f"vault/bound/v1\x00{purpose}\x00{principal}".encode()


def seal_bound(barrier: Barrier, purpose: str, principal: str, salt: bytes, plaintext: bytes) -> bytes:
    """``plaintext`` sealed under the active term for one (``purpose``, ``principal``), e.g. a user's TOTP
    secret: copied to another user or used for another purpose it fails authentication. Raises nothing."""
    return barrier.seal(plaintext, salt=salt, aad=_bound_aad(purpose, principal))


def open_bound(barrier: Barrier, purpose: str, principal: str, salt: bytes, blob: bytes) -> bytes:
    """The plaintext ``seal_bound`` sealed for (``purpose``, ``principal``).

    Raises ``IntegrityError`` when it was tampered with or moved to another purpose or principal.
    """
    return barrier.open(blob, salt=salt, aad=_bound_aad(purpose, principal))
