"""Keyed MACs over the rows that decide who may do what, and over the vault's state row.

Storage is untrusted: someone with write access to the database file but no master key could otherwise
make themselves admin by editing ``principals.roles``. Every protected row carries
``HMAC-SHA256(row key, table | canonical content)`` and each protected table has a digest (a MAC over the
sorted row MACs) kept in the state row, whose own MAC also covers the audit chain head. So an edited or
forged row fails its MAC, and a deleted row brought back or an older copy restored changes its table's
digest; restoring an older state row as well either breaks its MAC (the head moved on) or the audit chain.
The row key is derived from the audit key, which survives master-key changes.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Iterable, Sequence
from typing import Any

_ENCODE = json.JSONEncoder(separators=(",", ":"), ensure_ascii=True).encode


_AS_IS = frozenset({str, int, float, type(None)})  # encoded by JSON as they are (bool is not among them)


def _plain(value: Any) -> Any:
    if isinstance(value, bool):  # SQLite hands booleans back as 0/1
        return int(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    return value


class RowSeal:
    """The row key of one unlocked vault, and the digests this process has already checked."""

    __slots__ = ("_key", "checked", "state", "_static", "verified")

    def __init__(self, audit_key: bytes):
        self._key = hmac.digest(audit_key, b"vault-core/row-integrity/v1", "sha256")
        # table -> (digest, {row key: MAC}, audit seq) last found consistent; advanced by this process's
        # changes, caught up or rescanned when another process moved the digest
        self.checked: dict[str, tuple[bytes, dict[tuple, bytes], int]] = {}
        self.verified: dict[bytes, tuple] = {}  # row MAC -> the row content it was found to match
        self.state: tuple[tuple, bytes] | None = None  # (state row values, their MAC) last written or checked
        self._static: tuple[tuple, bytes] | None = None  # the state row's slow-moving part, encoded once

    def mac(self, table: str, values: Sequence[Any]) -> bytes:
        """The MAC binding ``values`` (a row's columns, in table order) to ``table``."""
        plain = [v if v.__class__ in _AS_IS else _plain(v) for v in values]  # most columns: no call
        return hmac.digest(self._key, (table + "|" + _ENCODE(plain)).encode(), "sha256")

    def state_mac(self, static: tuple, seq: int, head: bytes) -> bytes:
        """The state row's MAC: its slow-moving part (identity, rules version, digests), encoded once per
        change of it, then the audit head, which moves with every operation."""
        if self._static is None or self._static[0] != static:
            self._static = (static, ("vault_state|" + _ENCODE([_plain(v) for v in static])).encode())
        return hmac.digest(self._key, self._static[1] + b"|%d|" % seq + bytes(head), "sha256")

    def digest(self, table: str, macs: Iterable[bytes]) -> bytes:
        """The digest of the set of row MACs of ``table``: a sum of keyed terms, so a change advances it by
        its own rows alone (``moved``) and a row changed behind the vault's back stays a mismatch for good."""
        return self.moved(bytes(32), table, (), macs)

    def moved(self, digest: bytes, table: str, removed: Iterable[bytes], added: Iterable[bytes]) -> bytes:
        """``digest`` after the rows with MACs ``removed`` left ``table`` and those with ``added`` came."""
        total = int.from_bytes(digest, "big")
        for sign, macs in ((-1, removed), (1, added)):
            for m in macs:
                total += sign * int.from_bytes(hmac.digest(self._key, table.encode() + b"#" + bytes(m), "sha256"),
                                               "big")
        return (total % (1 << 256)).to_bytes(32, "big")

    def __repr__(self) -> str:
        return "RowSeal(<redacted>)"
