"""Move secrets between the vault and ``.streamlit/secrets.toml`` / ``.env`` files.

Import: nested TOML tables become dotted names (``[db] password`` → ``db.password``);
strings are stored as they are; other values are stored as their TOML text with a
``toml:<type>`` tag, so ``vault_core.streamlit.secrets`` and ``export_toml`` give
back the same types. Export writes every secret the caller may READ in clear
text: callers must show ``EXPORT_WARNING`` and write with ``write_private``.
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
from typing import TYPE_CHECKING, Any

import tomli_w

from .errors import AccessDenied, ValidationError
from .names import canonical_name, printable

if TYPE_CHECKING:  # pragma: no cover
    from .vault import Vault

TAG_PREFIX = "toml:"
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


def import_toml(vault: "Vault", path_or_text: str | os.PathLike, environment: Any, *,
                dry_run: bool = False) -> ImportReport:
    """Import a ``secrets.toml`` (a path or its text) into ``environment``.

    Every key is validated before anything is written. Existing secrets get a
    new version only when the value or type changed; their other metadata stays.
    """
    flat = flatten_toml(_read_toml(path_or_text))
    encoded = {name: encode_typed(value) for name, value in flat.items()}
    env = vault._environment(environment)
    report = ImportReport(environment=env, dry_run=dry_run)
    for name, (text, tag) in sorted(encoded.items()):
        meta = vault.get_metadata(name, env)
        if meta is None or meta.deleted_at is not None:
            action = "create" if meta is None else "update"
        else:
            try:
                same = vault.get_secret(name, env) == text and type_tag(meta.tags) == tag
            except AccessDenied:  # a write-only importer cannot compare: write
                same = False
            action = "unchanged" if same else "update"
        report.changes[name] = action
        if dry_run or action == "unchanged":
            continue
        if meta is None:
            vault.store_secret(name, text, environment=env, description="imported from secrets.toml",
                               tags=[tag] if tag else None)
        elif meta.deleted_at is not None:
            vault.restore_secret(name, env)
            _update(vault, name, env, text, tag, meta.tags)
        else:
            _update(vault, name, env, text, tag, meta.tags)
    return report


def _update(vault: "Vault", name: str, env: str, text: str, tag: str | None, old_tags: tuple[str, ...]) -> None:
    tags = [t for t in old_tags if not t.startswith(TAG_PREFIX)] + ([tag] if tag else [])
    vault.update_secret(name, env, value=text, tags=tags)


# -- export -------------------------------------------------------------------------
def _readable_values(vault: "Vault", environment: Any) -> tuple[str, dict[str, Any], list[str]]:
    """(environment, {name: typed value}, names exported base64) — each read is audited."""
    env = vault._environment(environment)
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
    return env, values, binary


def _header(env: str, count: int, binary: list[str]) -> str:
    lines = [f"# {EXPORT_WARNING}", f"# {count} secrets of the {env} environment, exported from the vault."]
    if binary:
        lines.append("# Base64-encoded binary values: " + ", ".join(binary))
    return "\n".join(lines) + "\n"


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


def export_toml(vault: "Vault", environment: Any) -> str:
    """Every secret the caller may READ in ``environment`` as ``secrets.toml`` text (in clear)."""
    env, values, binary = _readable_values(vault, environment)
    vault.record_event("export", "allowed", f"toml export of {len(values)} secrets", environment=env)
    return _header(env, len(values), binary) + "\n" + tomli_w.dumps(nest(values))


def dotenv_name(name: str) -> str:
    return re.sub(r"[./-]", "_", name).upper()


def dotenv_quote(text: str) -> str:
    """Single quotes (literal) when possible; else double quotes with backslash escapes."""
    if "'" not in text and "\n" not in text and "\r" not in text and "\\" not in text:
        return f"'{text}'"
    escaped = (text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
               .replace("\t", "\\t"))
    return f'"{escaped}"'


def export_dotenv(vault: "Vault", environment: Any) -> str:
    """Every secret the caller may READ as ``NAME='value'`` lines (``db.password`` → ``DB_PASSWORD``)."""
    env, values, binary = _readable_values(vault, environment)
    seen: dict[str, str] = {}
    for name in values:
        other = seen.setdefault(dotenv_name(name), name)
        if other != name:
            raise ValidationError(f"{other} and {name} both become {dotenv_name(name)} in a .env file")
    lines = []
    for name, value in values.items():
        text = value if isinstance(value, str) else toml_inline(value)
        lines.append(f"{dotenv_name(name)}={dotenv_quote(text)}")
    vault.record_event("export", "allowed", f"dotenv export of {len(values)} secrets", environment=env)
    return _header(env, len(values), binary) + "\n".join(lines) + ("\n" if lines else "")


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
