"""The conventions of the vault's TOML files: type tags, ``[__vault__."<name>"]`` metadata tables,
and section paths (``/`` separates sections as ``.`` does). No I/O, no vault.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import ValidationError
from ..models import SecretType
from ..names import canonical_name, printable

TAG_PREFIX = "toml:"
META_TABLE = "__vault__"  # [__vault__."db.password"] type = "password", tags = [...], description = "..."
_META_FIELDS = frozenset({"type", "tags", "description", "encoding"})


def dotted(name: str) -> str:
    """A name's section path: ``/`` separates sections as ``.`` does (``smtp/password`` → ``smtp.password``)."""
    return name.replace("/", ".")


def section_paths(names: Any) -> dict[str, str]:
    """``{dotted path: stored name}``; where two names share a path, the dotted spelling wins."""
    paths: dict[str, str] = {}
    for name in sorted(names, key=lambda n: (n.count("/"), n)):  # fewest slashes first
        paths.setdefault(dotted(name), name)
    return paths


def path_collisions(names: Any) -> list[tuple[str, str]]:
    """Pairs of names that are the same section path (``a.b`` and ``a/b``): a file can hold one."""
    paths = section_paths(names)
    return sorted((paths[dotted(n)], n) for n in names if paths[dotted(n)] != n)


@dataclass(frozen=True)
class KeyMeta:
    """What a ``[__vault__."<name>"]`` table may set for one key (None: leave as it is)."""

    secret_type: str | None = None
    tags: tuple[str, ...] | None = None
    description: str | None = None
    base64: bool = False  # encoding = "base64": the TOML string holds a binary value


def _meta_leaves(table: Any, prefix: str = "") -> dict[str, dict[str, Any]]:
    """``{"db.password": {fields}}`` from ``{"db.password": {...}}`` or ``{"db": {"password": {...}}}``."""
    if not isinstance(table, dict):
        raise ValidationError(f"{META_TABLE}: expected a table of key names")
    out: dict[str, dict[str, Any]] = {}
    for key, value in table.items():
        path = f"{prefix}.{key}" if prefix else key
        if not isinstance(value, dict):
            raise ValidationError(f"{META_TABLE}: {printable(path, 80)} must be a table of "
                                  + ", ".join(sorted(_META_FIELDS)))
        if value and not any(isinstance(v, dict) for v in value.values()):  # a key's fields
            out[path] = value
        else:
            out.update(_meta_leaves(value, path))
    return out


def _key_meta(name: str, fields: dict[str, Any]) -> KeyMeta:
    unknown = sorted(set(fields) - _META_FIELDS)
    if unknown:
        raise ValidationError(f"{META_TABLE}: {name}: unknown fields " + ", ".join(printable(u, 40) for u in unknown))
    stype, tags, desc, enc = (fields.get(k) for k in ("type", "tags", "description", "encoding"))
    if stype is not None:
        try:
            stype = SecretType.parse(stype).value
        except (ValueError, TypeError):
            raise ValidationError(f"{META_TABLE}: {name}: type must be one of "
                                  + ", ".join(t.value for t in SecretType)) from None
    if tags is not None and not (isinstance(tags, list) and all(isinstance(t, str) for t in tags)):
        raise ValidationError(f"{META_TABLE}: {name}: tags must be a list of strings")
    if tags is not None and any(t.startswith(TAG_PREFIX) for t in tags):
        raise ValidationError(f"{META_TABLE}: {name}: tags starting with {TAG_PREFIX} are the importer's own")
    if desc is not None and not isinstance(desc, str):
        raise ValidationError(f"{META_TABLE}: {name}: description must be a string")
    if enc not in (None, "base64"):
        raise ValidationError(f"{META_TABLE}: {name}: the only encoding is base64")
    return KeyMeta(stype, None if tags is None else tuple(tags), desc, enc == "base64")


def merge_metadata(*tables: Any) -> dict[str, KeyMeta]:
    """``{dotted name: KeyMeta}`` from ``__vault__`` tables (None skipped; a later table wins per field).

    Raises ``ValidationError`` for a malformed table or an invalid name."""
    merged: dict[str, dict[str, Any]] = {}
    for table in tables:
        for path, fields in ({} if table is None else _meta_leaves(table)).items():
            try:
                name = dotted(canonical_name(path))
            except ValidationError:
                raise ValidationError(f"{META_TABLE}: not a valid secret name: {printable(path, 80)}") from None
            merged.setdefault(name, {}).update(fields)
    return {name: _key_meta(name, fields) for name, fields in merged.items()}
