"""Audit rows as OCSF 1.2 events and ECS 9.4 documents, checked against the standards' own definitions.

The OCSF JSON Schema is generated from the OCSF repository at v1.2.0 by ``tools/ocsf_jsonschema.py``;
the ECS field list is extracted from ECS v9.4.0's ``ecs_flat.yml`` by ``tools/ecs_fields.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from vault_core import AccessDenied, audit_formats

DATA = Path(__file__).parent / "data"
OCSF = json.loads((DATA / "ocsf-1.2.0.schema.json").read_text())
ECS = json.loads((DATA / "ecs-9.4.0-fields.json").read_text())
CANARY = "canary-3d1e-audit-format-do-not-leak"
_CLASS_NAMES = {6003: "api_activity", 3002: "authentication", 3001: "account_change", 3004: "entity_management"}


def _validator(class_name: str) -> jsonschema.Draft202012Validator:
    schema = {**OCSF, "$ref": f"#/$defs/class_{class_name}"}
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())


VALIDATORS = {uid: _validator(name) for uid, name in _CLASS_NAMES.items()}


@pytest.fixture
def busy_vault(vault):
    """A vault whose log holds every kind of operation: secrets, rules, users, logins, denials."""
    vault.store_secret("db/password", CANARY, environment="production")
    vault.get_secret("db/password", "production")
    vault.update_secret("db/password", "production", value=CANARY + "-2")
    vault.rotate_secret(name="db/password", environment="production")
    vault.list_secrets("production")
    rule = vault.grant("carol", ["read"], environment="production", pattern="db/*")
    vault.revoke(rule)
    vault.add_user("carol", "a long enough password 1", ["auditor"], must_change_password=False)
    vault.set_roles("carol", ["auditor", "ops"])
    token = vault.verify_login("carol", "a long enough password 1", "203.0.113.9", "Mozilla/5.0 test")
    vault.logout(token, "203.0.113.9", "Mozilla/5.0 test")
    with pytest.raises(Exception):
        vault.verify_login("carol", "guess-7f3a-not-it", "203.0.113.9", "Mozilla/5.0 test")
    with vault.security_context("mallory", "198.51.100.7", forwarded_for="10.0.0.1"):
        with pytest.raises(AccessDenied):
            vault.get_secret("db/password", "production")
    vault.lock_user("carol")
    vault.delete_secret("db/password", "production")
    vault.restore_secret("db/password", "production")
    vault.purge_secret("db/password", "production")
    return vault


def _rows(vault):
    return list(reversed(vault.get_audit_log(limit=1000)))


def test_every_event_validates_against_its_ocsf_class(busy_vault):
    rows = _rows(busy_vault)
    classes = set()
    for row in rows:
        event = audit_formats.to_ocsf(row)
        errors = sorted(VALIDATORS[event["class_uid"]].iter_errors(event), key=str)
        assert not errors, (row["operation"], [e.message for e in errors[:3]])
        classes.add(event["class_uid"])
        assert event["unmapped"]["seq"] == row["seq"] and event["unmapped"]["mac"] == row["mac"]
        assert event["time"] == int(row["timestamp"].timestamp() * 1000)
    assert classes == set(_CLASS_NAMES)  # all four classes are exercised


def test_every_operation_the_vault_emits_has_an_explicit_class(busy_vault):
    ops = {row["operation"] for row in _rows(busy_vault)}
    assert ops - set(audit_formats._CLASSES) == set()


def test_the_schema_catches_a_bad_event(busy_vault):
    """The generated schema is strict: a misspelt field, a wrong enum or a missing field fails."""
    event = audit_formats.to_ocsf(_rows(busy_vault)[0])
    validator = VALIDATORS[event["class_uid"]]
    assert validator.is_valid(event)
    assert not validator.is_valid({**event, "activty_id": 1})
    assert not validator.is_valid({**event, "activity_id": 42})
    assert not validator.is_valid({k: v for k, v in event.items() if k != "metadata"})
    assert not validator.is_valid({**event, "src_endpoint": {"ip": "not an address", "uid": "x"}})


def test_denied_and_login_events_carry_who_from_where(busy_vault):
    rows = _rows(busy_vault)
    denied = next(r for r in rows if r["principal"] == "mallory")
    event = audit_formats.to_ocsf(denied)
    assert event["status"] == "Failure" and event["severity_id"] == 3
    assert event["src_endpoint"]["ip"] == "198.51.100.7"
    assert event["http_request"]["x_forwarded_for"] == ["10.0.0.1"]
    assert event["resources"][0]["name"] == "production/db/password"
    login = audit_formats.to_ocsf(next(r for r in rows if r["operation"] == "login" and r["outcome"] == "allowed"))
    assert (login["class_uid"], login["activity_name"], login["user"]["name"]) == (3002, "Logon", "carol")
    assert login["http_request"]["user_agent"] == "Mozilla/5.0 test"
    roles = audit_formats.to_ocsf(next(r for r in rows if r["operation"] == "roles_set"))
    assert (roles["class_uid"], roles["user"]["name"], roles["actor"]["user"]["name"]) == (3001, "carol", "owner")


def _flatten(doc, prefix=""):
    for key, value in doc.items():
        name = f"{prefix}{key}"
        if name == "labels":
            yield name, value
        elif isinstance(value, dict):
            yield from _flatten(value, name + ".")
        else:
            yield name, value


_ECS_TYPES = {"keyword": str, "match_only_text": str, "wildcard": str, "constant_keyword": str, "text": str,
              "ip": str, "date": str, "long": int, "integer": int, "object": dict, "flattened": dict}


def test_every_ecs_document_uses_defined_fields_and_allowed_values(busy_vault):
    allowed = ECS["allowed"]
    for row in _rows(busy_vault):
        doc = audit_formats.to_ecs(row)
        assert doc["ecs"]["version"] == ECS["version"]
        for name, value in _flatten(doc):
            field = ECS["fields"].get(name)
            assert field is not None, f"{name} is not an ECS field"
            items = value if field["array"] else [value]
            assert isinstance(items, list), f"{name} must be an array"
            assert all(isinstance(v, _ECS_TYPES[field["type"]]) for v in items), (name, value)
        assert all(isinstance(v, str) for v in doc["labels"].values())  # ECS labels are keywords
        event = doc["event"]
        assert event["kind"] in allowed["event.kind"] and event["outcome"] in allowed["event.outcome"]
        for category in event["category"]:
            assert set(event["type"]) <= set(allowed["event.category"][category]), (row["operation"], event)
        assert doc["labels"]["seq"] == str(row["seq"]) and doc["labels"]["mac"] == row["mac"]


def test_no_value_reaches_either_format(busy_vault):
    text = "".join(audit_formats.export_events(iter(_rows(busy_vault)), "ocsf"))
    text += "".join(audit_formats.export_events(iter(_rows(busy_vault)), "ecs"))
    assert CANARY not in text and "a long enough password" not in text and "guess-7f3a" not in text


def test_export_events_keeps_order_and_refuses_unknown_formats(busy_vault):
    rows = _rows(busy_vault)
    lines = list(audit_formats.export_events(iter(rows), "ocsf"))
    assert [json.loads(line)["metadata"]["sequence"] for line in lines] == [r["seq"] for r in rows]
    with pytest.raises(ValueError, match="unknown audit schema"):
        audit_formats.export_events(iter(rows), "cef")


def test_export_audit_streams_either_schema_and_is_audited(busy_vault):
    lines = "".join(busy_vault.export_audit("ocsf")).splitlines()
    assert len(lines) == len(_rows(busy_vault)) - 0 and lines  # every row, one event a line
    for line in lines:
        event = json.loads(line)
        assert VALIDATORS[event["class_uid"]].is_valid(event)
    docs = [json.loads(line) for line in "".join(busy_vault.export_audit("ecs", principal="mallory")).splitlines()]
    assert docs and all(d["user"]["name"] == "mallory" and d["ecs"]["version"] == ECS["version"] for d in docs)
    reasons = [r["reason"] for r in busy_vault.get_audit_log(operation="audit_export", limit=5)]
    assert "format=ecs" in reasons and "format=ocsf" in reasons
    with pytest.raises(Exception, match="format must be one of csv, jsonl, ocsf, ecs"):
        busy_vault.export_audit("cef")


def test_cli_exports_ocsf(tmp_path):
    from tests.test_cli import out, store, vc

    path = tmp_path / "v"
    store(path)
    result = vc(path, "audit", "export", "--format", "ocsf")
    assert result.returncode == 0
    events = [json.loads(line) for line in out(result).splitlines()]
    assert events and all(VALIDATORS[e["class_uid"]].is_valid(e) for e in events)
