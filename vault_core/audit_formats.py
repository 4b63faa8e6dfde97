"""Audit rows in the schemas SIEMs ingest: OCSF 1.2 and Elastic Common Schema (ECS) 9.4.

A row keeps its identity in either form: ``seq`` and ``mac`` travel with it (OCSF ``unmapped``,
ECS ``labels``), and so does ``vault_row``, exactly what the row's MAC covers (``audit.chain_fields``),
so an event received downstream can be verified offline (``vault_core.audit_offline``).
Nothing here sees a value: audit rows never hold one (only its keyed hash).

OCSF classes (one per kind of operation, see ``_CLASSES``):

* API Activity (6003): operations on secrets and on the vault's own data (store, read, rotate, ...);
* Authentication (3002): console logins and logouts;
* Account Change (3001): a console user's creation, password, roles, lock;
* Entity Management (3004): access rules, key terms, the master key, backups.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from datetime import datetime
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from .audit import chain_fields
from .types import US, to_datetime

OCSF_VERSION = "1.2.0"
ECS_VERSION = "9.4.0"
PRODUCT = "vault-core"
FORMATS = ("ocsf", "ecs")

# class uid, category uid, class name, category name
_API = (6003, 6, "API Activity", "Application Activity")
_AUTH = (3002, 3, "Authentication", "Identity & Access Management")
_ACCOUNT = (3001, 3, "Account Change", "Identity & Access Management")
_ENTITY = (3004, 3, "Entity Management", "Identity & Access Management")

_ACTIVITY_NAMES = {
    _API: {1: "Create", 2: "Read", 3: "Update", 4: "Delete", 99: "Other"},
    _AUTH: {1: "Logon", 2: "Logoff", 99: "Other"},
    _ACCOUNT: {1: "Create", 2: "Enable", 3: "Password Change", 4: "Password Reset", 5: "Disable", 6: "Delete",
               7: "Attach Policy", 8: "Detach Policy", 9: "Lock", 10: "MFA Factor Enable",
               11: "MFA Factor Disable", 99: "Other"},
    _ENTITY: {1: "Create", 2: "Read", 3: "Update", 4: "Delete", 99: "Other"},
}

# operation -> (class, activity id, entity type for Entity Management)
_CLASSES: dict[str, tuple[tuple, int, str]] = {
    "store": (_API, 1, ""), "read": (_API, 2, ""), "reveal": (_API, 2, ""), "metadata": (_API, 2, ""),
    "list": (_API, 2, ""), "versions": (_API, 2, ""), "rotation_history": (_API, 2, ""),
    "reminders": (_API, 2, ""), "health": (_API, 2, ""), "audit_query": (_API, 2, ""),
    "audit_export": (_API, 2, ""), "export": (_API, 2, ""), "audit_verify": (_API, 2, ""),
    "audit_checkpoint": (_API, 2, ""), "value_lookup": (_API, 2, ""),
    "update": (_API, 3, ""), "rotate": (_API, 3, ""), "rotate_stage": (_API, 3, ""), "rotate_due": (_API, 3, ""),
    "revert": (_API, 3, ""), "restore": (_API, 3, ""), "delete": (_API, 4, ""), "purge": (_API, 4, ""),
    "login": (_AUTH, 1, ""), "logout": (_AUTH, 2, ""), "login_lockout": (_AUTH, 99, ""),
    "user_add": (_ACCOUNT, 1, ""), "password_set": (_ACCOUNT, 3, ""), "roles_set": (_ACCOUNT, 7, ""),
    "lock": (_ACCOUNT, 9, ""), "user_lock": (_ACCOUNT, 9, ""), "disable": (_ACCOUNT, 5, ""),
    "user_delete": (_ACCOUNT, 6, ""), "totp_enrol": (_ACCOUNT, 10, ""), "totp_reset": (_ACCOUNT, 11, ""),
    "rule_add": (_ENTITY, 1, "access rule"), "rule_remove": (_ENTITY, 4, "access rule"),
    "rule_list": (_ENTITY, 2, "access rule"), "rule_query": (_ENTITY, 2, "access rule"),
    "key_term_add": (_ENTITY, 1, "key term"), "key_terms": (_ENTITY, 2, "key term"),
    "key_export": (_ENTITY, 2, "key term"), "master_key_change": (_ENTITY, 3, "master key"),
    "reencrypt_start": (_ENTITY, 3, "key term"), "reencrypt_batch": (_ENTITY, 3, "key term"),
    "reencrypt_finish": (_ENTITY, 3, "key term"), "rekey_jobs": (_ENTITY, 2, "key term"),
    "backup": (_ENTITY, 2, "backup"), "backup_list": (_ENTITY, 2, "backup"),
    "principal_get": (_ENTITY, 2, "principal"), "principal_list": (_ENTITY, 2, "principal"),
    "sessions_list": (_ENTITY, 2, "session"), "sessions_end": (_ENTITY, 4, "session"),
    "audit_device_add": (_ENTITY, 1, "audit device"), "audit_device_remove": (_ENTITY, 4, "audit device"),
    "audit_device_list": (_ENTITY, 2, "audit device"), "audit_device_test": (_ENTITY, 2, "audit device"),
    "audit_verify_file": (_API, 2, ""),
}
_SEVERITY = {"allowed": (1, "Informational"), "denied": (3, "Medium")}  # anything else: a failure
# ECS event.type by activity (https://www.elastic.co/guide/en/ecs/current/ecs-allowed-values-event-type.html)
_ECS_TYPE = {1: "creation", 2: "access", 3: "change", 4: "deletion"}


def _product_version() -> str:
    try:
        return version(PRODUCT)
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "0"


_PRODUCT = {"name": PRODUCT, "vendor_name": PRODUCT, "version": _product_version()}


def _classify(operation: str) -> tuple[tuple, int, str]:
    return _CLASSES.get(operation, (_API, 99, ""))


def _roles(row: Mapping[str, Any]) -> list[str]:
    raw = row.get("roles") or ""
    return [r for r in (raw.split(",") if isinstance(raw, str) else list(raw)) if r]


def _mac_hex(row: Mapping[str, Any]) -> str:
    mac = row.get("mac")
    return bytes(mac).hex() if isinstance(mac, (bytes, bytearray, memoryview)) else str(mac or "")


def _ts_us(row: Mapping[str, Any]) -> int:
    if row.get("ts") is not None:
        return int(row["ts"])
    stamp = row["timestamp"]
    stamp = datetime.fromisoformat(stamp) if isinstance(stamp, str) else stamp
    return int(stamp.timestamp() * US)


def _forwarded(row: Mapping[str, Any]) -> list[str]:
    raw = row.get("forwarded_for") or ""
    return [p.strip() for p in raw.split(",") if p.strip()]


def _resource_name(row: Mapping[str, Any]) -> str:
    env, name = row.get("environment"), row.get("secret_name")
    return f"{env}/{name}" if env and name else (name or env or "")


def to_ocsf(row: Mapping[str, Any]) -> dict[str, Any]:
    """One audit row (as stored or as ``public_row``/the export returns it) as an OCSF 1.2 event.

    Raises ``KeyError`` if the row lacks ``seq``, ``operation``, ``outcome`` or its time.
    """
    operation, outcome = row["operation"], row["outcome"]
    cls, activity, entity_type = _classify(operation)
    uid, category, class_name, category_name = cls
    severity_id, severity = _SEVERITY.get(outcome, (4, "High"))
    principal = row.get("principal") or "unknown"
    user: dict[str, Any] = {"name": principal, "uid": principal}
    if _roles(row):
        user["groups"] = [{"name": r} for r in _roles(row)]
    actor: dict[str, Any] = {"user": user}
    if row.get("session_id"):
        actor["session"] = {"uid": row["session_id"]}
    event: dict[str, Any] = {
        "class_uid": uid, "class_name": class_name, "category_uid": category, "category_name": category_name,
        "activity_id": activity, "activity_name": _ACTIVITY_NAMES[cls][activity], "type_uid": uid * 100 + activity,
        "type_name": f"{class_name}: {_ACTIVITY_NAMES[cls][activity]}",
        "severity_id": severity_id, "severity": severity, "time": _ts_us(row) // 1000,
        "status_id": 1 if outcome == "allowed" else 2, "status": "Success" if outcome == "allowed" else "Failure",
        "message": f"{principal} {operation} {_resource_name(row) or '-'}: {outcome}",
        "metadata": {"version": OCSF_VERSION, "product": _PRODUCT, "uid": str(row["seq"]),
                     "sequence": int(row["seq"]), "log_name": "vault audit"},
        "actor": actor,
        "unmapped": {"seq": int(row["seq"]), "mac": _mac_hex(row), "operation": operation, "outcome": outcome,
                     "environment": row.get("environment"), "value_hash": row.get("value_hash"),
                     "forwarded_trusted": bool(row.get("forwarded_trusted")), "vault_row": chain_fields(row)},
    }
    if row.get("reason"):
        event["status_detail"] = row["reason"]
    ip = row.get("client_ip")
    endpoint = {"ip": ip, "uid": ip} if ip and ip != "local" else {"name": "local process", "uid": "local"}
    request = {k: v for k, v in (("user_agent", row.get("user_agent")),
                                 ("x_forwarded_for", _forwarded(row))) if v}
    if cls is _API:
        event["api"] = {"operation": operation, "service": {"name": PRODUCT}}
        event["src_endpoint"] = endpoint
        if row.get("secret_id") or row.get("secret_name"):
            resource = {"type": "secret", "name": _resource_name(row), "uid": row.get("secret_id") or _resource_name(row)}
            if row.get("version") is not None:
                resource["version"] = str(row["version"])
            event["resources"] = [resource]
    elif cls is _AUTH:
        event["user"] = {"name": principal, "uid": principal}
        event["service"] = {"name": f"{PRODUCT} console"}
        event["src_endpoint"] = endpoint
    elif cls is _ACCOUNT:
        target = row.get("secret_name") or principal
        event["user"] = {"name": target, "uid": target}
        event["src_endpoint"] = endpoint
    else:
        name = row.get("secret_name") or _resource_name(row) or entity_type
        event["entity"] = {"name": name, "type": entity_type}
        if row.get("secret_id"):
            event["entity"]["uid"] = row["secret_id"]
    if request and cls is not _ENTITY:
        event["http_request"] = request
    return event


def to_ecs(row: Mapping[str, Any]) -> dict[str, Any]:
    """One audit row as an Elastic Common Schema document (field names as ECS defines them).

    Raises ``KeyError`` if the row lacks ``seq``, ``operation``, ``outcome`` or its time.
    """
    operation, outcome = row["operation"], row["outcome"]
    cls, activity, entity_type = _classify(operation)
    stamp = to_datetime(_ts_us(row))
    category = {_AUTH: "authentication", _ACCOUNT: "iam", _ENTITY: "configuration"}.get(cls, "api")
    kind = _ECS_TYPE.get(activity, "info")
    if cls is _AUTH:
        kind = {1: "start", 2: "end"}.get(activity, "info")
    elif cls is _ACCOUNT:
        kind = {1: "creation", 6: "deletion"}.get(activity, "change")
    types = [kind] + (["user"] if cls is _ACCOUNT else [])
    if cls is _ACCOUNT and kind == "creation":
        types = ["user", "creation"]
    doc: dict[str, Any] = {
        "@timestamp": stamp.isoformat(timespec="microseconds").replace("+00:00", "Z"),
        "ecs": {"version": ECS_VERSION},
        "message": f"{row.get('principal') or 'unknown'} {operation} {_resource_name(row) or '-'}: {outcome}",
        "event": {"kind": "event", "category": [category], "type": types, "action": operation,
                  "outcome": {"allowed": "success", "denied": "failure"}.get(outcome, "failure"),
                  "sequence": int(row["seq"]), "dataset": "vault_core.audit", "module": "vault_core",
                  "provider": PRODUCT},
        "service": {"name": PRODUCT, "type": "vault", "version": _PRODUCT["version"]},
        "labels": {"seq": str(row["seq"]), "mac": _mac_hex(row), "outcome": outcome,
                   "vault_row": json.dumps(chain_fields(row), separators=(",", ":"), ensure_ascii=False)},
    }
    if row.get("reason"):
        doc["event"]["reason"] = row["reason"]
    user: dict[str, Any] = {}
    if row.get("principal"):
        user = {"name": row["principal"], "id": row["principal"]}
        if _roles(row):
            user["roles"] = _roles(row)
    if cls is _ACCOUNT and row.get("secret_name"):
        user["target"] = {"name": row["secret_name"], "id": row["secret_name"]}
    if user:
        doc["user"] = user
    ip = row.get("client_ip")
    if ip and ip != "local":
        doc["source"] = {"ip": ip, "address": ip}
        doc["related"] = {"ip": [ip, *_forwarded(row)]}
    if row.get("principal"):
        doc.setdefault("related", {})["user"] = [row["principal"]]
    if row.get("user_agent"):
        doc["user_agent"] = {"original": row["user_agent"]}
    for key in ("environment", "secret_id", "secret_name", "version", "value_hash", "session_id"):
        if row.get(key) is not None and row.get(key) != "":
            doc["labels"][key] = str(row[key])
    if entity_type:
        doc["labels"]["entity_type"] = entity_type
    if row.get("forwarded_for"):
        doc["labels"]["forwarded_for"] = row["forwarded_for"]
        doc["labels"]["forwarded_trusted"] = str(bool(row.get("forwarded_trusted"))).lower()
    return doc


def export_events(rows: Iterator[Mapping[str, Any]], fmt: str) -> Iterator[str]:
    """Stream rows as JSON Lines in ``fmt`` (``"ocsf"`` or ``"ecs"``), in the order given.

    Raises ``ValueError`` for another format (before reading any row).
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown audit schema (expected one of: {', '.join(FORMATS)})")
    convert = to_ocsf if fmt == "ocsf" else to_ecs
    return (json.dumps(convert(row), ensure_ascii=False, separators=(",", ":")) + "\n" for row in rows)
