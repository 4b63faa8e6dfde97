"""Seal and open secret values: AES-256-GCM under a per-secret data key.

Byte format (version 1)::

    0x01 | key term (4 bytes, big endian) | nonce (12) | ciphertext + tag (16)

The per-secret data key is HKDF-SHA256(term key, salt = the secret's 128-bit
salt). Associated data binds environment, secret id, name and version, so a
ciphertext moved to another row, version or environment fails its tag check.
"""

from __future__ import annotations

import os
import struct
import threading
import time
from collections import OrderedDict

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ..errors import IntegrityError
from .keyring import Keyring

FORMAT_V1 = 1
_HEADER = struct.Struct(">BI")
HEADER_BYTES = _HEADER.size + 12
_CACHE_SIZE = 65_536  # about 100 bytes each; a miss costs an HKDF + cipher setup (~5 us)


class Barrier:
    """Encrypts and decrypts with a keyring; holds no other state than a key cache.

    Deriving a data key costs a few microseconds; recently used ciphers are
    kept in a small in-process LRU (the process already holds the master key).
    """

    def __init__(self, keyring: Keyring, refresh_s: float = 10.0):
        self.keyring = keyring
        self._ciphers: OrderedDict[tuple[int, bytes], AESGCM] = OrderedDict()
        self._lock = threading.Lock()
        # Another process may add a key term (rotation). The barrier never reads storage
        # itself: ``needs_keyring`` tells the caller to load the newest keyring in its own
        # transaction (``service.keys.refreshed``), so every process moves to the new term.
        self._refresh_s = refresh_s
        self._checked = time.monotonic()

    def needs_keyring(self, blob: bytes | None = None) -> bool:
        """True when the caller should load the newest keyring first: ``blob`` names a term this
        keyring lacks, or (no ``blob``: before a seal) ``refresh_s`` seconds passed since the last load.
        Raises nothing (a malformed ``blob`` is left for ``open`` to refuse).
        """
        if blob is None:
            return time.monotonic() - self._checked > self._refresh_s
        try:
            return self.keyring.get(self.term_of(blob)) is None
        except (struct.error, TypeError):
            return False

    def use(self, keyring: Keyring) -> None:
        """Adopt a newer keyring (a term this process added, or one loaded from storage); never an older one.

        Raises nothing.
        """
        with self._lock:
            if keyring.active.term >= self.keyring.active.term:
                self.keyring = keyring
            self._checked = time.monotonic()

    def _cipher(self, term: int, salt: bytes) -> AESGCM:
        key = (term, salt)
        with self._lock:
            cipher = self._ciphers.get(key)
            if cipher is not None:
                self._ciphers.move_to_end(key)
                return cipher
        kt = self.keyring.get(term)
        if kt is None:
            raise IntegrityError(f"ciphertext names key term {term}, which this keyring does not hold")
        data_key = HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=b"vault/data-key/v1").derive(kt.key)
        cipher = AESGCM(data_key)
        with self._lock:
            self._ciphers[key] = cipher
            if len(self._ciphers) > _CACHE_SIZE:
                self._ciphers.popitem(last=False)
        return cipher

    def seal(self, plaintext: bytes, *, salt: bytes, aad: bytes) -> bytes:
        """Encrypt under the active term with a fresh random 96-bit nonce. Raises nothing of its own."""
        term = self.keyring.active.term
        nonce = os.urandom(12)
        body = self._cipher(term, salt).encrypt(nonce, plaintext, aad)
        return _HEADER.pack(FORMAT_V1, term) + nonce + body

    def open(self, blob: bytes, *, salt: bytes, aad: bytes) -> bytes:
        """Decrypt and authenticate. Raises ``IntegrityError`` (tampered, moved, or an unknown key term)."""
        if not isinstance(blob, (bytes, bytearray, memoryview)) or len(blob) < HEADER_BYTES + 16:
            raise IntegrityError("stored ciphertext is truncated or malformed")
        blob = bytes(blob)
        version, term = _HEADER.unpack_from(blob)
        if version != FORMAT_V1:
            raise IntegrityError(f"unknown ciphertext format {version}")
        nonce = blob[_HEADER.size:HEADER_BYTES]
        try:
            return self._cipher(term, salt).decrypt(nonce, blob[HEADER_BYTES:], aad)
        except InvalidTag:
            raise IntegrityError("stored ciphertext failed authentication (tampered or moved)") from None

    @staticmethod
    def term_of(blob: bytes) -> int:
        """The key term a ciphertext was sealed under. Raises ``struct.error`` on a blob shorter than its header."""
        return _HEADER.unpack_from(bytes(blob))[1]

    def __repr__(self) -> str:
        return f"Barrier({self.keyring!r})"
