"""Issue 15: no API writes an audit row for anyone but the current caller."""

from __future__ import annotations

import pytest


def test_a_caller_cannot_write_an_audit_row_in_another_principals_name(vault):
    vault.add_principal("mallory")  # no rules, no roles
    with vault.security_context("mallory", "10.0.0.9"):
        with pytest.raises(TypeError):
            vault.record_event("rule_add", "allowed", "rule 99: allow admin to mallory", principal="owner")
        vault.record_event("export", "allowed", "an event of mallory's own")
    rows = vault.get_audit_log(limit=1000)
    assert not [r for r in rows if "rule 99" in (r["reason"] or "")]
    (own,) = [r for r in rows if r["operation"] == "export"]
    assert own["principal"] == "mallory" and own["client_ip"] == "10.0.0.9"
    assert vault.verify_audit_log().ok
