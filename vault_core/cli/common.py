"""Helpers shared by the CLI commands: output, opening the vault, reading values, options."""


from __future__ import annotations

import argparse
import base64
import getpass
import json
import os
import re
import sys
from datetime import datetime, timezone
from typing import Any

from .. import errors
from ..humanize import duration
from ..logs import get_logger
from ..vault import Vault, open_vault

EXIT = {errors.ValidationError: 2, errors.AccessDenied: 3, errors.Sealed: 4, errors.InvalidKey: 4,
        errors.NotFound: 5, errors.Conflict: 6, errors.StorageError: 7, errors.IntegrityError: 8,
        errors.AuditFailure: 7}
_log = get_logger("cli")


# -- output ------------------------------------------------------------------------------------------
TIME_FORMAT = "%Y-%m-%d %H:%M UTC"  # the console's format (console/fmt.py), in UTC: a terminal has no browser zone
_ISO_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d+)?)?([+-]\d\d:\d\d|Z)?$")


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    return str(value)


def cell(value: Any) -> str:
    """One value as a person reads it: times in one format, yes/no, lists joined, nothing for none."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str) and _ISO_TIME.match(value):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if isinstance(value, datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
        return aware.astimezone(timezone.utc).strftime(TIME_FORMAT)
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple, set)):
        return ", ".join(cell(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k} {cell(v)}" for k, v in value.items())
    return str(value)


def label(key: Any) -> str:
    """A field name in words: ``next_rotation_at`` → ``next rotation at``; an age in days (``age_days``) → ``age``."""
    return str(key).removesuffix("_days").replace("_", " ") if _is_age(key) else str(key).replace("_", " ")


def _is_age(key: Any) -> bool:
    return str(key).endswith("age_days")


def item(key: Any, value: Any) -> str:
    """The value of field ``key``: an age in days as a duration in words ('26 minutes'), else ``cell``."""
    if _is_age(key) and isinstance(value, (int, float)) and not isinstance(value, bool):
        return duration(value * 86400)
    return cell(value)


def table(rows: list[dict[str, Any]], indent: str = "") -> list[str]:
    """Rows as an aligned table under a header of the fields in words; '(none)' when there are none."""
    if not rows:
        return [f"{indent}(none)"]
    keys = list(dict.fromkeys(k for row in rows for k in row))
    grid = [[label(k) for k in keys]] + [[item(k, row.get(k)) for k in keys] for row in rows]
    widths = [max(len(line[i]) for line in grid) for i in range(len(keys))]
    return [indent + "  ".join(v.ljust(w) for v, w in zip(line, widths)).rstrip() for line in grid]


def fields(data: dict[str, Any], indent: str = "") -> list[str]:
    """A record as aligned ``field  value`` lines; a nested record or list of records indented under its field."""
    width = max((len(label(k)) for k in data), default=0)
    lines: list[str] = []
    for key, value in data.items():
        if isinstance(value, dict) and value:
            lines += [f"{indent}{label(key)}:"] + fields(value, indent + "  ")
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            lines += [f"{indent}{label(key)}:"] + table(value, indent + "  ")
        else:
            lines.append(f"{indent}{label(key).ljust(width)}  {item(key, value)}".rstrip())
    return lines


def emit(data: Any, as_json: bool) -> None:
    """Print ``data`` for a person (a record as aligned fields, a list of records as an aligned table, times in
    one format) or, with ``as_json``, as JSON for a machine (times in ISO 8601)."""
    if as_json:
        print(json.dumps(data, default=_json_default, indent=2))
    elif isinstance(data, dict):
        print("\n".join(fields(data)))
    elif isinstance(data, list) and all(isinstance(v, dict) for v in data):
        print("\n".join(table(data)))
    else:
        for item in data if isinstance(data, list) else [data]:
            print(cell(item))


def confirm(args: argparse.Namespace, question: str) -> bool:
    """True with ``--yes``; otherwise ask on a terminal (y/N). Without a terminal and ``--yes``: False."""
    if getattr(args, "yes", False):
        return True
    if not sys.stdin.isatty():
        print("error: not confirmed: add --yes (there is no terminal to ask on)", file=sys.stderr)
        return False
    return input(f"{question} [y/N] ").strip().lower() in ("y", "yes")


def open_for(args: argparse.Namespace, *, create: bool = False) -> Vault:
    """Open the vault as the CLI's principal; prompt for a passphrase on a terminal if the key needs one."""
    vault = open_vault(args.path, create=create, unlock=False, principal=args.principal)
    try:
        vault.unlock(create=create)
    except errors.Sealed:
        if not sys.stdin.isatty() or "passphrase" not in str(sys.exc_info()[1]):
            raise
        vault.unlock(passphrase=getpass.getpass("Passphrase for the master key: "))
    return vault


def read_secret_input(label: str, *, confirm: bool = True) -> str | bytes:
    """A value from stdin (one trailing newline dropped) or a hidden prompt: never from argv."""
    if not sys.stdin.isatty():
        data = sys.stdin.buffer.read()
        if data.endswith(b"\r\n"):
            data = data[:-2]
        elif data.endswith(b"\n"):
            data = data[:-1]
        if not data:
            raise errors.ValidationError(f"no {label} on standard input")
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            return data  # stored as bytes
    value = getpass.getpass(f"{label}: ")
    if confirm and value != getpass.getpass("Repeat it: "):
        raise errors.ValidationError(f"the two {label}s differ")
    if not value:
        raise errors.ValidationError(f"an empty {label}")
    return value


def parse_time(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise errors.ValidationError("times are ISO 8601, e.g. 2026-12-31 or 2026-12-31T12:00:00+00:00") from None
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def env_var_name(name: str) -> str:
    """``db.password`` / ``stripe/api-key`` → ``DB_PASSWORD`` / ``STRIPE_API_KEY``."""
    return "".join("_" if c in "./-" else c for c in name).upper()


# -- setup and status ------------------------------------------------------------------------------
# -- options and subcommands -------------------------------------------------------------------------------------------
def common_options(parser: argparse.ArgumentParser, top: bool) -> None:
    """Options accepted before or after the command (SUPPRESS: a subcommand never resets them)."""
    d = (lambda v: v) if top else (lambda v: argparse.SUPPRESS)
    parser.add_argument("--path", default=d(None), help="vault folder (default: VAULT_PATH or ./.vault)")
    parser.add_argument("--principal", default=d(None), help="act as this principal (default: VAULT_PRINCIPAL)")
    parser.add_argument("--json", action="store_true", default=d(False), help="machine-readable output")
    parser.add_argument("--log-level", default=d(os.environ.get("VAULT_LOG_LEVEL", "WARNING")),
                        help="JSON logs on stderr at this level (default WARNING)")


def add_command(sub, name: str, func, help_text: str, *, env: bool = False, secret: bool = False):
    p = sub.add_parser(name, help=help_text, description=help_text)
    common_options(p, top=False)
    if secret:
        p.add_argument("name", help="secret name, e.g. db.password")
    if env:
        p.add_argument("--env", default=None, help="environment (default: VAULT_ENVIRONMENT or development)")
    p.set_defaults(func=func)
    return p


