"""Master key sources: a 0600 key file, ``VAULT_MASTER_KEY``, or a passphrase-wrapped file.

The expensive KDF (scrypt N=2^17, Argon2id m=19 MiB t=2, or PBKDF2-SHA256
600,000 iterations) runs once, at unlock; never per operation.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from ..errors import InvalidKey, Sealed, ValidationError

KEY_FILE_NAME = "master.key"
FORMAT = "vault-master-key/v1"
KDFS = ("scrypt", "argon2id", "pbkdf2-sha256")
_SCRYPT = {"n": 2**17, "r": 8, "p": 1}
_ARGON2 = {"memory_cost": 19 * 1024, "iterations": 2, "lanes": 1}
_PBKDF2_ITERATIONS = 600_000


@dataclass(frozen=True)
class MasterKeySource:
    """Where the master key came from (logged by kind, never by value)."""

    kind: str  # "explicit", "environment", "key-file", "passphrase-file"
    path: str | None = None


def generate_master_key() -> bytes:
    """256 random bits from the OS."""
    return os.urandom(32)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def decode_key(text: str) -> bytes:
    """Decode a base64 (standard or URL-safe) 256-bit key, or raise ``InvalidKey``."""
    try:
        raw = base64.b64decode(text.strip().replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidKey("the master key is not valid base64") from None
    if len(raw) != 32:
        raise InvalidKey("the master key must be 32 bytes (256 bits) encoded in base64")
    return raw


def _derive_kek(passphrase: str, kdf: str, params: dict) -> bytes:
    secret = passphrase.encode("utf-8")
    salt = base64.b64decode(params["salt"])
    if kdf == "scrypt":
        return Scrypt(salt=salt, length=32, n=params["n"], r=params["r"], p=params["p"]).derive(secret)
    if kdf == "pbkdf2-sha256":
        return PBKDF2HMAC(hashes.SHA256(), 32, salt, params["iterations"]).derive(secret)
    if kdf == "argon2id":
        from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

        return Argon2id(salt=salt, length=32, iterations=params["iterations"], lanes=params["lanes"],
                        memory_cost=params["memory_cost"]).derive(secret)
    raise InvalidKey(f"unknown key derivation '{kdf}' in key file")


def _create_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def write_key_file(path: str | Path, key: bytes, *, passphrase: str | None = None, kdf: str = "scrypt") -> Path:
    """Create a new key file (0600, never overwriting), optionally passphrase-wrapped."""
    path = Path(path)
    if len(key) != 32:
        raise ValidationError("a master key is 32 bytes")
    doc: dict = {"format": FORMAT, "check": key_check(key)}
    if passphrase is None:
        doc.update(kdf="none", key=_b64(key))
    else:
        if not isinstance(passphrase, str) or len(passphrase) < 8:
            raise ValidationError("a passphrase needs at least 8 characters")
        if kdf not in KDFS:
            raise ValidationError(f"kdf must be one of {', '.join(KDFS)}")
        params: dict = {"salt": _b64(os.urandom(16))}
        params.update({"scrypt": _SCRYPT, "argon2id": _ARGON2}.get(kdf, {"iterations": _PBKDF2_ITERATIONS}))
        kek = _derive_kek(passphrase, kdf, params)
        nonce = os.urandom(12)
        doc.update(kdf=kdf, params=params, nonce=_b64(nonce),
                   wrapped=_b64(AESGCM(kek).encrypt(nonce, key, FORMAT.encode())))
    _create_private(path, json.dumps(doc).encode())
    return path


def key_check(key: bytes) -> str:
    """A public fingerprint of a master key (HMAC of a constant): tells two keys apart, reveals nothing."""
    import hmac

    return hmac.new(key, b"vault/master-key-check/v1", "sha256").hexdigest()[:32]


def staged_path(path: str | Path) -> Path:
    return Path(str(path) + ".new")


def stage_key_file(path: str | Path, key: bytes, *, passphrase: str | None = None, kdf: str = "scrypt") -> Path:
    """Write the next key file beside the current one (``master.key.new``), fsynced.

    A master-key change is: stage the new file → commit the re-wrapped keys in
    the database → ``commit_key_file``. A crash between leaves both files; the
    next unlock finds out which one the database matches (``resolve_staged``).
    """
    new = staged_path(path)
    new.unlink(missing_ok=True)
    return write_key_file(new, key, passphrase=passphrase, kdf=kdf)


def commit_key_file(path: str | Path) -> None:
    """Atomically replace the key file with the staged one and make the rename durable."""
    path = Path(path)
    os.replace(staged_path(path), path)
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def resolve_staged(path: str | Path, working_key: bytes) -> None:
    """After an unlock with ``working_key``: keep the staged file if it holds that key, else drop it."""
    new = staged_path(path)
    if not new.exists():
        return
    try:
        doc = _read_doc(new)
    except InvalidKey:
        return
    if doc.get("check") == key_check(working_key):
        commit_key_file(path)
    else:
        new.unlink(missing_ok=True)


def key_file_needs_passphrase(path: str | Path) -> bool:
    """True when the key file is passphrase-wrapped."""
    return _read_doc(Path(path)).get("kdf") != "none"


def _read_doc(path: Path) -> dict:
    st = os.stat(path)
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise InvalidKey(f"refusing key file {path}: it is readable by group or others (chmod 600 it)")
    try:
        doc = json.loads(path.read_bytes())
    except (ValueError, UnicodeDecodeError):
        raise InvalidKey(f"key file {path} is not a vault key file") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise InvalidKey(f"key file {path} is not a vault key file")
    return doc


def read_key_file(path: str | Path, passphrase: str | None = None) -> bytes:
    """Read a key file; a wrong passphrase raises ``InvalidKey``, never garbage."""
    path = Path(path)
    doc = _read_doc(path)
    if doc.get("kdf") == "none":
        return decode_key(doc.get("key", ""))
    if passphrase is None:
        raise Sealed("the key file is protected by a passphrase: unlock the vault with it")
    kek = _derive_kek(passphrase, doc["kdf"], doc["params"])
    try:
        key = AESGCM(kek).decrypt(base64.b64decode(doc["nonce"]), base64.b64decode(doc["wrapped"]), FORMAT.encode())
    except InvalidTag:
        raise InvalidKey("wrong passphrase for the master key file") from None
    return key


def key_file_path(vault_dir: str | Path | None, environ: Mapping[str, str] = os.environ) -> Path:
    """The key file a vault reads: ``VAULT_MASTER_KEY_FILE`` or ``<dir>/master.key``."""
    name = environ.get("VAULT_MASTER_KEY_FILE")
    return Path(name) if name else Path(vault_dir or ".") / KEY_FILE_NAME


def load_master_key(
    vault_dir: str | Path,
    *,
    key: bytes | None = None,
    passphrase: str | None = None,
    environ: Mapping[str, str] = os.environ,
) -> tuple[bytes, MasterKeySource] | None:
    """Find the master key: explicit → ``VAULT_MASTER_KEY`` → ``VAULT_MASTER_KEY_FILE`` → ``<dir>/master.key``.

    Returns None when no source exists at all (a new vault may create one).
    """
    if key is not None:
        if not isinstance(key, (bytes, bytearray)) or len(key) != 32:
            raise InvalidKey("an explicit master key must be 32 bytes")
        return bytes(key), MasterKeySource("explicit")
    if environ.get("VAULT_MASTER_KEY"):
        return decode_key(environ["VAULT_MASTER_KEY"]), MasterKeySource("environment")
    passphrase = passphrase if passphrase is not None else environ.get("VAULT_PASSPHRASE")
    file_name = environ.get("VAULT_MASTER_KEY_FILE")
    path = Path(file_name) if file_name else Path(vault_dir) / KEY_FILE_NAME
    if not path.exists():
        if file_name:
            raise InvalidKey(f"VAULT_MASTER_KEY_FILE names {path}, which does not exist")
        return None
    kind = "key-file" if not key_file_needs_passphrase(path) else "passphrase-file"
    try:
        return read_key_file(path, passphrase), MasterKeySource(kind, str(path))
    except InvalidKey:
        # an interrupted master-key change: the new passphrase opens the staged file
        if passphrase is None or not staged_path(path).exists():
            raise
        return read_key_file(staged_path(path), passphrase), MasterKeySource(kind, str(path))
