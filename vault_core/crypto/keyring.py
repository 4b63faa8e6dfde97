"""Numbered key terms, wrapped by the master key (HashiCorp Vault's keyring).

Term keys are random 256-bit keys; the master key only wraps them, so the
master key can change (re-wrap) without touching any secret, and a new term
can be added without re-encrypting anything at once.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime, timezone

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ..errors import InvalidKey

# NIST SP 800-38D allows at most 2^32 random-nonce encryptions under one key:
ROTATE_BEFORE = 2**31  # force a new term well before that hard limit


@dataclass(frozen=True)
class KeyTerm:
    """One numbered data key. ``key`` never appears in repr."""

    term: int
    key: bytes = field(repr=False)
    created_at: datetime | None = None


def _wrap_aad(purpose: str, term: int) -> bytes:
    return f"vault/keyring/v1/{purpose}/{term}".encode()


def wrap_key(master_key: bytes, purpose: str, term: int, key: bytes) -> bytes:
    """Encrypt a key under the master key, bound to its purpose and term."""
    nonce = os.urandom(12)
    return nonce + AESGCM(master_key).encrypt(nonce, key, _wrap_aad(purpose, term))


def unwrap_key(master_key: bytes, purpose: str, term: int, blob: bytes) -> bytes:
    """Decrypt a wrapped key; a wrong master key raises ``InvalidKey``."""
    try:
        return AESGCM(master_key).decrypt(blob[:12], blob[12:], _wrap_aad(purpose, term))
    except (InvalidTag, ValueError):
        raise InvalidKey("the master key does not open this vault (wrong key or passphrase)") from None


def load_keyring(master_key: bytes, rows, known: "Keyring | None" = None) -> "Keyring":
    """A keyring from stored ``data`` rows; terms already in ``known`` are not unwrapped again."""
    terms = []
    for row in rows:
        have = known.get(row["term"]) if known is not None else None
        if have is not None:
            terms.append(have)
            continue
        created = row["created_at"]
        terms.append(KeyTerm(row["term"], unwrap_key(master_key, "data", row["term"], row["wrapped"]),
                             datetime.fromtimestamp(created / 1e6, tz=timezone.utc) if created else None))
    return Keyring(terms)


class Keyring:
    """An immutable set of key terms; the highest term encrypts, all terms decrypt."""

    __slots__ = ("_terms", "active")

    def __init__(self, terms: list[KeyTerm]):
        if not terms:
            raise InvalidKey("the keyring is empty")
        self._terms = {t.term: t for t in terms}
        self.active = self._terms[max(self._terms)]

    def get(self, term: int) -> KeyTerm | None:
        return self._terms.get(term)

    @property
    def terms(self) -> list[int]:
        return sorted(self._terms)

    def with_term(self, term: KeyTerm) -> "Keyring":
        """A new keyring with ``term`` added (it becomes active when highest)."""
        return Keyring([*self._terms.values(), term])

    def __repr__(self) -> str:
        return f"Keyring(terms={self.terms}, active={self.active.term})"
