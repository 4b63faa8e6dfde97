"""Online backup, verified restore, and the explicit master-key export. All need the admin role.

Backups hold ciphertext and metadata only; ``export_master_key`` is the one,
separate and audited, way to get the key out.
"""

from __future__ import annotations

import base64
import os
import secrets as pysecrets
from pathlib import Path
from collections.abc import Callable
from typing import Any

from .. import backup as bk
from ..crypto.rows import RowSeal
from ..errors import Conflict, IntegrityError, StorageError, VaultError
from ..validate import check_int
from ..logs import get_logger, log_event
from ..storage import Storage, repos
from ..storage import snapshot as db_snapshot
from ..storage.engine import sqlite_url
from ..types import Clock
from .keys import KeyHolder
from .rules import RulesCache
from .runner import Runner

_log = get_logger("backup")


class BackupService:
    """``backup``, ``restore_backup``, ``list_backups``, ``export_master_key``. Every one needs the admin role."""

    def __init__(self, runner: Runner, storage: Storage, keys: KeyHolder, rules: RulesCache, clock: Clock,
                 vault_dir: Path | None, reopen_keys: Callable[[bytes], None]):
        self._runner, self._storage, self._keys, self._rules, self._clock = runner, storage, keys, rules, clock
        self._vault_dir = vault_dir
        self._reopen_keys = reopen_keys  # unwraps the (restored) keyring with the master key

    def backup_folder(self, folder: str | os.PathLike | None = None) -> Path:
        """``folder``, else ``VAULT_BACKUP_PATH``, else ``<vault folder>/backups``. Raises nothing."""
        chosen = folder or os.environ.get("VAULT_BACKUP_PATH") or (Path(self._vault_dir or ".") / "backups")
        return Path(chosen).absolute()

    def _require_admin(self, operation: str) -> None:
        with self._runner.attempt(operation, durable=False, audited=False) as att:  # a denial is recorded
            att.require_role("admin")

    # -- backup ------------------------------------------------------------------------------
    def backup(self, folder: str | os.PathLike | None = None, *, keep: int = bk.DEFAULT_KEEP) -> dict[str, Any]:
        """Write a consistent backup while writers run; keep the newest ``keep``. Returns the manifest.

        Raises ``Sealed``, ``AccessDenied`` (not admin), ``ValidationError`` (keep), ``StorageError``.
        """
        check_int(keep, "keep", 1)
        keys = self._keys.get()
        self._require_admin("backup")
        target = bk.backup_dir(self.backup_folder(folder))
        kind = "sqlite" if self._storage.backend == "sqlite" else "jsonl"
        data = bk.create_private(target / bk.backup_name(kind))
        try:
            if kind == "sqlite":
                db_snapshot.sqlite_backup(self._storage.engine, data)
                head, counts, revision = db_snapshot.sqlite_file_summary(data)
            else:
                with self._storage.engine.connect().execution_options(
                        isolation_level="REPEATABLE READ", postgresql_readonly=True) as conn:
                    with conn.begin():  # one snapshot for every table and the head
                        head = db_snapshot.head_of(conn)
                        revision = db_snapshot.schema_revision(conn)
                        with open(data, "w", encoding="utf-8") as out:
                            counts = db_snapshot.export_jsonl(conn, out, bk.encode_value)
                            out.flush()
                            os.fsync(out.fileno())
            doc = bk.sign_manifest({"kind": kind, "file": data.name, "sha256": bk.file_sha256(data),
                                    "size": data.stat().st_size, "created_at": self._clock(),
                                    "backend": self._storage.backend, "schema_revision": revision,
                                    "counts": counts, **head}, keys.audit_key)
            bk.write_manifest(data, doc)
        except BaseException as exc:
            data.unlink(missing_ok=True)
            bk.manifest_path(data).unlink(missing_ok=True)
            self._runner.record_event("backup", "failed", f"{type(exc).__name__} while writing {data.name}")
            if isinstance(exc, VaultError):
                raise
            if isinstance(exc, Exception):
                raise StorageError(f"the backup could not be written ({type(exc).__name__})") from None
            raise
        removed = bk.prune(target, keep)
        self._runner.record_event("backup", "allowed", f"{data.name} audit_seq={head['audit']['seq']} "
                                               f"removed={len(removed)}")
        log_event(_log, "backup_written", file=str(data), audit_seq=head["audit"]["seq"], rows=sum(counts.values()),
                  removed=len(removed))
        return dict(doc, path=str(data), removed=[p.name for p in removed])

    def list_backups(self, folder: str | os.PathLike | None = None) -> list[dict[str, Any]]:
        """Backups in the folder, oldest first (name, size, audit head). Needs the admin role.

        Raises ``Sealed``, ``AccessDenied``.
        """
        self._require_admin("backup_list")
        out = []
        for data in bk.list_backups(self.backup_folder(folder)):
            try:
                m = bk.read_manifest(data)
                out.append({"path": str(data), "file": data.name, "size": data.stat().st_size, "kind": m["kind"],
                            "audit_seq": m["audit"]["seq"], "created_at": m.get("created_at")})
            except VaultError as exc:
                out.append({"path": str(data), "file": data.name, "error": str(exc)})
        return out

    # -- restore ---------------------------------------------------------------------------------
    def restore_backup(self, path: str | os.PathLike) -> dict[str, Any]:
        """Verify a backup (file hash, manifest MAC, audit chain, sample decryption), then replace the vault.

        Nothing changes unless every check passes. SQLite: the verified copy is
        renamed over the database (stop other processes first). PostgreSQL:
        one transaction. The restore is audited in the restored chain.
        Raises ``Sealed``, ``AccessDenied``, ``IntegrityError`` (tampered or foreign backup),
        ``InvalidKey`` (another master key), ``Conflict`` (another process has the SQLite file open), ``StorageError``.
        """
        keys = self._keys.get()
        self._require_admin("restore")
        data = Path(path).absolute()
        try:
            manifest = bk.read_manifest(data)
            bk.check_file(data, manifest)
            snapshot, scratch = self._scratch_copy(data, manifest)
        except VaultError as exc:
            self._runner.record_event("restore", "failed", f"{data.name}: {exc}"[:400])
            raise
        try:
            with snapshot.transaction(write=False) as tx:
                report = bk.verify_snapshot(tx, keys.master, manifest)
                counts = db_snapshot.table_counts(tx.conn)
            self._check_rows(snapshot, keys.master, manifest)
            if {t: n for t, n in counts.items() if t in manifest["counts"]} != manifest["counts"]:
                raise IntegrityError("the backup's row counts differ from its manifest")
            if self._storage.backend == "sqlite":
                self._swap_sqlite(snapshot, scratch)
            else:
                self._copy_into_postgres(snapshot, keys.master, data.name, manifest)
        except VaultError as exc:
            self._runner.record_event("restore", "failed", f"{data.name}: {exc}"[:400])
            raise
        finally:
            snapshot.dispose()
            _remove_scratch(scratch)
        self._rules.forget()  # the restored rules may carry the same version number
        self._reopen_keys(keys.master)  # the restored keyring
        if self._storage.backend == "sqlite":
            self._runner.record_event("restore", "allowed", f"from {data.name} audit_seq={manifest['audit']['seq']}")
        log_event(_log, "backup_restored", file=str(data), audit_seq=manifest["audit"]["seq"],
                  sample=report["decrypted_sample"])
        return dict(report, file=data.name, backend=self._storage.backend)

    @staticmethod
    def _check_rows(snapshot: Storage, master: bytes, manifest: dict[str, Any]) -> None:
        """Refuse a backup whose protected rows fail their MACs; MAC those of a backup made before them
        (its chain and manifest were just verified). Raises ``IntegrityError``."""
        with snapshot.transaction() as tx:
            tx.seal = RowSeal(bk.SnapshotKeys(tx, master).audit_key)
            repos.integrity.seal_upgraded(tx, manifest.get("schema_revision") or "0001")
            problems = repos.integrity.problems(tx)
        if problems:
            raise IntegrityError(f"the backup's rows fail their integrity checks: {problems[0]}")

    def _scratch_copy(self, data: Path, manifest: dict[str, Any]) -> tuple[Storage, Path]:
        """The backup as a private SQLite database beside the live one (or in the vault folder)."""
        live = self._storage.path
        folder = live.parent if live is not None else Path(self._vault_dir or ".")
        scratch = bk.create_private(folder / f".restore-{pysecrets.token_hex(6)}.db")
        try:
            if manifest["kind"] == "sqlite":
                with open(data, "rb") as src, open(scratch, "wb") as dst:
                    while chunk := src.read(1 << 20):
                        dst.write(chunk)
                storage = Storage(sqlite_url(scratch))
                if storage.integrity_check() != "ok":
                    storage.dispose()
                    raise IntegrityError(f"backup {data.name} is not a sound SQLite database")
                storage.migrate()
            else:
                storage = Storage(sqlite_url(scratch))
                storage.migrate()
                with storage.transaction() as tx, open(data, encoding="utf-8") as lines:
                    db_snapshot.load_rows(tx.conn, db_snapshot.read_jsonl(lines, bk.decode_value))
        except VaultError:
            _remove_scratch(scratch)
            raise
        except Exception as exc:
            _remove_scratch(scratch)
            raise IntegrityError(f"backup {data.name} could not be read ({type(exc).__name__})") from None
        return storage, scratch

    def _swap_sqlite(self, snapshot: Storage, scratch: Path) -> None:
        live = self._storage.path
        if live is None:
            raise StorageError("this SQLite vault has no file to restore into")
        snapshot.dispose()  # last connection closed: its WAL is folded in and removed
        self._storage.dispose()
        if live.exists():
            db_snapshot.sqlite_checkpoint(live)
            if Path(f"{live}-wal").exists():
                raise Conflict("another process has the vault open: stop it before restoring")
        os.replace(scratch, live)
        dir_fd = os.open(live.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def _copy_into_postgres(self, snapshot: Storage, master: bytes, name: str, manifest: dict[str, Any]) -> None:
        from ..storage.tx import Tx

        with snapshot.engine.connect() as source, self._storage.engine.connect() as conn:
            with conn.begin():  # all or nothing; other replicas wait on the table locks
                db_snapshot.copy_all(source, conn)
                tx = Tx(conn, self._storage.backend, change=True)
                restored = bk.SnapshotKeys(tx, master)
                tx.seal = RowSeal(restored.audit_key)
                state = repos.state.get_state(tx, lock=True)
                self._runner.append(tx, state, restored.audit_key, self._runner.caller.current(), "restore", "allowed",
                                    f"from {name} audit_seq={manifest['audit']['seq']}")

    # -- the key ------------------------------------------------------------------------------------
    def export_master_key(self) -> str:
        """The master key in base64, for safekeeping. Needs the admin role; audited as ``key_export``.

        Raises ``Sealed``, ``AccessDenied``, ``StorageError``, ``AuditFailure``.
        """
        keys = self._keys.get()
        with self._runner.attempt("key_export") as att:
            att.require_role("admin")
            att.reason = "master key exported on request"
        log_event(_log, "master_key_exported")
        return base64.b64encode(keys.master).decode()


def _remove_scratch(scratch: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal", ".lock"):
        Path(f"{scratch}{suffix}").unlink(missing_ok=True)
