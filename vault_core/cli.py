"""``vault-console``: the operator command line. It calls the vault facade only.

Exit codes: 0 ok, 1 something needs a human (health), 2 bad usage or input,
3 access denied, 4 sealed or wrong key, 5 not found, 6 conflict, 7 storage.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from . import errors
from .vault import open_vault

EXIT = {errors.ValidationError: 2, errors.AccessDenied: 3, errors.Sealed: 4, errors.InvalidKey: 4,
        errors.NotFound: 5, errors.Conflict: 6, errors.StorageError: 7, errors.IntegrityError: 8,
        errors.AuditFailure: 7}


def _print(data: Any, as_json: bool) -> None:
    if as_json:
        print(json.dumps(data, default=str, indent=2))
    else:
        for key, value in data.items():
            print(f"{key}: {value}")


def cmd_init(args: argparse.Namespace) -> int:
    passphrase = None
    if args.passphrase:
        import getpass

        passphrase = getpass.getpass("New passphrase for the master key: ")
        if passphrase != getpass.getpass("Repeat it: "):
            print("the passphrases differ", file=sys.stderr)
            return 2
    vault = open_vault(args.path, passphrase=passphrase, create=True)
    status = vault.status()
    _print({"vault": str(vault.vault_dir), "backend": status["backend"], "key_source": status["key_source"],
            "owner": vault.process_identity}, args.json)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    vault = open_vault(args.path, create=False, unlock=False)
    try:
        vault.unlock()
    except (errors.Sealed, errors.InvalidKey) as exc:
        status = vault.status()
        status["error"] = str(exc)
        _print(status, args.json)
        return 4
    _print(vault.status(), args.json)
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from .console.serve import main as serve_main

    return serve_main(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vault-console", description=__doc__.splitlines()[0])
    parser.add_argument("--path", help="vault folder (default: VAULT_PATH or ./.vault)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("init", help="create a vault and its master key (0600 file in a 0700 folder)")
    p.add_argument("--passphrase", action="store_true", help="wrap the master key with a passphrase (prompted)")
    p.set_defaults(func=cmd_init)
    p = sub.add_parser("status", help="sealed or not, backend, key terms, counts")
    p.set_defaults(func=cmd_status)
    p = sub.add_parser("serve", help="start the admin console (creates the vault and a first admin)")
    p.add_argument("--demo", action="store_true", help="seed demo secrets, rules and audit history")
    p.add_argument("--port", type=int, default=8501)
    p.add_argument("--address", default="127.0.0.1")
    p.set_defaults(func=cmd_serve)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except errors.VaultError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return next((code for cls, code in EXIT.items() if isinstance(exc, cls)), 1)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
