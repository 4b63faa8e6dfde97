"""The unsealed keys of one vault, held in memory while it is unlocked."""

from __future__ import annotations

import hmac
from pathlib import Path

from ..crypto import Barrier
from ..crypto.keyring import load_keyring, unwrap_key
from ..crypto.masterkey import read_key_file, resolve_staged, staged_path
from ..errors import InvalidKey, Sealed
from ..storage import Storage, repos
from ..storage.tx import Tx


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
        """Keep ``keys`` (the vault is unsealed). Raises nothing."""
        self._keys = keys

    def forget(self) -> None:
        """Drop the keys (the vault is sealed). Raises nothing."""
        self._keys = None

    def __repr__(self) -> str:
        return f"KeyHolder(sealed={self.sealed})"


def refreshed(keys: UnsealedKeys, tx: Tx, blob: bytes | None = None, *, force: bool = False) -> Barrier:
    """The barrier, its keyring first brought up to date inside the caller's transaction ``tx`` when needed.

    Needed before a seal every few seconds (another process may have added a key term) and
    before opening a ``blob`` sealed under a term this process does not hold yet. Never opens
    a transaction of its own; ``force`` loads in any case. Raises ``InvalidKey`` (the master key
    changed), ``StorageError``.
    """
    barrier = keys.barrier
    if force or barrier.needs_keyring(blob):
        barrier.use(load_keyring(keys.master, repos.keys.wrapped_keys_of(tx, "data"), barrier.keyring))
    return barrier


def unseal(storage: Storage, master: bytes, key_file: Path | None) -> UnsealedKeys:
    """Unwrap the keyring and the audit/cookie keys of an initialised vault with ``master``.

    Also finishes an interrupted master-key change (``crypto.masterkey.resolve_staged``): when
    ``key_file`` has a staged successor that opens the vault, it becomes the key file.
    Raises ``InvalidKey`` (wrong key, or not a vault of this software), ``StorageError``.
    """
    with storage.transaction(write=False) as tx:
        rows = repos.keys.wrapped_keys_of(tx)
    try:
        other = _unwrap_other(master, rows)
    except InvalidKey:
        staged = staged_path(key_file) if key_file is not None else None
        if staged is None or not staged.exists():
            raise
        try:  # a change committed in the database but not yet in the key file
            master = read_key_file(staged)
        except Sealed:
            raise InvalidKey("an interrupted master-key change left master.key.new: "
                             "unlock with the new passphrase") from None
        other = _unwrap_other(master, rows)
    if "audit" not in other:
        raise InvalidKey("the vault has no audit key: it was not initialised by this software")
    keys = UnsealedKeys()
    keys.barrier = Barrier(load_keyring(master, [r for r in rows if r["purpose"] == "data"]))
    keys.audit_key = other["audit"]
    keys.hash_key = hmac.new(other["audit"], b"vault/audit-hash/v1", "sha256").digest()
    keys.cookie_key = other.get("cookie")
    keys.master = master
    if key_file is not None:
        resolve_staged(key_file, master)
    return keys


def _unwrap_other(master: bytes, rows) -> dict[str, bytes]:
    return {r["purpose"]: unwrap_key(master, r["purpose"], r["term"], r["wrapped"])
            for r in rows if r["purpose"] != "data"}
