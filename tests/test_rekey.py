"""Master key rotation: key terms, resumable re-encryption (kill -9), retiring terms, master-key change."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from vault_core import AccessDenied, InvalidKey, ValidationError, open_vault
from vault_core.crypto import masterkey
from vault_core.storage.schema import secret_versions

ROOT = Path(__file__).parent.parent


def _terms_in_use(vault) -> dict[int, int]:
    return {t["term"]: t["versions"] for t in vault.key_terms() if t["versions"]}


def _stored_terms(vault) -> set[int]:
    with vault.storage.transaction(write=False) as tx:
        return {r[0] for r in tx.conn.execute(select(secret_versions.c.key_term))}


def test_new_term_for_new_writes_old_values_decrypt_after_restart(any_vault, tmp_path):
    a = any_vault.store_secret("a", "value-a", environment="production")
    assert any_vault.rotate_key_term() == 2
    b = any_vault.store_secret("b", "value-b", environment="production")
    assert _terms_in_use(any_vault) == {1: 1, 2: 1}
    assert [t["active"] for t in any_vault.key_terms()] == [False, True]
    rows = any_vault.get_audit_log(operation="key_term_add")
    assert rows[0]["outcome"] == "allowed" and "term 2" in rows[0]["reason"]
    url = any_vault.storage.url if any_vault.storage.backend == "postgresql" else None
    again = open_vault(any_vault.vault_dir, database_url=url, principal="owner")
    try:
        assert again.get_secret(secret_id=a) == "value-a" and again.get_secret(secret_id=b) == "value-b"
        again.update_secret(secret_id=a, value="value-a2")
        assert _terms_in_use(again) == {1: 1, 2: 2}
    finally:
        again.storage.dispose()


def test_other_processes_follow_a_new_term(vault):
    other = open_vault(vault.vault_dir, principal="owner")
    try:
        vault.rotate_key_term()
        vault.store_secret("new", "sealed-under-2")
        assert other.get_secret("new") == "sealed-under-2"  # an unknown term is fetched at once
        other.store_secret("from-other", "x")
        assert _terms_in_use(vault) == {2: 2}  # ...and from then on it seals under it too
    finally:
        other.storage.dispose()


def test_reencrypt_moves_everything_retires_the_old_term_and_reports_progress(any_vault):
    ids = [any_vault.store_secret(f"s.{i}", f"value-{i}") for i in range(23)]
    any_vault.rotate_secret(ids[0])  # two versions of one secret, both to re-seal
    any_vault.rotate_key_term()
    seen = []
    job = any_vault.reencrypt(progress=lambda done, total: seen.append((done, total)), batch=5)
    assert job["done"] == 24 and job["target_term"] == 2 and job["retired"] == [1]
    assert seen[0] == (0, 24) and seen[-1] == (24, 24) and len(seen) == 6
    assert _stored_terms(any_vault) == {2}
    terms = {t["term"]: t for t in any_vault.key_terms()}
    assert terms[1]["retired_at"] is not None and terms[2]["retired_at"] is None
    assert terms[2]["encryptions"] >= 24
    assert [any_vault.get_secret(f"s.{i}") for i in range(1, 23)] == [f"value-{i}" for i in range(1, 23)]
    assert any_vault.get_secret(secret_id=ids[0], version=1) == "value-0"
    assert any_vault.reencrypt()["done"] == 0  # nothing left: idempotent
    ops = [r["operation"] for r in any_vault.get_audit_log(limit=50) if r["operation"].startswith("reencrypt")]
    assert ops.count("reencrypt_batch") >= 5 and "reencrypt_start" in ops and "reencrypt_finish" in ops
    assert any_vault.rekey_jobs()[0]["finished_at"] is not None
    assert any_vault.verify_audit_log().ok


def test_encryption_count_forces_a_new_term(vault):
    vault.key_term_rotate_after = 5
    for i in range(5):
        vault.store_secret(f"c.{i}", "x")
    vault.rotate_due()  # the scheduler's tick checks the count
    terms = vault.key_terms()
    assert [t["term"] for t in terms] == [1, 2] and terms[0]["encryptions"] == 5
    row = vault.get_audit_log(operation="key_term_add")[0]
    assert "automatic" in row["reason"] and "sealed 5" in row["reason"]
    vault.store_secret("after", "y")
    assert _terms_in_use(vault)[2] == 1
    assert vault.ensure_key_term_fresh() is None  # term 2 is fresh


def test_rekey_operations_need_admin(vault):
    vault.grant("ops", ["rotate", "write"])
    with vault.security_context("ops"):
        for call in (vault.rotate_key_term, vault.reencrypt, vault.change_master_key, vault.key_terms):
            with pytest.raises(AccessDenied):
                call()
    assert len(vault.get_audit_log(principal="ops", outcome="denied")) == 4
    with pytest.raises(ValidationError):
        vault.reencrypt(batch=0)


REENCRYPT_WORKER = r"""
import sys, time
from vault_core import open_vault
vault = open_vault(sys.argv[1], principal="owner")
def progress(done, total):
    print(done, total, flush=True)
    time.sleep(0.05)
vault.reencrypt(progress=progress, batch=int(sys.argv[2]))
print("finished", flush=True)
"""


def test_reencrypt_killed_mid_way_resumes_and_everything_decrypts(tmp_path):
    folder = tmp_path / "vault"
    vault = open_vault(folder, principal="owner")
    values = {f"k.{i:03d}": os.urandom(12).hex() for i in range(300)}
    for name, value in values.items():
        vault.store_secret(name, value)
    vault.rotate_key_term()
    vault.storage.dispose()
    proc = subprocess.Popen([sys.executable, "-c", REENCRYPT_WORKER, str(folder), "10"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    done = 0
    while done < 60:  # kill -9 once a fifth of the work is committed
        line = proc.stdout.readline()
        assert line, proc.stderr.read()
        done = int(line.split()[0])
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()

    vault = open_vault(folder, principal="owner")
    in_use = _terms_in_use(vault)
    assert in_use[1] > 0 and in_use[2] >= 60  # really interrupted half-way
    assert all(vault.get_secret(n) == v for n, v in values.items())
    assert vault.storage.integrity_check() == "ok" and vault.verify_audit_log().ok
    job = vault.reencrypt(batch=50)
    assert job["done"] == 300 and job["retired"] == [1]
    assert len(vault.rekey_jobs()) == 1  # the interrupted job was resumed, not restarted
    assert _stored_terms(vault) == {2}
    vault.storage.dispose()

    restarted = open_vault(folder, principal="owner")
    assert all(restarted.get_secret(n) == v for n, v in values.items())
    assert restarted.verify_audit_log().ok
    restarted.storage.dispose()


# -- master key change --------------------------------------------------------------------------------
def test_change_master_key_rewraps_and_replaces_the_key_file(vault):
    path = vault.vault_dir / masterkey.KEY_FILE_NAME
    old_key = masterkey.read_key_file(path)
    vault.store_secret("keep", "kept-value")
    vault.rotate_key_term()
    vault.change_master_key()
    new_key = masterkey.read_key_file(path)
    assert new_key != old_key and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not masterkey.staged_path(path).exists()
    vault.store_secret("after", "after-value")  # this process carries on with the new key
    row = vault.get_audit_log(operation="master_key_change")[0]
    assert row["outcome"] == "allowed" and old_key.hex() not in str(row) and new_key.hex() not in str(row)
    again = open_vault(vault.vault_dir, principal="owner")
    assert again.get_secret("keep") == "kept-value" and again.get_secret("after") == "after-value"
    again.storage.dispose()
    with pytest.raises(InvalidKey):
        open_vault(vault.vault_dir, master_key=old_key, principal="owner")


def test_change_master_key_with_passphrase_and_explicit_key(tmp_path):
    folder = tmp_path / "pv"
    vault = open_vault(folder, passphrase="first passphrase", principal="owner")
    vault.store_secret("s", "v")
    with pytest.raises(ValidationError):
        vault.change_master_key()  # a protected key file needs the (new) passphrase
    vault.change_master_key(passphrase="second passphrase")
    with pytest.raises(InvalidKey):
        open_vault(folder, passphrase="first passphrase", principal="owner")
    assert open_vault(folder, passphrase="second passphrase", principal="owner").get_secret("s") == "v"

    explicit = open_vault(tmp_path / "ev", master_key=b"k" * 32, principal="owner")
    explicit.store_secret("s", "v")
    with pytest.raises(ValidationError):
        explicit.change_master_key()  # nowhere to write a key that came from outside
    explicit.change_master_key(new_key=b"n" * 32)
    assert open_vault(tmp_path / "ev", master_key=b"n" * 32, principal="owner").get_secret("s") == "v"
    with pytest.raises(InvalidKey):
        open_vault(tmp_path / "ev", master_key=b"k" * 32, principal="owner")


def test_interrupted_master_key_change_is_finished_or_undone_at_unlock(vault, monkeypatch):
    path = vault.vault_dir / masterkey.KEY_FILE_NAME
    vault.store_secret("s", "v")
    old_key = masterkey.read_key_file(path)
    # crash after the database commit, before the key file was renamed into place
    import vault_core.service.rekey as rekey_ops

    def crash(_path):
        raise SystemExit("power cut")

    monkeypatch.setattr(rekey_ops, "commit_key_file", crash)
    with pytest.raises(SystemExit):
        vault.change_master_key()
    assert masterkey.read_key_file(path) == old_key and masterkey.staged_path(path).exists()
    monkeypatch.undo()
    again = open_vault(vault.vault_dir, principal="owner")
    assert again.get_secret("s") == "v"
    assert masterkey.read_key_file(path) != old_key and not masterkey.staged_path(path).exists()
    again.storage.dispose()
    # a staged file whose change never reached the database is dropped
    masterkey.stage_key_file(path, os.urandom(32))
    third = open_vault(vault.vault_dir, principal="owner")
    assert third.get_secret("s") == "v" and not masterkey.staged_path(path).exists()
    third.storage.dispose()
