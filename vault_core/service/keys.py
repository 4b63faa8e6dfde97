"""The unsealed keys of one vault, held in memory while it is unlocked."""

from __future__ import annotations

from ..errors import Sealed


class UnsealedKeys:
    """Key material of an unlocked vault (never printed)."""

    __slots__ = ("barrier", "audit_key", "hash_key", "cookie_key", "master")

    def __repr__(self) -> str:
        return "UnsealedKeys(<redacted>)"


class KeyHolder:
    """The keys while unsealed, nothing while sealed. Every service reads them from here."""

    __slots__ = ("_keys", "source")

    def __init__(self) -> None:
        self._keys: UnsealedKeys | None = None
        self.source: str | None = None  # where the master key came from (env, key-file, passphrase-file, ...)

    @property
    def sealed(self) -> bool:
        return self._keys is None

    def get(self) -> UnsealedKeys:
        """The keys. Raises ``Sealed`` when the vault is locked."""
        keys = self._keys
        if keys is None:
            raise Sealed("the vault is sealed: unlock it with its master key or passphrase")
        return keys

    def hold(self, keys: UnsealedKeys) -> None:
        self._keys = keys

    def forget(self) -> None:
        self._keys = None

    def __repr__(self) -> str:
        return f"KeyHolder(sealed={self.sealed})"
