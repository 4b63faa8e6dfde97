"""The one writer of secret versions: seal, open, a new CURRENT, PENDING staged and promoted, delete and destroy.

Every method works inside the caller's attempt (``Runner.attempt``) and its
transaction; none opens a transaction of its own. Values are sealed and
opened through ``crypto.sealer`` (the one owner of the associated data) with
a barrier whose keyring is brought up to date in that same transaction.

The value format inside the ciphertext: one byte saying whether the caller
stored text (``s``) or bytes (``b``), then the bytes.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

from ..crypto import sealer
from ..errors import Conflict
from ..storage import repos
from ..storage.tx import Tx
from ..types import Clock
from ..validate import DEFAULT_MAX_VALUE_BYTES, check_value
from .keys import KeyHolder, refreshed
from .runner import Attempt

Row = Mapping[str, Any]


def encode_plain(data: bytes, is_text: bool) -> bytes:
    """The stored plaintext: a kind byte (text or bytes), then the data. Raises nothing."""
    return (b"s" if is_text else b"b") + data


def decode_plain(plain: bytes) -> str | bytes:
    """The value as the caller stored it (str or bytes). Raises ``UnicodeDecodeError`` on a corrupt text value."""
    kind, body = plain[:1], plain[1:]
    return body.decode("utf-8") if kind == b"s" else body


class VersionWriter:
    """Seals, opens and moves the versions of secrets; keeps CURRENT/PREVIOUS/PENDING and max_versions."""

    def __init__(self, keys: KeyHolder, clock: Clock, max_value_bytes: int = DEFAULT_MAX_VALUE_BYTES):
        self._keys, self._clock = keys, clock
        self.max_value_bytes = max_value_bytes  # the largest value accepted, in bytes

    # -- values -----------------------------------------------------------------------------------
    def encode(self, value: Any) -> bytes:
        """The plaintext to seal for ``value`` (str or bytes). Raises ``ValidationError`` (type, size)."""
        return encode_plain(check_value(value, self.max_value_bytes), isinstance(value, str))

    def seal(self, att: Attempt, row: Row, version: int, data: bytes, state: str) -> None:
        """Insert ``data`` as ``version`` of ``row`` in ``state``; counts the seal and records its keyed hash.

        Raises ``Sealed``, ``StorageError``.
        """
        keys = self._keys.get()
        barrier = refreshed(keys, att.tx)
        blob = sealer.seal_version(barrier, row, version, data)
        term = barrier.term_of(blob)
        repos.versions.insert_version(att.tx, secret_id=row["id"], version=version, ciphertext=blob, key_term=term,
                                      state=state, created_at=self._clock(), created_by=att.ctx.user_id)
        repos.keys.count_encryptions(att.tx, term)
        att.value_hash = hmac.new(keys.hash_key, data[1:], hashlib.sha256).hexdigest()

    def open_plain(self, tx: Tx, row: Row, version: int, blob: bytes) -> bytes:
        """The stored plaintext (kind byte included). Raises ``Sealed``, ``IntegrityError`` (tampered, moved)."""
        return sealer.open_version(refreshed(self._keys.get(), tx, blob), row, version, blob)

    def open(self, tx: Tx, row: Row, version: int, blob: bytes) -> str | bytes:
        """The value as stored (str or bytes). Raises ``Sealed``, ``IntegrityError``."""
        return decode_plain(self.open_plain(tx, row, version, blob))

    # -- CURRENT ----------------------------------------------------------------------------------
    def create(self, att: Attempt, values: Mapping[str, Any], data: bytes) -> None:
        """Insert a new secret row (``values``) with ``data`` as its version 1. Raises ``Sealed``, ``StorageError``."""
        repos.secrets.insert_secret(att.tx, **values)
        repos.secrets.count_secret(att.tx, values["environment"], values["secret_type"], 1)
        att.secret_id, att.version = values["id"], 1
        self.seal(att, values, 1, data, "current")

    def write(self, att: Attempt, row: Row, data: bytes, *, cas: int | None,
              extra: Mapping[str, Any] | None = None) -> int:
        """Write ``data`` as the next CURRENT version (the old one becomes PREVIOUS); returns its number.

        A direct write supersedes a staged rotation: its PENDING slot (current + 1) is
        freed first, so the rotation then fails its check-and-set. ``extra``: other
        columns of the secret to set. Raises ``Conflict`` (``cas`` is not the current
        version, or a concurrent change), ``Sealed``, ``StorageError``.
        """
        current = row["current_version"]
        repos.versions.delete_pending(att.tx, row["id"], current + 1)
        if cas is not None and cas != current:
            raise Conflict(f"check-and-set failed: {row['environment']}/{row['name']} is at version {current}, "
                           f"not {cas}")
        new = self._advance(att, row, current + 1, extra)
        self.seal(att, row, new, data, "current")
        self._prune(att, row, new)
        return new

    def stage(self, att: Attempt, row: Row, pending: int, data: bytes) -> bytes:
        """Seal ``data`` as PENDING version ``pending``; returns its ciphertext (to recognise it later).

        Raises ``Sealed``, ``StorageError``.
        """
        self.seal(att, row, pending, data, "pending")
        att.version = pending
        return repos.versions.version_blob(att.tx, row["id"], pending)

    def discard(self, tx: Tx, secret_id: str, pending: int, blob: bytes | None = None) -> None:
        """Delete a PENDING version (only if its ciphertext is still ``blob``, when given). Raises ``StorageError``."""
        repos.versions.delete_pending(tx, secret_id, pending, blob)

    def promote(self, att: Attempt, row: Row, pending: int, extra: Mapping[str, Any] | None = None) -> None:
        """Make PENDING version ``pending`` CURRENT (the old CURRENT becomes PREVIOUS).

        Raises ``Conflict`` (a concurrent change), ``StorageError``.
        """
        self._advance(att, row, pending, extra)
        repos.versions.set_version_state(att.tx, row["id"], pending, "current")
        self._prune(att, row, pending)

    def _advance(self, att: Attempt, row: Row, new: int, extra: Mapping[str, Any] | None) -> int:
        """Point the secret at ``new`` with check-and-set on its current version; demote the rest."""
        current, sid = row["current_version"], row["id"]
        values = dict(current_version=new, previous_version=current, updated_at=self._clock(),
                      updated_by=att.ctx.user_id)
        values.update(extra or {})
        if not repos.secrets.cas_update_secret(att.tx, sid, current, **values):
            raise Conflict(f"check-and-set failed: {row['environment']}/{row['name']} changed concurrently")
        repos.versions.demote_versions(att.tx, sid, keep=[current, new])
        repos.versions.set_version_state(att.tx, sid, current, "previous")
        att.version = new
        return new

    def _prune(self, att: Attempt, row: Row, new: int) -> None:
        """Keep at most ``max_versions`` versions (and always the PREVIOUS one)."""
        repos.versions.prune_versions(att.tx, row["id"], below=new - row["max_versions"] + 1,
                                      keep=[row["current_version"]])

    # -- deletion -------------------------------------------------------------------------------
    def soft_delete(self, att: Attempt, row: Row) -> None:
        """Mark the secret deleted (reads return None; ``undelete`` brings it back). Raises ``StorageError``."""
        now = self._clock()
        repos.secrets.update_secret(att.tx, row["id"], deleted_at=now, updated_at=now, updated_by=att.ctx.user_id)
        repos.secrets.count_secret(att.tx, row["environment"], row["secret_type"], -1)

    def undelete(self, att: Attempt, row: Row) -> None:
        """Undo a soft delete. Raises ``StorageError``."""
        repos.secrets.update_secret(att.tx, row["id"], deleted_at=None, updated_at=self._clock(),
                                    updated_by=att.ctx.user_id)
        repos.secrets.count_secret(att.tx, row["environment"], row["secret_type"], 1)

    def destroy(self, att: Attempt, row: Row) -> None:
        """Delete the secret, every version and its policy rules. Irreversible. Raises ``StorageError``."""
        repos.secrets.purge_secret(att.tx, row["id"])
        if row["deleted_at"] is None:
            repos.secrets.count_secret(att.tx, row["environment"], row["secret_type"], -1)
        repos.rules.delete_rules_of_secret(att.tx, row["id"])
        repos.state.bump_rules_version(att.tx)

    def retype(self, att: Attempt, row: Row, new_type: str) -> None:
        """Move a live secret between the per-type counters when its type changes. Raises ``StorageError``."""
        if new_type != row["secret_type"] and row["deleted_at"] is None:
            repos.secrets.count_secret(att.tx, row["environment"], row["secret_type"], -1)
            repos.secrets.count_secret(att.tx, row["environment"], new_type, 1)

    def __repr__(self) -> str:
        return f"VersionWriter(max_value_bytes={self.max_value_bytes})"
