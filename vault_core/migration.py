"""Move secrets between the vault and ``.streamlit/secrets.toml`` / ``.env`` files.

Import: nested TOML tables become dotted names (``[db] password`` → ``db.password``; an
existing ``db/password`` is the same path and is updated rather than doubled);
strings are stored as they are; other values are stored as their TOML text with a
``toml:<type>`` tag, so ``vault_core.streamlit.secrets`` and ``export_toml`` give
back the same types. Type, tags and description per key come from the file's own
``[__vault__."<name>"]`` tables or a sidecar file of such tables (``metadata=``);
``export_toml(..., metadata=True)`` writes them, so import → export → import is the
identity. Export writes every secret the caller may READ in clear text: callers must
show ``EXPORT_WARNING`` and write with ``write_private``.

``.env`` files: ``export_dotenv`` writes for python-dotenv (double quotes, escapes, and
``${`` written so that its interpolation gives it back); ``export_docker_env`` writes for
``docker --env-file`` (no quoting at all: the value runs verbatim to the end of the line,
so values with a line break are refused).
"""

from __future__ import annotations

import base64
import datetime as dt
import os
import re
import tempfile
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import tomli_w

from .errors import AccessDenied, ValidationError
from .integrations.toml_meta import (TAG_PREFIX, META_TABLE, KeyMeta, dotted, merge_metadata, path_collisions,
                                     section_paths)
from .models import SecretType
from .names import canonical_name, printable
from .service.runner import environment_value


if TYPE_CHECKING:  # pragma: no cover
    from .vault import Vault

IMPORTED = "imported from secrets.toml"
EXPORT_WARNING = ("WARNING: this file holds secret values in clear text. Keep it private (it is created "
                  "0600), never commit it, and delete it when you are done.")
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_TYPES: tuple[tuple[type, str], ...] = (
    (bool, "boolean"), (int, "integer"), (float, "float"), (dt.datetime, "datetime"), (dt.date, "date"),
    (dt.time, "time"), (list, "array"), (dict, "table"))


# -- typed values --------------------------------------------------------------------
def _toml_key(key: str) -> str:
    return key if _BARE_KEY.fullmatch(key) else tomli_w.dumps({"v": key})[4:].rstrip("\n")


def toml_inline(value: Any) -> str:
    """One value as single-line TOML text (arrays and tables inline)."""
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_toml_key(k)} = {toml_inline(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list):
        return "[" + ", ".join(toml_inline(v) for v in value) + "]"
    return tomli_w.dumps({"v": value})[4:].rstrip("\n")  # "v = <text>\n"


def encode_typed(value: Any) -> tuple[str, str | None]:
    """(text to store, ``toml:<type>`` tag or None for a plain string)."""
    if isinstance(value, str):
        return value, None
    for kind, label in _TYPES:
        if isinstance(value, kind):
            return toml_inline(value), TAG_PREFIX + label
    return str(value), None


def type_tag(tags: tuple[str, ...] | list[str]) -> str | None:
    return next((t for t in tags if t.startswith(TAG_PREFIX)), None)


def decode_typed(value: Any, tags: tuple[str, ...] | list[str]) -> Any:
    """The typed value of a stored secret: its TOML text parsed when tagged, else as stored."""
    if not isinstance(value, str) or type_tag(tags) is None:
        return value
    try:
        return tomllib.loads("v = " + value)["v"]
    except (tomllib.TOMLDecodeError, KeyError):
        return value  # a hand-set tag on a plain value: never fail (nor echo the value)


# -- import -------------------------------------------------------------------------
@dataclass
class ImportReport:
    """What an import did (or, for a dry run, would do) per secret name. Never values."""

    environment: str
    dry_run: bool
    changes: dict[str, str] = field(default_factory=dict)  # name -> create | update | unchanged

    def names(self, action: str) -> list[str]:
        return sorted(n for n, a in self.changes.items() if a == action)

    @property
    def created(self) -> list[str]:
        return self.names("create")

    @property
    def updated(self) -> list[str]:
        return self.names("update")

    @property
    def unchanged(self) -> list[str]:
        return self.names("unchanged")

    def summary(self) -> str:
        verb = "would" if self.dry_run else "did"
        return (f"{self.environment}: {verb} create {len(self.created)}, update {len(self.updated)}, "
                f"leave {len(self.unchanged)} unchanged")

    def to_dict(self) -> dict[str, Any]:
        return {"environment": self.environment, "dry_run": self.dry_run, "changes": dict(self.changes)}


def flatten_toml(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"db": {"password": x}}`` → ``{"db.password": x}`` (canonical names; arrays stay values)."""
    out: dict[str, Any] = {}
    bad: list[str] = []
    for key, value in data.items():
        path = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict):
            for name, leaf in flatten_toml(value, path).items():
                if name in out:
                    bad.append(name)
                out[name] = leaf
            continue
        try:
            name = canonical_name(path)
        except ValidationError:
            bad.append(printable(path, 80))
            continue
        if name in out:
            bad.append(name)
        out[name] = value
    if bad:
        raise ValidationError("these keys are not valid secret names or collide after case folding: "
                              + ", ".join(sorted(set(bad))[:20]))
    return out


def _read_toml(path_or_text: str | os.PathLike) -> dict[str, Any]:
    text = path_or_text
    if isinstance(path_or_text, os.PathLike) or not re.search(r"[=\n\[]", str(path_or_text)):
        text = Path(path_or_text).read_text(encoding="utf-8")
    try:
        return tomllib.loads(str(text))
    except tomllib.TOMLDecodeError as exc:  # the message names a line and column, not the value
        raise ValidationError(f"not valid TOML: {str(exc).splitlines()[0][:200]}") from None


def read_metadata(data: dict[str, Any], sidecar: Any = None) -> dict[str, KeyMeta]:
    """Pop the inline ``__vault__`` table from ``data`` and merge a sidecar (a path, TOML text or a
    dict of the same tables, with or without the ``__vault__`` level; the sidecar wins per field).

    Raises ``ValidationError`` for a malformed table or an invalid name."""
    inline = data.pop(META_TABLE, None)
    side = sidecar if isinstance(sidecar, dict) or sidecar is None else _read_toml(sidecar)
    if isinstance(side, dict) and META_TABLE in side:
        side = side[META_TABLE]
    return merge_metadata(inline, side)


def _existing_names(vault: "Vault", env: str) -> dict[str, str]:
    """{dotted path: stored name} of the secrets the caller holds any level on (deleted ones too)."""
    names: list[str] = []
    cursor = None
    while True:
        page = vault.list_secrets(env, limit=1000, cursor=cursor, include_deleted=True)
        names += [m.name for m in page]
        cursor = page.next_cursor
        if cursor is None:
            return section_paths(names)


def _planned(flat: dict[str, Any], meta: dict[str, KeyMeta]) -> dict[str, tuple[Any, str | None, KeyMeta]]:
    """{name: (value to store, toml tag, metadata)}; validates everything before any write."""
    missing = sorted(set(meta) - {dotted(n) for n in flat})
    if missing:
        raise ValidationError(f"{META_TABLE} names keys that are not in the file: " + ", ".join(missing[:20]))
    doubled = path_collisions(flat)
    if doubled:
        raise ValidationError("these keys are one section path (/ and . both separate sections): "
                              + ", ".join(f"{a} and {b}" for a, b in doubled[:10]))
    plan: dict[str, tuple[Any, str | None, KeyMeta]] = {}
    for name, value in flat.items():
        km = meta.get(dotted(name), KeyMeta())
        text, tag = encode_typed(value)
        if km.base64:
            if tag is not None:
                raise ValidationError(f"{name}: encoding = base64 needs a string value")
            try:
                text = base64.b64decode(text.encode("ascii"), validate=True)
            except (ValueError, UnicodeEncodeError):
                raise ValidationError(f"{name}: not valid base64") from None
        plan[name] = (text, tag, km)
    return plan


def import_toml(vault: "Vault", path_or_text: str | os.PathLike, environment: Any, *,
                dry_run: bool = False, metadata: Any = None) -> ImportReport:
    """Import a ``secrets.toml`` (a path or its text) into ``environment``.

    ``metadata``: a sidecar (path, TOML text or dict) of ``[__vault__."<name>"]`` tables,
    merged over the file's own. Every key is validated before anything is written.
    Existing secrets get a new version only when the value or type changed, and new
    metadata only where the tables set it; the rest of their metadata stays.
    Raises ``ValidationError``, ``AccessDenied`` (no WRITE), ``OSError`` (unreadable file).
    """
    data = _read_toml(path_or_text)
    meta = read_metadata(data, metadata)
    plan = _planned(flatten_toml(data), meta)
    env = environment_value(environment)
    existing = _existing_names(vault, env)
    report = ImportReport(environment=env, dry_run=dry_run)
    for file_name, (value, tag, km) in sorted(plan.items()):
        name = existing.get(dotted(file_name), file_name)  # "smtp/password" is updated, not doubled
        row = vault.get_metadata(name, env)
        if row is None or row.deleted_at is not None:
            action = "create" if row is None else "update"
        else:
            try:
                same = vault.get_secret(name, env) == value and type_tag(row.tags) == tag
            except AccessDenied:  # a write-only importer cannot compare: write
                same = False
            same = same and km.secret_type in (None, row.secret_type) and km.description in (None, row.description)
            same = same and (km.tags is None or km.tags == _plain_tags(row.tags))
            action = "unchanged" if same else "update"
        report.changes[name] = action
        if dry_run or action == "unchanged":
            continue
        if row is None:
            vault.store_secret(name, value, environment=env, secret_type=km.secret_type or SecretType.GENERIC,
                               description=IMPORTED if km.description is None else km.description,
                               tags=list(km.tags or ()) + ([tag] if tag else []) or None)
            continue
        if row.deleted_at is not None:
            vault.restore_secret(name, env)
        _update(vault, name, env, value, tag, row.tags, km)
    return report


def _plain_tags(tags: Any) -> tuple[str, ...]:
    return tuple(t for t in tags if not t.startswith(TAG_PREFIX))


def _update(vault: "Vault", name: str, env: str, value: Any, tag: str | None, old_tags: tuple[str, ...],
            km: KeyMeta) -> None:
    tags = list(_plain_tags(old_tags) if km.tags is None else km.tags) + ([tag] if tag else [])
    changes: dict[str, Any] = {"value": value, "tags": tags}
    if km.secret_type is not None:
        changes["secret_type"] = km.secret_type
    if km.description is not None:
        changes["description"] = km.description
    vault.update_secret(name, env, **changes)


# -- export -------------------------------------------------------------------------
def _readable_values(vault: "Vault", environment: Any) -> tuple[str, dict[str, Any], list[str]]:
    """(environment, {name: typed value}, names exported base64) — each read is audited."""
    env = environment_value(environment)
    values: dict[str, Any] = {}
    binary: list[str] = []
    for name, (_version, tags) in sorted(vault.secret_versions(env).items()):
        value = vault.get_secret(name, env)
        if value is None:  # deleted since the listing
            continue
        if isinstance(value, bytes):
            value = base64.b64encode(value).decode("ascii")
            binary.append(name)
        values[name] = decode_typed(value, tags)
    doubled = path_collisions(values)
    if doubled:  # a file has one key per path: refuse rather than drop one
        raise ValidationError("these secrets are one section path in a file (/ and . both separate sections): "
                              + ", ".join(f"{a} and {b}" for a, b in doubled[:10]))
    return env, values, binary


def _header(env: str, count: int, binary: list[str]) -> str:
    lines = [f"# {EXPORT_WARNING}", f"# {count} secrets of the {env} environment, exported from the vault."]
    if binary:
        lines.append("# Base64-encoded binary values: " + ", ".join(binary))
    return "\n".join(lines) + "\n"


def nest(values: dict[str, Any]) -> dict[str, Any]:
    """Dotted names → nested tables. A name that is also a section stays a quoted dotted key."""
    tree: dict[str, Any] = {}
    flat_keys: dict[str, Any] = {}
    sections = {".".join(parts[:i]) for parts in (n.split(".") for n in values) for i in range(1, len(parts))}
    for name, value in sorted(values.items()):
        parts = name.split(".")
        if name in sections or any(".".join(parts[:i]) in values for i in range(1, len(parts))):
            flat_keys[name] = value  # a leaf and a section at once: TOML cannot nest both
            continue
        node = tree
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    tree.update(flat_keys)
    return tree


def _meta_tables(vault: "Vault", env: str, names: list[str], binary: list[str]) -> dict[str, Any]:
    """``{dotted path: {type, tags, description, encoding}}``: what ``import_toml`` reads back."""
    out: dict[str, Any] = {}
    for name in names:
        row = vault.get_metadata(name, env)
        if row is None:
            continue
        fields: dict[str, Any] = {"type": row.secret_type, "tags": list(_plain_tags(row.tags)),
                                  "description": row.description}
        if name in binary:
            fields["encoding"] = "base64"
        out[dotted(name)] = fields
    return out


def export_toml(vault: "Vault", environment: Any, *, metadata: bool = False) -> str:
    """Every secret the caller may READ in ``environment`` as ``secrets.toml`` text (in clear).

    ``metadata=True`` adds a ``[__vault__."<name>"]`` table per secret (type, tags,
    description, base64 encoding): importing the file restores all of it.
    Raises ``ValidationError`` when two names are one path (``a.b`` and ``a/b``)."""
    env, values, binary = _readable_values(vault, environment)
    vault.record_event("export", "allowed", f"toml export of {len(values)} secrets", environment=env)
    tree = nest({dotted(n): v for n, v in values.items()})
    if metadata:
        tree[META_TABLE] = _meta_tables(vault, env, list(values), binary)
    return _header(env, len(values), binary) + "\n" + tomli_w.dumps(tree)


def dotenv_name(name: str) -> str:
    return re.sub(r"[./-]", "_", name).upper()


def dotenv_quote(text: str) -> str:
    r"""``text`` as a python-dotenv value that reads back exactly, with its default settings.

    Single quotes when nothing in it needs care; else double quotes with ``\ " \n \r``
    escaped (its universal-newline reading would turn a raw CR into a line feed).
    python-dotenv expands ``${NAME}`` inside either quotes and has no escape for it, so
    each ``${`` is written ``$${:-}{``: the ``${:-}`` in the middle is the variable with
    an empty name and an empty default, which expands to nothing."""
    if not any(c in text for c in "'\\\n\r") and "${" not in text:
        return f"'{text}'"
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    return '"' + escaped.replace("${", "$${:-}{") + '"'


def _env_lines(vault: "Vault", environment: Any, kind: str, quote: Callable[[str, str], str]) -> str:
    env, values, binary = _readable_values(vault, environment)
    seen: dict[str, str] = {}
    for name in values:
        other = seen.setdefault(dotenv_name(name), name)
        if other != name:
            raise ValidationError(f"{other} and {name} both become {dotenv_name(name)} in a .env file")
    lines = [f"{dotenv_name(name)}={quote(name, value if isinstance(value, str) else toml_inline(value))}"
             for name, value in values.items()]
    vault.record_event("export", "allowed", f"{kind} export of {len(values)} secrets", environment=env)
    return _header(env, len(values), binary) + "\n".join(lines) + ("\n" if lines else "")


def export_dotenv(vault: "Vault", environment: Any) -> str:
    """Every secret the caller may READ as ``NAME="value"`` lines (``db.password`` → ``DB_PASSWORD``)
    that python-dotenv reads back exactly (``dotenv_quote``). Raises ``ValidationError`` when
    two names become one variable."""
    return _env_lines(vault, environment, "dotenv", lambda _name, text: dotenv_quote(text))


def _docker_verbatim(name: str, text: str) -> str:
    if "\n" in text or "\r" in text or "\x00" in text:
        raise ValidationError(f"{name}: a docker --env-file value runs to the end of its line, so it cannot "
                              "hold a line break (use --format env, or docker's -e)")
    return text


def export_docker_env(vault: "Vault", environment: Any) -> str:
    """Every secret the caller may READ as ``NAME=value`` lines for ``docker --env-file``, which
    takes the value verbatim to the end of the line (no quotes, escapes or expansion).

    Raises ``ValidationError`` for a value with a line break or NUL (naming the secret,
    never the value), or when two names become one variable."""
    return _env_lines(vault, environment, "docker env-file", _docker_verbatim)


def write_private(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` as a 0600 file (atomically: a private temp file, then rename)."""
    target = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=".export-", dir=target.parent or ".")  # mkstemp creates 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target
