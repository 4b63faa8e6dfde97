"""TOTP codes and recovery codes (issue 17): RFC 6238 vectors, single use, windows, hashing."""

from __future__ import annotations

import base64
import hmac

import pyotp

from vault_core import totp

RFC_SECRET = base64.b32encode(b"12345678901234567890").decode()  # RFC 6238 appendix B, SHA-1


def test_rfc_6238_vectors_through_the_same_code_path():
    for now, code in ((59, "287082"), (1111111109, "081804"), (1234567890, "005924"), (2000000000, "279037")):
        assert totp.accepted_step(RFC_SECRET, code, last_step=None, now=now) == now // 30


def test_a_code_is_accepted_once_and_older_codes_never_again():
    secret, now = totp.new_secret(), 1_900_000_000
    code = pyotp.TOTP(secret).at(now)
    step = totp.accepted_step(secret, code, last_step=None, now=now)
    assert step == now // 30
    assert totp.accepted_step(secret, code, last_step=step, now=now) is None  # replay
    previous = pyotp.TOTP(secret).at(now - 30)
    assert totp.accepted_step(secret, previous, last_step=step, now=now) is None  # older than the last
    assert totp.accepted_step(secret, pyotp.TOTP(secret).at(now + 30), last_step=step, now=now) == step + 1


def test_window_is_one_step_either_side_and_junk_is_refused():
    secret, now = totp.new_secret(), 1_900_000_000
    assert totp.accepted_step(secret, pyotp.TOTP(secret).at(now - 30), last_step=None, now=now) is not None
    assert totp.accepted_step(secret, pyotp.TOTP(secret).at(now - 90), last_step=None, now=now) is None
    for junk in ("", "12345", "1234567", "abcdef", None, "12 34 5x"):
        assert totp.accepted_step(secret, junk, last_step=None, now=now) is None
    spaced = pyotp.TOTP(secret).at(now)
    assert totp.accepted_step(secret, f"{spaced[:3]} {spaced[3:]}", last_step=None, now=now) is not None


def test_secrets_are_160_bits_and_uri_names_issuer_and_user():
    secret = totp.new_secret()
    assert len(base64.b32decode(secret)) == 20 and secret != totp.new_secret()
    uri = totp.provisioning_uri(secret, "alice")
    assert uri.startswith("otpauth://totp/vault-core:alice?") and f"secret={secret}" in uri
    svg = totp.qr_svg(uri)
    assert svg.lstrip().startswith("<svg") and secret not in svg


def test_recovery_codes_are_distinct_and_hashed_per_user():
    codes = totp.new_recovery_codes()
    assert len(codes) == 10 == len(set(codes)) and all(len(c) == 11 and c[5] == "-" for c in codes)
    key = b"k" * 32
    h = totp.recovery_hash(key, "alice", codes[0])
    assert h == totp.recovery_hash(key, "alice", codes[0].upper().replace("-", " "))
    assert h != totp.recovery_hash(key, "bob", codes[0]) and codes[0] not in h
    assert not hmac.compare_digest(h, totp.recovery_hash(b"x" * 32, "alice", codes[0]))
