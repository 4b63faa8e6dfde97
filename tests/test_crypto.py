"""The crypto barrier and master key sources (DESIGN §9 statements 1-6)."""

from __future__ import annotations

import base64
import os
import stat

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vault_core import InvalidKey, IntegrityError, Sealed, open_vault
from vault_core.crypto import Barrier, Keyring, KeyTerm, secret_aad, write_key_file
from vault_core.crypto.barrier import HEADER_BYTES
from vault_core.crypto.masterkey import load_master_key, read_key_file


def _barrier(*terms: int) -> Barrier:
    return Barrier(Keyring([KeyTerm(t, os.urandom(32)) for t in terms or (1,)]))


SALT = bytes(range(16))
AAD = secret_aad("production", "id1", "db.password", 1)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=4096))
def test_round_trip_any_bytes(data):
    b = _barrier()
    assert b.open(b.seal(data, salt=SALT, aad=AAD), salt=SALT, aad=AAD) == data


def test_byte_format_carries_version_and_term():
    b = _barrier(1, 7)
    blob = b.seal(b"x", salt=SALT, aad=AAD)
    assert blob[0] == 1 and int.from_bytes(blob[1:5], "big") == 7 == b.term_of(blob)
    assert len(blob) == HEADER_BYTES + 1 + 16


def test_100k_encryptions_give_distinct_nonces():
    b = _barrier()
    nonces = {b.seal(b"same value", salt=SALT, aad=AAD)[5:17] for _ in range(100_000)}
    assert len(nonces) == 100_000


def test_flipping_any_byte_raises_integrity_error():
    b = _barrier()
    blob = b.seal(b"top secret value", salt=SALT, aad=AAD)
    for i in range(len(blob)):
        bad = bytearray(blob)
        bad[i] ^= 0x01
        with pytest.raises(IntegrityError):
            b.open(bytes(bad), salt=SALT, aad=AAD)
    with pytest.raises(IntegrityError):
        b.open(blob[:-1], salt=SALT, aad=AAD)


@pytest.mark.parametrize("other", [
    secret_aad("staging", "id1", "db.password", 1),
    secret_aad("production", "id2", "db.password", 1),
    secret_aad("production", "id1", "db.password2", 1),
    secret_aad("production", "id1", "db.password", 2),
])
def test_associated_data_binds_environment_id_name_version(other):
    b = _barrier()
    blob = b.seal(b"v", salt=SALT, aad=AAD)
    with pytest.raises(IntegrityError):
        b.open(blob, salt=SALT, aad=other)


def test_other_salt_or_keyring_fails():
    blob = _barrier().seal(b"v", salt=SALT, aad=AAD)
    with pytest.raises(IntegrityError):
        _barrier().open(blob, salt=SALT, aad=AAD)


def test_key_term_never_in_repr():
    key = os.urandom(32)
    b = Barrier(Keyring([KeyTerm(1, key)]))
    for text in (repr(b), repr(b.keyring), repr(b.keyring.active)):
        assert key.hex() not in text and str(key) not in text


# -- master key sources ---------------------------------------------------------------


def test_key_file_created_0600_and_world_readable_file_refused(tmp_path):
    path = write_key_file(tmp_path / "k", os.urandom(32))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    os.chmod(path, 0o644)
    with pytest.raises(InvalidKey, match="readable by group or others"):
        read_key_file(path)
    os.chmod(path, 0o640)
    with pytest.raises(InvalidKey):
        read_key_file(path)


@pytest.mark.parametrize("kdf", ["scrypt", "argon2id", "pbkdf2-sha256"])
def test_passphrase_wrapped_key(tmp_path, kdf):
    key = os.urandom(32)
    path = write_key_file(tmp_path / "k", key, passphrase="correct horse battery", kdf=kdf)
    assert key.hex() not in path.read_text() and base64.b64encode(key).decode() not in path.read_text()
    assert read_key_file(path, "correct horse battery") == key
    with pytest.raises(InvalidKey, match="wrong passphrase"):
        read_key_file(path, "wrong horse battery")
    with pytest.raises(Sealed):
        read_key_file(path)


def test_environment_key_must_be_256_bit_base64(tmp_path):
    with pytest.raises(InvalidKey):
        load_master_key(tmp_path, environ={"VAULT_MASTER_KEY": "not base64!"})
    with pytest.raises(InvalidKey):
        load_master_key(tmp_path, environ={"VAULT_MASTER_KEY": base64.b64encode(b"short").decode()})
    key = os.urandom(32)
    got, source = load_master_key(tmp_path, environ={"VAULT_MASTER_KEY": base64.b64encode(key).decode()})
    assert got == key and source.kind == "environment" and key.hex() not in repr(source)


# -- the vault with keys ------------------------------------------------------------------------------


def test_vault_files_and_folder_modes(tmp_path):
    v = open_vault(tmp_path / "v", principal="owner")
    v.store_secret("a", "b")
    folder = tmp_path / "v"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    for name in ("master.key", "vault.db", "vault.db-wal", "vault.db-shm"):
        assert stat.S_IMODE((folder / name).stat().st_mode) == 0o600, name


def test_wrong_master_key_is_refused_clearly(tmp_path):
    v = open_vault(tmp_path / "v", principal="owner")
    v.store_secret("a", "b")
    v.storage.dispose()
    with pytest.raises(InvalidKey, match="does not open this vault"):
        open_vault(tmp_path / "v", master_key=os.urandom(32))


def test_passphrase_vault_wrong_passphrase_and_reopen(tmp_path):
    v = open_vault(tmp_path / "v", passphrase="a long passphrase", principal="owner")
    v.store_secret("a", "value-1")
    v.storage.dispose()
    with pytest.raises(InvalidKey, match="wrong passphrase"):
        open_vault(tmp_path / "v", passphrase="not the passphrase")
    with pytest.raises(Sealed):
        open_vault(tmp_path / "v", principal="owner")
    again = open_vault(tmp_path / "v", passphrase="a long passphrase", principal="owner")
    assert again.get_secret("a") == "value-1"


def test_missing_key_file_for_existing_vault_is_sealed(tmp_path):
    v = open_vault(tmp_path / "v", principal="owner")
    v.storage.dispose()
    (tmp_path / "v" / "master.key").unlink()
    with pytest.raises(Sealed, match="master key file is missing"):
        open_vault(tmp_path / "v")


def test_sealed_vault_refuses_every_operation(vault):
    sid = vault.store_secret("x", "y")
    vault.seal()
    calls = [
        lambda: vault.get_secret("x"), lambda: vault.store_secret("z", "1"), lambda: vault.update_secret("x", value="2"),
        lambda: vault.delete_secret("x"), lambda: vault.list_secrets(), lambda: vault.rotate_secret(sid),
        lambda: vault.get_audit_log(), lambda: vault.verify_audit_log(), lambda: vault.get_vault_health(),
        lambda: vault.grant("bob", ["read"]), lambda: vault.audit_hash("x"), lambda: vault.get_metadata("x"),
    ]
    for call in calls:
        with pytest.raises(Sealed, match="sealed"):
            call()
    assert vault.status()["sealed"] is True
    vault.unlock()
    assert vault.get_secret("x") == "y"
