"""Helpers shared by the CLI commands: output, opening the vault, reading values, options."""


from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from datetime import datetime, timezone
from typing import Any

from .. import errors
from ..logs import get_logger
from ..vault import Vault, open_vault

EXIT = {errors.ValidationError: 2, errors.AccessDenied: 3, errors.Sealed: 4, errors.InvalidKey: 4,
        errors.NotFound: 5, errors.Conflict: 6, errors.StorageError: 7, errors.IntegrityError: 8,
        errors.AuditFailure: 7}
_log = get_logger("cli")


# -- helpers shared by the commands ---------------------------------------------------------------
def emit(data: Any, as_json: bool) -> None:
    """Print a dict (key: value lines), a list of dicts (one line each) or JSON."""
    if as_json:
        print(json.dumps(data, default=str, indent=2))
    elif isinstance(data, dict):
        for key, value in data.items():
            print(f"{key}: {value}")
    else:
        for item in data:
            print("  ".join(f"{v}" for v in item.values()) if isinstance(item, dict) else item)


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


