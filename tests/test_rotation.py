"""Rotation: generators, staged rotation with hooks, revert, labels, reminders, history, certificate expiry."""

from __future__ import annotations

import base64
import secrets
import string
import time
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vault_core import AccessDenied, AccessLevel, Conflict, SecretType, ValidationError
from vault_core.errors import RotationFailed
from vault_core.rotation import (
    certificate_expiry,
    generate_key,
    generate_password,
    generate_token,
    password_generator,
)

DAY_US = 86_400_000_000
SYMBOLS = "!#$%&()*+,-.:;<=>?@[]^_{|}~"


# -- generators ---------------------------------------------------------------------------------
@settings(max_examples=200, deadline=None)
@given(length=st.integers(4, 96), lower=st.booleans(), upper=st.booleans(), digits=st.booleans(),
       symbols=st.booleans(), exclude=st.text(alphabet=string.ascii_letters + string.digits + SYMBOLS, max_size=12))
def test_password_policy_is_honoured(length, lower, upper, digits, symbols, exclude):
    classes = [c for c, on in ((string.ascii_lowercase, lower), (string.ascii_uppercase, upper),
                               (string.digits, digits), (SYMBOLS, symbols)) if on]
    classes = ["".join(ch for ch in c if ch not in exclude) for c in classes]
    kwargs = dict(lowercase=lower, uppercase=upper, digits=digits, symbols=symbols, exclude=exclude)
    if not classes or not all(classes):
        with pytest.raises(ValidationError):
            generate_password(length, **kwargs)
        return
    pw = generate_password(length, **kwargs)
    assert len(pw) == length
    assert not set(pw) & set(exclude)
    assert set(pw) <= set("".join(classes))
    assert all(set(pw) & set(c) for c in classes)  # at least one of each enabled class


def test_builtin_generators_and_bad_policies():
    assert len({generate_token() for _ in range(100)}) == 100
    assert set(generate_token(48)) <= set(string.ascii_letters + string.digits + "-_")
    assert len(base64.b64decode(generate_key(), validate=True)) == 32
    assert len(base64.b64decode(generate_key(64))) == 64
    gen = password_generator(length=20, symbols=False, exclude="0O1lI")
    pw = gen()
    assert len(pw) == 20 and not set(pw) & set("0O1lI" + SYMBOLS)
    for bad in (dict(length=2), dict(length=5000), dict(lowercase=False, uppercase=False, digits=False,
                                                        symbols=False), dict(digits=True, exclude="0123456789")):
        with pytest.raises(ValidationError):
            password_generator(**bad)
    with pytest.raises(ValidationError):
        generate_token(4)


def test_seed_custom_generator_passed_directly(any_vault):
    secret_id = any_vault.store_secret(name="jwt_signing_key", value="current_jwt_key_256_bits",
                                       secret_type=SecretType.ENCRYPTION_KEY, environment="production",
                                       rotation_interval_days=30)

    def generate_jwt_key():
        return secrets.token_urlsafe(32)

    assert any_vault.rotate_secret(secret_id, generate_jwt_key) == 2
    new = any_vault.get_secret("jwt_signing_key", "production")
    assert new != "current_jwt_key_256_bits" and len(new) == 43
    meta = any_vault.get_metadata(secret_id=secret_id)
    assert meta.last_rotated_at is not None
    assert meta.next_rotation_at - meta.last_rotated_at == timedelta(days=30)


def test_registered_generator_is_stored_and_found_by_scheduled_rotation(vault):
    calls = []
    vault.register_generator("db.password", lambda: calls.append(1) or generate_password(24, symbols=False))
    sid = vault.store_secret("db", "first", "password", "production", rotation_interval_days=1)
    vault.rotate_secret(sid, "db.password")
    assert vault.get_metadata(secret_id=sid).generator == "db.password"
    assert "db.password" in vault.generator_names() and "password" in vault.generator_names()
    vault.clock = lambda: time.time_ns() // 1000 + 2 * DAY_US  # two days later
    run = vault.rotate_due()
    assert [r.secret_id for r in run.rotated] == [sid] and len(calls) == 2
    value = vault.get_secret(secret_id=sid)
    assert len(value) == 24 and set(value) <= set(string.ascii_letters + string.digits)
    with pytest.raises(ValidationError):
        vault.rotate_secret(sid, "no.such.generator")
    with pytest.raises(ValidationError):
        vault.register_generator("bad name!", lambda: "x")


def test_builtin_default_generator_follows_the_type(vault):
    pw = vault.store_secret("p", "x", SecretType.PASSWORD)
    key = vault.store_secret("k", "x", SecretType.ENCRYPTION_KEY)
    vault.rotate_secret(pw)
    vault.rotate_secret(key)
    assert len(vault.get_secret("p")) == 32
    assert len(base64.b64decode(vault.get_secret("k"))) == 32
    assert vault.get_metadata("p").generator == "password" and vault.get_metadata("k").generator == "key"


# -- staged rotation ------------------------------------------------------------------------------
def test_hooks_see_the_pending_value_and_promote_it(any_vault):
    sid = any_vault.store_secret("svc", "v1-value", environment="staging")
    seen = {}

    def apply(value):
        seen["apply"] = value
        seen["pending_label"] = any_vault.get_secret("svc", "staging", label="pending")
        seen["current_during"] = any_vault.get_secret("svc", "staging")

    def test(value):
        seen["test"] = value
        return True

    assert any_vault.rotate_secret(sid, "token", apply=apply, test=test) == 2
    assert seen["apply"] == seen["test"] == seen["pending_label"] == any_vault.get_secret("svc", "staging")
    assert seen["current_during"] == "v1-value"
    assert any_vault.get_secret("svc", "staging", label="previous") == "v1-value"
    assert [(v.version, v.state) for v in any_vault.list_versions(secret_id=sid)] == [(2, "current"),
                                                                                      (1, "previous")]


@pytest.mark.parametrize("failure", ["raises", "returns_false", "apply_raises"])
def test_failing_hook_leaves_current_untouched_and_discards_pending(any_vault, failure):
    sid = any_vault.store_secret("db", "the-current-password", environment="production")
    leaked = {}

    def boom(value):
        leaked["value"] = value
        raise ConnectionError(f"login refused for password {value}")

    kwargs = {"raises": dict(test=boom), "returns_false": dict(test=lambda v: False),
              "apply_raises": dict(apply=boom, test=lambda v: True)}[failure]
    with pytest.raises(RotationFailed) as info:
        any_vault.rotate_secret(sid, "password", **kwargs)
    assert info.value.stage == ("apply" if failure == "apply_raises" else "test")
    assert any_vault.get_secret("db", "production") == "the-current-password"
    assert any_vault.get_secret("db", "production", label="pending") is None
    assert [(v.version, v.state) for v in any_vault.list_versions(secret_id=sid)] == [(1, "current")]
    rows = any_vault.get_audit_log(secret_id=sid, operation="rotate", outcome="failed")
    assert len(rows) == 1
    expected_type = "AssertionError" if failure == "returns_false" else "ConnectionError"
    assert expected_type in rows[0]["reason"] and "discarded" in rows[0]["reason"]
    if "value" in leaked:
        assert leaked["value"] not in str(info.value)
        assert all(leaked["value"] not in str(r) for r in any_vault.get_audit_log(limit=1000))
    # the next rotation works and numbers stay dense
    assert any_vault.rotate_secret(sid, "password", test=lambda v: True) == 2


def test_failing_generator_is_recorded_without_the_value(vault):
    sid = vault.store_secret("x", "keep-me")

    def broken():
        raise RuntimeError("entropy pool empty")

    with pytest.raises(RotationFailed) as info:
        vault.rotate_secret(sid, broken)
    assert info.value.stage == "generate" and vault.get_secret("x") == "keep-me"
    (row,) = vault.get_audit_log(secret_id=sid, operation="rotate", outcome="failed")
    assert "RuntimeError" in row["reason"]
    with pytest.raises(RotationFailed):
        vault.rotate_secret(sid, lambda: None)  # not a str/bytes value
    assert vault.get_metadata("x").current_version == 1


def test_a_direct_write_during_the_hooks_wins(vault):
    sid = vault.store_secret("race", "v1")

    def apply(value):
        vault.update_secret("race", value="written-meanwhile")  # frees the pending slot, moves current

    with pytest.raises(RotationFailed) as info:
        vault.rotate_secret(sid, "token", apply=apply)
    assert info.value.stage == "promote"
    assert vault.get_secret("race") == "written-meanwhile"
    assert [(v.version, v.state) for v in vault.list_versions(secret_id=sid)] == [(2, "current"), (1, "previous")]


def test_one_staged_rotation_at_a_time(vault):
    sid = vault.store_secret("one", "v1")
    inner = {}

    def apply(value):
        with pytest.raises(Conflict):
            vault.rotate_secret(sid, "token", apply=lambda v: None)
        inner["ok"] = True

    assert vault.rotate_secret(sid, "token", apply=apply) == 2 and inner["ok"]


def test_rotate_needs_rotate_and_rotate_alone_cannot_read(vault):
    sid = vault.store_secret("svc.key", "v1", environment="production")
    vault.grant("rotbot", [AccessLevel.ROTATE], environment="production", pattern="svc.*")
    vault.grant("reader", [AccessLevel.READ], environment="production", pattern="svc.*")
    with vault.security_context("reader"):
        with pytest.raises(AccessDenied):
            vault.rotate_secret(sid)
    with vault.security_context("rotbot"):
        assert vault.rotate_secret(sid) == 2
        assert vault.revert_secret(secret_id=sid) == 3
        with pytest.raises(AccessDenied):
            vault.get_secret("svc.key", "production")
    with vault.security_context("reader"):
        assert vault.get_secret("svc.key", "production") == "v1"
        assert vault.get_secret("svc.key", "production", version=1) == "v1"
        assert vault.get_secret("svc.key", "production", label="previous") != "v1"
        assert [h["principal"] for h in vault.rotation_history(sid)] == ["rotbot", "rotbot"]
    denied = vault.get_audit_log(secret_id=sid, operation="rotate", outcome="denied")
    assert [r["principal"] for r in denied] == ["reader"]


# -- revert and labels --------------------------------------------------------------------------
def test_revert_puts_previous_back_and_toggles(any_vault):
    sid = any_vault.store_secret("api", "good", environment="staging")
    any_vault.rotate_secret(sid, lambda: "bad")
    assert any_vault.revert_secret("api", "staging") == 3
    assert any_vault.get_secret("api", "staging") == "good"
    assert any_vault.get_secret("api", "staging", label="previous") == "bad"
    assert any_vault.get_secret("api", "staging", label="current") == "good"
    assert [any_vault.get_secret("api", "staging", version=n) for n in (1, 2, 3)] == ["good", "bad", "good"]
    assert any_vault.get_secret("api", "staging", version=9) is None
    assert any_vault.revert_secret(secret_id=sid) == 4 and any_vault.get_secret("api", "staging") == "bad"
    lone = any_vault.store_secret("lone", "only")
    with pytest.raises(Conflict):
        any_vault.revert_secret(secret_id=lone)
    with pytest.raises(ValidationError):
        any_vault.get_secret("api", "staging", label="older")


def test_history_shows_rotations_reverts_and_failures(vault):
    sid = vault.store_secret("h", "v1")
    other = vault.store_secret("other", "v1")
    vault.rotate_secret(sid, lambda: "v2")
    with pytest.raises(RotationFailed):
        vault.rotate_secret(sid, lambda: "v3", test=lambda v: False)
    vault.revert_secret(secret_id=sid)
    vault.rotate_secret(other)
    hist = vault.rotation_history(sid)
    assert [(h["operation"], h["outcome"], h["version"]) for h in hist] == [
        ("revert", "allowed", 3), ("rotate", "failed", 3), ("rotate_stage", "allowed", 3),
        ("rotate", "allowed", 2)]
    assert hist[0]["principal"] == "owner" and isinstance(hist[0]["at"], datetime)
    assert "v1 -> v2" in hist[-1]["reason"] and "restores v1" in hist[0]["reason"]
    assert {h["secret_id"] for h in vault.rotation_history()} == {sid, other}
    assert len(vault.rotation_history(limit=2)) == 2
    vault.grant("dev", [AccessLevel.READ], pattern="other")
    with vault.security_context("dev"):
        assert {h["secret_id"] for h in vault.rotation_history()} == {other}


# -- schedule, reminders and expiry --------------------------------------------------------------
def test_reminders_buckets_and_schedule(vault):
    now = datetime.now(timezone.utc)
    vault.store_secret("exp.3", "x", expires_at=now + timedelta(days=3))
    vault.store_secret("exp.20", "x", expires_at=now + timedelta(days=20))
    vault.store_secret("exp.60", "x", expires_at=now + timedelta(days=60))
    vault.store_secret("exp.200", "x", expires_at=now + timedelta(days=200))
    vault.store_secret("exp.gone", "x", expires_at=now - timedelta(days=1))
    vault.store_secret("rot.5", "x", rotation_interval_days=5)
    vault.store_secret("rot.10", "x", rotation_interval_days=10)
    names = lambda bucket: sorted(i["name"] for i in bucket)  # noqa: E731
    rem = vault.reminders()
    assert names(rem["expiring_7d"]) == ["exp.3"] and names(rem["expiring_30d"]) == ["exp.20"]
    assert names(rem["expiring_90d"]) == ["exp.60"] and names(rem["expired"]) == ["exp.gone"]
    assert names(rem["due_7d"]) == ["rot.5"] and rem["due"] == rem["overdue"] == []
    assert [s["name"] for s in vault.rotation_schedule(30)] == ["rot.5", "rot.10"]
    vault.clock = lambda: time.time_ns() // 1000 + 7 * DAY_US
    rem = vault.reminders()
    assert names(rem["overdue"]) == ["rot.5"] and names(rem["due_7d"]) == ["rot.10"]
    assert vault.rotation_schedule(30)[0]["overdue"] is True
    vault.grant("dev", [AccessLevel.READ], pattern="exp.*")
    with vault.security_context("dev"):
        rem = vault.reminders()
        assert rem["due_7d"] == [] and names(rem["expired"]) == ["exp.3", "exp.gone"]


def _self_signed(days: int) -> tuple[str, datetime]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "vault.test")])
    start = datetime.now(timezone.utc).replace(microsecond=0)
    end = start + timedelta(days=days)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(start).not_valid_after(end)
            .sign(key, hashes.SHA256()))
    pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    return pem + key_pem, end


def test_certificate_expiry_from_a_generated_certificate():
    bundle, end = _self_signed(45)
    assert certificate_expiry(bundle) == end
    assert certificate_expiry(bundle.encode()) == end
    short, short_end = _self_signed(5)
    assert certificate_expiry(bundle + short) == short_end  # a chain is valid while all of it is
    assert certificate_expiry("not a certificate") is None
    assert certificate_expiry("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n") is None


def test_rotating_or_reverting_a_certificate_takes_its_expiry(vault):
    first, first_end = _self_signed(45)
    second, second_end = _self_signed(400)
    sid = vault.store_secret("tls", first, SecretType.CERTIFICATE, expires_at=first_end)
    vault.rotate_secret(sid, lambda: second, test=lambda pem: "BEGIN CERTIFICATE" in pem)
    assert vault.get_metadata(secret_id=sid).expires_at == second_end
    vault.revert_secret(secret_id=sid)
    assert vault.get_metadata(secret_id=sid).expires_at == first_end
    assert [i["name"] for i in vault.reminders()["expiring_90d"]] == ["tls"]
