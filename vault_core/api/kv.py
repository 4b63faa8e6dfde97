"""KV version 2 shapes from and to the vault's secrets (pure functions, no I/O).

A secret's value is a ``str`` or ``bytes``; a KV v2 secret is a JSON object. The mapping is exact both ways:

* text that is the compact JSON dump of an object (what the console's JSON and key/value-pair editors
  store) is that object;
* any other text ``t`` is ``{"value": t}``; bytes ``b`` are ``{"value_base64": base64(b)}``;
* writing ``{"value": "<text>"}`` stores the text, ``{"value_base64": ...}`` the bytes, any other object
  its compact JSON dump.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime, timezone
from typing import Any

from ..errors import ValidationError
from ..types import SecretMetadata, VersionInfo

ZERO_TIME = "0001-01-01T00:00:00Z"


def compact(data: Any) -> str:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


def to_data(value: str | bytes) -> dict[str, Any]:
    """The KV v2 ``data`` object of a stored value."""
    if isinstance(value, bytes):
        return {"value_base64": base64.b64encode(value).decode("ascii")}
    if value.startswith("{"):
        try:
            parsed = json.loads(value)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict) and compact(parsed) == value:
            return parsed
    return {"value": value}


def from_data(data: Any) -> str | bytes:
    """The value to store for a KV v2 ``data`` object. Raises ``ValidationError`` (never echoing it)."""
    if not isinstance(data, dict):
        raise ValidationError('"data" must be a JSON object')
    if set(data) == {"value"} and isinstance(data["value"], str):
        return data["value"]
    if set(data) == {"value_base64"} and isinstance(data["value_base64"], str):
        try:
            return base64.b64decode(data["value_base64"], validate=True)
        except (binascii.Error, ValueError):
            raise ValidationError('"value_base64" is not valid base64') from None
    return compact(data)


def rfc3339(when: datetime | None) -> str:
    if when is None:
        return ""
    return when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def version_metadata(info: VersionInfo | None, meta: SecretMetadata | None) -> dict[str, Any]:
    """``data.metadata`` of a read, or ``data`` of a write."""
    deleted = rfc3339(meta.deleted_at) if meta is not None and meta.deleted_at else ""
    return {"created_time": rfc3339(info.created_at) if info else ZERO_TIME, "custom_metadata": None,
            "deletion_time": deleted, "destroyed": False, "version": info.version if info else 0}


def secret_metadata(meta: SecretMetadata, versions: list[VersionInfo]) -> dict[str, Any]:
    """``data`` of a metadata read: Vault's fields, the vault's tags in ``custom_metadata``."""
    deleted = rfc3339(meta.deleted_at) if meta.deleted_at else ""
    numbers = [v.version for v in versions]
    return {"cas_required": False, "created_time": rfc3339(meta.created_at),
            "current_version": meta.current_version, "custom_metadata": {"tags": ",".join(meta.tags)}
            if meta.tags else None, "delete_version_after": "0s",
            "max_versions": int(meta.extra.get("max_versions") or 0), "oldest_version": min(numbers, default=0),
            "updated_time": rfc3339(meta.updated_at),
            "versions": {str(v.version): {"created_time": rfc3339(v.created_at), "deletion_time": deleted,
                                          "destroyed": False} for v in sorted(versions, key=lambda v: v.version)}}


def list_keys(names: list[str], prefix: str) -> list[str]:
    """The next path segments under ``prefix`` (a folder ends with ``/``), as a KV LIST shows them."""
    keys: dict[str, None] = {}
    for name in names:
        if name.startswith(prefix) and name != prefix:
            rest = name[len(prefix):]
            keys.setdefault(rest.split("/", 1)[0] + "/" if "/" in rest else rest, None)
    return sorted(keys)


def seconds(raw: Any, what: str) -> int | None:
    """A duration as Vault takes it: seconds as a number or a string like ``90``, ``30s``, ``5m``, ``1h``."""
    if raw is None or raw == "":
        return None
    if isinstance(raw, bool):
        raise ValidationError(f"{what} must be a duration such as 3600 or \"1h\"")
    if isinstance(raw, int):
        return raw
    if isinstance(raw, str) and len(raw) <= 16:
        units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
        number, unit = (raw[:-1], units[raw[-1]]) if raw[-1:] in units else (raw, 1)
        if number.isdigit():
            return int(number) * unit
    raise ValidationError(f"{what} must be a duration such as 3600 or \"1h\"")
