"""Issue 15: a failing rotation hook or generator is recorded by kind (step + exception class), never its text.

A hook's message may carry the old value, the new value, or an encoding of either
(``f"old={old}"``); none of it may reach the audit log or ``RotationFailed``.
"""

from __future__ import annotations

import base64

import pytest

from vault_core.errors import RotationFailed

OLD = "the-old-database-password"


def _forms(value: str) -> list[str]:
    raw = value.encode()
    return [value, base64.b64encode(raw).decode(), raw.hex(), "hook says"]


def _leaks(vault, sid, exc: RotationFailed, secrets: list[str]) -> list[str]:
    text = [str(exc), repr(exc), exc.stage, exc.cause]
    text += [str(r) for r in vault.get_audit_log(secret_id=sid, limit=1000)]
    return [s for s in secrets for t in text if s in t]


MESSAGES = {
    "old": lambda new: f"hook says old={OLD}",
    "new": lambda new: f"hook says new={new}",
    "base64": lambda new: f"hook says b64={base64.b64encode(new.encode()).decode()}",
    "hex": lambda new: f"hook says hex={new.encode().hex()}",
}


@pytest.mark.parametrize("message", sorted(MESSAGES))
@pytest.mark.parametrize("step", ["apply", "test"])
def test_hook_messages_never_reach_the_audit_row_or_the_error(any_vault, step, message):
    sid = any_vault.store_secret("db", OLD, environment="production")
    seen = {}

    def hook(new):
        seen["new"] = new
        raise ConnectionError(MESSAGES[message](new))

    kwargs = {"apply": dict(apply=hook), "test": dict(apply=lambda v: None, test=hook)}[step]
    with pytest.raises(RotationFailed) as info:
        any_vault.rotate_secret(sid, "password", **kwargs)
    assert not _leaks(any_vault, sid, info.value, _forms(OLD) + _forms(seen["new"]))
    assert info.value.stage == step and info.value.cause == "ConnectionError"
    assert f"{step} hook failed (ConnectionError)" in str(info.value)
    (row,) = any_vault.get_audit_log(secret_id=sid, operation="rotate", outcome="failed")
    assert row["reason"].startswith(f"{step} hook failed (ConnectionError)")
    assert any_vault.get_secret("db", "production") == OLD


def test_generator_messages_never_reach_the_audit_row_or_the_error(vault):
    sid = vault.store_secret("db", OLD, environment="production")
    produced = "generated-but-rejected-value"

    def generator():
        raise ValueError(f"hook says old={OLD} candidate={produced} "
                         f"b64={base64.b64encode(produced.encode()).decode()} hex={produced.encode().hex()}")

    with pytest.raises(RotationFailed) as info:
        vault.rotate_secret(sid, generator)
    assert not _leaks(vault, sid, info.value, _forms(OLD) + _forms(produced))
    assert info.value.stage == "generate" and info.value.cause == "ValueError"
    assert "generator failed (ValueError)" in str(info.value)
    (row,) = vault.get_audit_log(secret_id=sid, operation="rotate", outcome="failed")
    assert row["reason"].startswith("generator failed (ValueError)")


def test_a_generator_value_of_the_wrong_kind_is_named_by_kind(vault):
    sid = vault.store_secret("db", OLD, environment="production")
    with pytest.raises(RotationFailed) as info:
        vault.rotate_secret(sid, lambda: 12345)
    assert info.value.stage == "generate" and "generator failed (ValidationError)" in str(info.value)
