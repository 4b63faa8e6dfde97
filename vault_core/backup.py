"""Backup files: naming, the signed manifest, retention, and the checks run before a restore.

A backup is a data file (``vault-<UTC time>.db``: an SQLite copy made with
SQLite's online backup API; or ``vault-<UTC time>.jsonl``: every table of a
PostgreSQL vault as JSON lines, bytes in base64) plus a manifest beside it
(``<data file>.manifest.json``). Both hold ciphertext and metadata only: the
master key is never written; restoring needs it.

The manifest records the audit chain head of the snapshot (seq + MAC), the
SHA-256 of the data file and row counts, and is itself MACed with a key
derived from the vault's audit key, so neither file can be swapped or edited
without the restore noticing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import random
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any


from . import audit
from .crypto import Barrier, Keyring, KeyTerm, sealer
from .crypto.keyring import unwrap_key
from .errors import IntegrityError, InvalidKey, ValidationError
from .validate import check_int
from .storage import repos
from .storage.tx import Tx

FORMAT = "vault-backup/v1"
MANIFEST_SUFFIX = ".manifest.json"
KINDS = {"sqlite": ".db", "jsonl": ".jsonl"}
DEFAULT_KEEP = 10
SAMPLE_SIZE = 32
_MANIFEST_INFO = b"vault/backup-manifest/v1"


# -- files ---------------------------------------------------------------------------
def backup_dir(path: str | os.PathLike) -> Path:
    """The backup folder, created 0700 (and tightened if it is ours and looser)."""
    folder = Path(path)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    if folder.stat().st_mode & 0o077:
        os.chmod(folder, 0o700)
    return folder


def backup_name(kind: str, now: datetime | None = None) -> str:
    """``vault-20261129T050102123456Z.db``: names sort in time order."""
    now = now or datetime.now(timezone.utc)
    return f"vault-{now:%Y%m%dT%H%M%S%fZ}{KINDS[kind]}"


def create_private(path: Path) -> Path:
    """Create an empty 0600 file that did not exist (never follow or reuse a file)."""
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    return path


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def manifest_path(data_file: Path) -> Path:
    return data_file.with_name(data_file.name + MANIFEST_SUFFIX)


def list_backups(folder: Path) -> list[Path]:
    """Data files that have a manifest, oldest first."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.glob("vault-*") if p.suffix in KINDS.values() and manifest_path(p).exists())


def prune(folder: Path, keep: int) -> list[Path]:
    """Delete all but the newest ``keep`` backups; returns the removed data files."""
    check_int(keep, "keep", 1)
    old = list_backups(folder)[:-keep]
    for data in old:
        manifest_path(data).unlink(missing_ok=True)
        data.unlink(missing_ok=True)
    return old


# -- the manifest ------------------------------------------------------------------------
def _manifest_mac(audit_key: bytes, doc: Mapping[str, Any]) -> str:
    key = hmac.new(audit_key, _MANIFEST_INFO, hashlib.sha256).digest()
    body = json.dumps({k: v for k, v in doc.items() if k != "mac"}, sort_keys=True, separators=(",", ":"))
    return hmac.new(key, body.encode(), hashlib.sha256).hexdigest()


def sign_manifest(doc: dict[str, Any], audit_key: bytes) -> dict[str, Any]:
    doc = dict(doc, format=FORMAT)
    doc["mac"] = _manifest_mac(audit_key, doc)
    return doc


def write_manifest(data_file: Path, doc: Mapping[str, Any]) -> Path:
    path = create_private(manifest_path(data_file))
    path.write_text(json.dumps(doc, indent=2, sort_keys=True))
    return path


def read_manifest(data_file: Path) -> dict[str, Any]:
    """The manifest beside ``data_file``, checked for shape (its MAC is checked once keys are known)."""
    path = manifest_path(data_file)
    if not data_file.is_file():
        raise ValidationError(f"no backup file {data_file}")
    if not path.is_file():
        raise IntegrityError(f"the backup has no manifest ({path.name})")
    try:
        doc = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError):
        raise IntegrityError("the backup manifest is not valid JSON") from None
    required = ("format", "kind", "sha256", "audit", "vault_id", "mac", "counts")
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or any(k not in doc for k in required):
        raise IntegrityError("the backup manifest is not a vault backup manifest")
    if doc["kind"] not in KINDS or data_file.suffix != KINDS[doc["kind"]]:
        raise IntegrityError("the backup manifest does not describe this data file")
    return doc


def check_file(data_file: Path, manifest: Mapping[str, Any]) -> None:
    """The data file is byte for byte the one the manifest describes."""
    if not hmac.compare_digest(file_sha256(data_file), str(manifest["sha256"])):
        raise IntegrityError(f"backup {data_file.name} is corrupted: its SHA-256 differs from the manifest")


# -- JSON lines values ---------------------------------------------------------------------
def encode_value(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"$b64": base64.b64encode(bytes(value)).decode()}
    return value


def decode_value(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) != {"$b64"}:
            raise IntegrityError("a backup cell is malformed")
        return base64.b64decode(value["$b64"])
    return value


# -- verification ------------------------------------------------------------------------------
class SnapshotKeys:
    """The keys of a snapshot, unwrapped with the master key (never printed)."""

    __slots__ = ("barrier", "audit_key")

    def __init__(self, tx: Tx, master: bytes):
        terms, audit_key = [], None
        for row in repos.keys.wrapped_keys_of(tx):
            raw = unwrap_key(master, row["purpose"], row["term"], row["wrapped"])
            if row["purpose"] == "data":
                terms.append(KeyTerm(row["term"], raw))
            elif row["purpose"] == "audit":
                audit_key = raw
        if audit_key is None or not terms:
            raise IntegrityError("the backup holds no keyring: it is not a vault backup")
        self.barrier = Barrier(Keyring(terms))
        self.audit_key = audit_key

    def __repr__(self) -> str:
        return "SnapshotKeys(<redacted>)"


def verify_snapshot(tx: Tx, master: bytes, manifest: Mapping[str, Any], *, sample: int = SAMPLE_SIZE,
                    rng: random.Random | None = None) -> dict[str, Any]:
    """Check a restored-but-not-yet-live snapshot: keys, manifest MAC, audit chain, sample decryption.

    Raises ``InvalidKey`` when the master key does not open it, ``IntegrityError`` for anything else.
    """
    try:
        keys = SnapshotKeys(tx, master)
    except InvalidKey:
        raise InvalidKey("the master key does not open this backup (made under another master key?)") from None
    if not hmac.compare_digest(_manifest_mac(keys.audit_key, manifest), str(manifest["mac"])):
        raise IntegrityError("the backup manifest was altered (its MAC does not match)")
    state = repos.state.get_state(tx)
    if state is None or state["vault_id"] != manifest["vault_id"]:
        raise IntegrityError("the backup data does not belong to the vault its manifest names")
    checkpoint = manifest["audit"]
    if state["audit_seq"] != checkpoint["seq"] or bytes(state["audit_mac"]).hex() != checkpoint["mac"]:
        raise IntegrityError("the backup's audit head differs from its manifest checkpoint")
    report = audit.verify_rows(keys.audit_key, repos.audit.iter_audit(tx), state_seq=state["audit_seq"],
                               state_mac=state["audit_mac"], checkpoint=checkpoint)
    if not report.ok:
        raise IntegrityError(f"the backup's audit chain is broken: {report.problem}")
    decrypted = _decrypt_sample(tx, keys.barrier, sample, rng or random.SystemRandom())
    return {"audit_rows": report.rows_checked, "audit_head": report.head_seq, "decrypted_sample": decrypted,
            "vault_id": state["vault_id"]}


def _decrypt_sample(tx: Tx, barrier: Barrier, sample: int, rng: random.Random) -> int:
    """Open ``sample`` random stored versions (every one when fewer); any failure is an IntegrityError."""
    total = repos.versions.count_versions(tx)
    if total == 0:
        return 0
    offsets = sorted(rng.sample(range(total), min(sample, total)))
    for offset in offsets:
        row = repos.versions.version_at(tx, offset)
        sealer.open_version(barrier, row, row["version"], row["ciphertext"])  # raises IntegrityError when tampered
    return len(offsets)
