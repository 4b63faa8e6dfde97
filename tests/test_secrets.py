"""Secrets with versions on both backends: round trips, check-and-set, delete/restore/purge, listing."""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select, update

from vault_core import Conflict, IntegrityError, NotFound, SecretType
from vault_core.storage.schema import secret_versions, secrets
from vault_core.storage import repos

SIZES = [0, 1, 15, 16, 17, 1000, 64 * 1024]


@pytest.mark.parametrize("stype", list(SecretType))
def test_round_trip_every_type(any_vault, stype):
    sid = any_vault.store_secret(f"t.{stype.value}", f"value of {stype.value}", stype, "staging")
    assert any_vault.get_secret(f"t.{stype.value}", "staging") == f"value of {stype.value}"
    assert any_vault.get_metadata(secret_id=sid).secret_type == stype.value


@pytest.mark.parametrize("size", SIZES)
def test_round_trip_sizes_text_and_bytes(vault, size):
    text = ("é" * size)[: max(0, size // 2)]
    raw = os.urandom(size)
    vault.store_secret("s.text", text)
    vault.store_secret("s.bytes", raw)
    assert vault.get_secret("s.text") == text and isinstance(vault.get_secret("s.text"), str)
    assert vault.get_secret("s.bytes") == raw and isinstance(vault.get_secret("s.bytes"), bytes)


def test_missing_returns_none_and_environments_are_separate(any_vault):
    any_vault.store_secret("api", "prod-value", environment="production")
    assert any_vault.get_secret("api", "staging") is None
    assert any_vault.get_secret("nope", "production") is None
    assert any_vault.get_secret("api", "production") == "prod-value"


def test_versions_and_labels(any_vault):
    sid = any_vault.store_secret("k", "v1")
    assert any_vault.update_secret("k", value="v2") == 2
    assert any_vault.update_secret("k", value="v3") == 3
    assert any_vault.get_secret("k", version=1) == "v1"
    assert any_vault.get_secret("k", label="previous") == "v2"
    assert any_vault.get_secret(secret_id=sid) == "v3"
    states = {v.version: v.state for v in any_vault.list_versions("k")}
    assert states == {3: "current", 2: "previous", 1: "old"}


def test_max_versions_prunes_old_versions(vault):
    vault.store_secret("k", "v1", max_versions=3)
    for i in range(2, 7):
        vault.update_secret("k", value=f"v{i}")
    assert [v.version for v in vault.list_versions("k")] == [6, 5, 4]
    assert vault.get_secret("k", version=1) is None


def test_check_and_set(any_vault):
    any_vault.store_secret("k", "v1", cas=0)
    with pytest.raises(Conflict, match="already exists"):
        any_vault.store_secret("k", "again", cas=0)
    with pytest.raises(Conflict, match="version 1, not 5"):
        any_vault.update_secret("k", value="x", cas=5)
    assert any_vault.update_secret("k", value="v2", cas=1) == 2
    with pytest.raises(Conflict):
        any_vault.store_secret("new", "x", cas=3)
    assert any_vault.get_secret("k") == "v2" and any_vault.get_secret("new") is None


def test_metadata_update_without_new_version(vault):
    vault.store_secret("k", "v1", description="old", tags=["a"])
    expires = datetime(2030, 1, 1, tzinfo=timezone.utc)
    assert vault.update_secret("k", description="new", tags=["b", "c"], expires_at=expires) == 1
    meta = vault.get_metadata("k")
    assert (meta.description, meta.tags, meta.expires_at, meta.current_version) == ("new", ("b", "c"), expires, 1)
    assert "v1" not in repr(meta) and "v1" not in str(meta.to_dict())


def test_soft_delete_restore_purge(any_vault):
    sid = any_vault.store_secret("gone", "v")
    any_vault.delete_secret("gone")
    assert any_vault.get_secret("gone") is None
    assert [m.name for m in any_vault.list_secrets()] == []
    assert [m.name for m in any_vault.list_secrets(only_deleted=True)] == ["gone"]
    with pytest.raises(Conflict, match="deleted"):
        any_vault.store_secret("gone", "other")
    any_vault.restore_secret(secret_id=sid)
    assert any_vault.get_secret("gone") == "v"
    any_vault.purge_secret("gone")
    assert any_vault.get_secret("gone") is None and any_vault.get_metadata("gone") is None
    with pytest.raises(NotFound):
        any_vault.restore_secret("gone")
    any_vault.store_secret("gone", "fresh")  # the name is free again
    assert any_vault.get_secret("gone") == "fresh"


def test_list_filters_and_keyset_pages(any_vault):
    for i in range(23):
        any_vault.store_secret(f"svc.key{i:02d}", "v", SecretType.API_KEY if i % 2 else SecretType.TOKEN,
                               "production" if i < 20 else "staging", tags=["pci"] if i % 5 == 0 else None)
    names, cursor = [], None
    while True:
        page = any_vault.list_secrets(limit=6, cursor=cursor)
        names += [(m.environment, m.name) for m in page]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert len(names) == 23 and names == sorted(names)
    assert len(any_vault.list_secrets(environment="staging")) == 3
    assert len(any_vault.list_secrets(secret_type="api_key")) == 11
    assert len(any_vault.list_secrets(tag="pci")) == 5
    assert [m.name for m in any_vault.list_secrets(search="KEY1", environment="production")] == \
        [f"svc.key{i}" for i in range(10, 20)]
    assert len(any_vault.list_secrets(prefix="svc.")) == 23




def test_swapped_ciphertexts_between_secrets_fail_both(any_vault):
    a = any_vault.store_secret("a", "value-a")
    b = any_vault.store_secret("b", "value-b")
    v = secret_versions.c
    with any_vault.storage.engine.begin() as conn:
        ca = conn.execute(select(v.ciphertext).where(v.secret_id == a)).scalar_one()
        cb = conn.execute(select(v.ciphertext).where(v.secret_id == b)).scalar_one()
        conn.execute(update(secret_versions).where(v.secret_id == a).values(ciphertext=cb))
        conn.execute(update(secret_versions).where(v.secret_id == b).values(ciphertext=ca))
    for name in ("a", "b"):
        with pytest.raises(IntegrityError):
            any_vault.get_secret(name)


def test_swapped_versions_fail(vault):
    sid = vault.store_secret("k", "v1")
    vault.update_secret("k", value="v2")
    v = secret_versions.c
    with vault.storage.engine.begin() as conn:
        c1 = conn.execute(select(v.ciphertext).where(v.secret_id == sid, v.version == 1)).scalar_one()
        c2 = conn.execute(select(v.ciphertext).where(v.secret_id == sid, v.version == 2)).scalar_one()
        conn.execute(update(secret_versions).where(v.secret_id == sid, v.version == 1).values(ciphertext=c2))
        conn.execute(update(secret_versions).where(v.secret_id == sid, v.version == 2).values(ciphertext=c1))
    with pytest.raises(IntegrityError):
        vault.get_secret("k")
    with pytest.raises(IntegrityError):
        vault.get_secret("k", version=1)


def test_moving_a_secret_to_another_environment_fails(vault):
    sid = vault.store_secret("k", "prod-only", environment="production")
    with vault.storage.engine.begin() as conn:
        conn.execute(update(secrets).where(secrets.c.id == sid).values(environment="development"))
    with pytest.raises(IntegrityError):
        vault.get_secret("k", "development")


def test_flipped_stored_byte_fails_and_is_audited(vault):
    sid = vault.store_secret("k", "value")
    v = secret_versions.c
    with vault.storage.engine.begin() as conn:
        blob = bytearray(conn.execute(select(v.ciphertext).where(v.secret_id == sid)).scalar_one())
        blob[-3] ^= 0x80
        conn.execute(update(secret_versions).where(v.secret_id == sid).values(ciphertext=bytes(blob)))
    with pytest.raises(IntegrityError):
        vault.get_secret("k")
    row = vault.get_audit_log(limit=1)[0]
    assert (row["operation"], row["outcome"]) == ("read", "failed") and "authentication" in row["reason"]


def test_rotation_interval_sets_next_rotation(vault):
    before = datetime.now(timezone.utc)
    vault.store_secret("jwt", "k", SecretType.ENCRYPTION_KEY, rotation_interval_days=30)
    meta = vault.get_metadata("jwt")
    assert before + timedelta(days=30) <= meta.next_rotation_at <= datetime.now(timezone.utc) + timedelta(days=30)


def _certificate(days: int) -> tuple[str, datetime]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "vault.test")])
    not_after = datetime(2031, 1, 1, tzinfo=timezone.utc) + timedelta(days=days)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(datetime(2025, 1, 1, tzinfo=timezone.utc))
            .not_valid_after(not_after).sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM).decode(), not_after


def test_certificate_expiry_comes_from_the_certificate(vault):
    pem, not_after = _certificate(0)
    vault.store_secret("tls.cert", pem, SecretType.CERTIFICATE)
    assert vault.get_metadata("tls.cert").expires_at == not_after
    pem2, not_after2 = _certificate(365)
    vault.update_secret("tls.cert", value=pem2)
    assert vault.get_metadata("tls.cert").expires_at == not_after2


def test_health_counters_match_the_secrets_table(any_vault):
    """Counts by environment and type are kept per change, never scanned; they must agree with the table."""
    from sqlalchemy import func

    v = any_vault
    ids = [v.store_secret(f"c{i}", "v", SecretType.TOKEN if i % 2 else SecretType.PASSWORD,
                          "production" if i % 3 else "staging") for i in range(12)]
    v.store_secret("c1", "v2", SecretType.API_KEY, "production")  # a new version that changes the type
    v.update_secret(secret_id=ids[2], secret_type="certificate")
    v.delete_secret(secret_id=ids[3])
    v.delete_secret(secret_id=ids[4])
    v.restore_secret(secret_id=ids[4])
    v.purge_secret(secret_id=ids[5])
    v.purge_secret(secret_id=ids[3])  # purging a deleted secret does not count twice
    s = secrets.c
    with v.storage.engine.connect() as conn:
        truth = {(r[0], r[1]): r[2] for r in conn.execute(
            select(s.environment, s.secret_type, func.count()).where(s.deleted_at.is_(None))
            .group_by(s.environment, s.secret_type))}
    health = v.get_vault_health()
    assert health["total_secrets"] == sum(truth.values()) == 10
    with v.storage.transaction(write=False) as tx:
        assert {(r["environment"], r["secret_type"]): r["n"] for r in repos.secrets.count_secrets_by(tx)} == truth
    with v.storage.transaction() as tx:  # a rebuild (after a bulk load) gives the same figures
        repos.secrets.recount_secrets(tx)
        assert {(r["environment"], r["secret_type"]): r["n"] for r in repos.secrets.count_secrets_by(tx)} == truth
