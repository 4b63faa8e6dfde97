"""Every refused call with an identifiable caller writes one audit row with its reason, never the value,
whichever check refused it (issue 15, item 7)."""

from __future__ import annotations

import pytest

from vault_core import ValidationError

CANARY = "refused-canary-31337"


def _rows(v):
    return v.get_audit_log(limit=1000)


BAD_CALLS = {
    "bad name": lambda v: v.store_secret("../etc/passwd", CANARY),
    "bad value": lambda v: v.store_secret("ok.name", CANARY + "\x00"),
    "oversized value": lambda v: v.store_secret("ok.name", CANARY * 100_000),
    "bad tag": lambda v: v.store_secret("ok.name", "x", tags=[CANARY + "\x00"]),
    "bad cas": lambda v: v.store_secret("ok.name", "x", cas=-1),
    "bad max_versions": lambda v: v.store_secret("ok.name", "x", max_versions=0),
    "bad description": lambda v: v.store_secret("ok.name", "x", description=CANARY * 1000),
    "bad update value": lambda v: v.update_secret("known", value=CANARY + "\x00"),
    "bad update tags": lambda v: v.update_secret("known", tags=CANARY),
    "bad version": lambda v: v.get_secret("known", version=-3),
    "bad secret id": lambda v: v.get_secret(secret_id=CANARY),
    "bad environment": lambda v: v.get_secret("known", environment=CANARY),
}


@pytest.mark.parametrize("case", sorted(BAD_CALLS))
def test_each_bad_input_is_refused_once_in_the_log_without_its_value(vault, case):
    vault.store_secret("known", "v")
    before = len(_rows(vault))
    with vault.security_context("carol", "10.0.0.8"), pytest.raises(ValidationError) as info:
        BAD_CALLS[case](vault)
    assert CANARY not in str(info.value)
    new = _rows(vault)[: len(_rows(vault)) - before]
    assert len(new) == 1, [r["operation"] for r in new]
    row = new[0]
    assert (row["principal"], row["outcome"]) == ("carol", "failed") and row["reason"]
    assert CANARY not in str(row)
    assert vault.get_secret("ok.name") is None  # and nothing changed
