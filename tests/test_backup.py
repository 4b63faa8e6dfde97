"""Backup and restore (issue 8): consistent under writers, verified before anything is replaced."""

from __future__ import annotations

import base64
import json
import sqlite3
import stat
import threading
from pathlib import Path

import pytest

from vault_core import AccessDenied, IntegrityError, InvalidKey, open_vault
from vault_core import backup as bk
from vault_core.crypto.keyring import unwrap_key
from vault_core.storage import repos

CANARY = "canary-Q7xv9-not-in-any-backup"


def _master(vault) -> bytes:
    return base64.b64decode(vault.export_master_key())


def _audit_key(vault) -> bytes:
    """The audit key as a holder of the master key gets it: unwrapped from the database's wrapped keys."""
    with vault.storage.transaction(write=False) as tx:
        (row,) = repos.keys.wrapped_keys_of(tx, "audit")
    return unwrap_key(_master(vault), "audit", row["term"], row["wrapped"])


def _values(vault) -> dict[tuple[str, str], str]:
    out = {}
    cursor = None
    while True:
        page = vault.list_secrets(limit=1000, cursor=cursor)
        for m in page:
            out[(m.environment, m.name)] = vault.get_secret(m.name, m.environment)
        cursor = page.next_cursor
        if cursor is None:
            return out


def _fresh_target(vault, tmp_path, pg_server=None):
    """A new, empty vault on the same backend, opened with the same master key."""
    url = None
    if vault.storage.backend == "postgresql":
        from tests.pg_fixtures import new_database_url

        url = new_database_url(pg_server)
    return open_vault(tmp_path / "target", database_url=url, master_key=_master(vault), principal="owner")


def test_backup_under_four_writers_restores_verifies_and_decrypts(any_vault, tmp_path, request):
    vault = any_vault
    for i in range(10):
        vault.store_secret(f"base.s{i}", f"base-{i}", environment="production")
    acknowledged: dict[tuple[str, str], str] = {}
    lock = threading.Lock()
    stop = threading.Event()
    backup_started = threading.Event()
    before_backup: set[tuple[str, str]] = set()
    errors: list[BaseException] = []

    def writer(k: int) -> None:
        i = 0
        try:
            while not stop.is_set() and i < 400:
                name, value = f"w{k}.n{i}", f"value-{k}-{i}"
                vault.store_secret(name, value, environment="staging")
                with lock:
                    acknowledged[("staging", name)] = value
                    if not backup_started.is_set():
                        before_backup.add(("staging", name))
                i += 1
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    while len(acknowledged) < 40 and not errors:
        threading.Event().wait(0.01)
    backup_started.set()
    manifest = vault.backup(tmp_path / "backups")
    stop.set()
    for t in threads:
        t.join()
    assert not errors
    assert len(acknowledged) > len(before_backup)  # writers really ran during and after the backup

    pg = request.getfixturevalue("pg_server") if vault.storage.backend == "postgresql" else None
    target = _fresh_target(vault, tmp_path, pg)
    try:
        report = target.restore_backup(manifest["path"])
        assert report["audit_head"] == manifest["audit"]["seq"]
        assert report["decrypted_sample"] > 0
        assert target.verify_audit_log().ok
        restored = _values(target)
        for i in range(10):
            assert restored[("production", f"base.s{i}")] == f"base-{i}"
        for key in before_backup:  # every write acknowledged before the backup began is in it
            assert restored[key] == acknowledged[key]
        for key, value in restored.items():  # nothing invented, nothing half-written
            if key[0] == "staging":
                assert acknowledged[key] == value
        # the restored vault keeps working: new rows (serial ids too) and a sound chain
        target.store_secret("after.restore", "x", environment="production")
        target.grant("someone", ["read"], environment="production", pattern="after.*")
        assert target.verify_audit_log().ok
        rows = target.get_audit_log(operation="restore", limit=5)
        assert rows and rows[0]["outcome"] == "allowed"
    finally:
        target.storage.dispose()


def test_restore_in_place_replaces_later_changes(any_vault, tmp_path):
    vault = any_vault
    vault.store_secret("keep", "v1", environment="production")
    manifest = vault.backup(tmp_path / "b")
    vault.store_secret("keep", "v2", environment="production")
    vault.store_secret("later", "x", environment="production")
    vault.restore_backup(manifest["path"])
    assert vault.get_secret("keep", "production") == "v1"
    assert vault.get_secret("later", "production") is None
    assert vault.verify_audit_log().ok


def _tamper(data: Path, kind: str, table: str, column: str, new_value) -> None:
    """Edit one cell of the first row of ``table`` inside a backup data file."""
    if kind == "sqlite":
        with sqlite3.connect(data) as conn:
            conn.execute(f"UPDATE {table} SET {column} = ? WHERE rowid = (SELECT min(rowid) FROM {table})",
                         (new_value,))
        conn.close()
        return
    lines = data.read_text().splitlines()
    columns: list[str] = []
    for i, line in enumerate(lines):
        doc = json.loads(line)
        if doc["t"] != table:
            continue
        if "c" in doc:
            columns = doc["c"]
            continue
        doc["r"][columns.index(column)] = bk.encode_value(new_value)
        lines[i] = json.dumps(doc)
        break
    data.write_text("\n".join(lines) + "\n")


def _resign(vault, data: Path) -> None:
    """Forge a consistent manifest (hash + MAC) as only a holder of the audit key could."""
    doc = json.loads(bk.manifest_path(data).read_text())
    doc["sha256"] = bk.file_sha256(data)
    doc.pop("mac")
    bk.manifest_path(data).write_text(json.dumps(bk.sign_manifest(doc, _audit_key(vault))))


def _state(vault):
    return _values(vault), vault.audit_checkpoint()["seq"]


@pytest.mark.parametrize("damage", ["flipped byte", "edited manifest", "ciphertext", "audit row", "missing manifest"])
def test_restore_refuses_a_damaged_backup_and_changes_nothing(any_vault, tmp_path, damage):
    vault = any_vault
    for i in range(5):
        vault.store_secret(f"s{i}", f"value-{i}", environment="production")
    manifest = vault.backup(tmp_path / "b")
    data = Path(manifest["path"])
    vault.store_secret("after.backup", "still-here", environment="production")
    kind = manifest["kind"]
    if damage == "flipped byte":
        raw = bytearray(data.read_bytes())
        raw[len(raw) // 2] ^= 0x01
        data.write_bytes(bytes(raw))
    elif damage == "edited manifest":
        doc = json.loads(bk.manifest_path(data).read_text())
        doc["audit"]["seq"] -= 1  # pretend the backup ends earlier
        bk.manifest_path(data).write_text(json.dumps(doc))
    elif damage == "ciphertext":
        with vault.storage.transaction(write=False) as tx:
            blob = bytearray(tx.conn.exec_driver_sql("SELECT ciphertext FROM secret_versions").first()[0])
        blob[-1] ^= 0x01
        _tamper(data, kind, "secret_versions", "ciphertext", bytes(blob))
        _resign(vault, data)
    elif damage == "audit row":
        _tamper(data, kind, "audit_log", "reason", "nothing to see here")
        _resign(vault, data)
    else:
        bk.manifest_path(data).unlink()
    before = _state(vault)
    with pytest.raises(IntegrityError):
        vault.restore_backup(data)
    values, seq = _state(vault)
    assert values == before[0] and values[("production", "after.backup")] == "still-here"
    assert seq > before[1]  # only the failed attempt was added to the chain
    assert vault.verify_audit_log().ok
    failed = vault.get_audit_log(operation="restore", limit=1)[0]
    assert failed["outcome"] == "failed"
    assert not list(tmp_path.glob("vault/.restore-*"))  # no scratch copy left behind


def test_restore_with_another_master_key_is_refused(vault, tmp_path):
    vault.store_secret("a", "b", environment="production")
    manifest = vault.backup(tmp_path / "b")
    other = open_vault(tmp_path / "other", principal="owner")
    other.store_secret("mine", "stays", environment="production")
    with pytest.raises(InvalidKey):
        other.restore_backup(manifest["path"])
    assert other.get_secret("mine", "production") == "stays"
    other.storage.dispose()


def test_backup_files_are_private_ciphertext_only_and_pruned(vault, tmp_path, monkeypatch):
    vault.store_secret("canary", CANARY, environment="production")
    folder = tmp_path / "bk"
    monkeypatch.setenv("VAULT_BACKUP_PATH", str(folder))
    master, audit_key = _master(vault), _audit_key(vault)
    paths = [Path(vault.backup(keep=2)["path"]) for _ in range(3)]
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    kept = bk.list_backups(folder)
    assert kept == paths[1:]  # the oldest was pruned, with its manifest
    assert not bk.manifest_path(paths[0]).exists()
    for data in kept:
        for f in (data, bk.manifest_path(data)):
            assert stat.S_IMODE(f.stat().st_mode) == 0o600
            blob = f.read_bytes()
            assert CANARY.encode() not in blob
            assert master not in blob and base64.b64encode(master) not in blob
            assert audit_key not in blob
    with sqlite3.connect(kept[-1]) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"  # self-contained file
    conn.close()


def test_backup_restore_and_key_export_need_admin_and_are_audited(vault, tmp_path):
    manifest = vault.backup(tmp_path / "b")
    with vault.security_context("intruder"):
        with pytest.raises(AccessDenied):
            vault.backup(tmp_path / "b2")
        with pytest.raises(AccessDenied):
            vault.restore_backup(manifest["path"])
        with pytest.raises(AccessDenied):
            vault.export_master_key()
    assert not (tmp_path / "b2").exists()
    assert len(vault.export_master_key()) == 44
    ops = {(r["operation"], r["outcome"], r["principal"]) for r in vault.get_audit_log(limit=50)}
    assert {("backup", "allowed", "owner"), ("backup", "denied", "intruder"), ("restore", "denied", "intruder"),
            ("key_export", "denied", "intruder"), ("key_export", "allowed", "owner")} <= ops
