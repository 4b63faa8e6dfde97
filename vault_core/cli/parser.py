"""``vault-console``: the operator command line. It calls the vault facade only.

The CLI acts as a named principal (``--principal`` or ``VAULT_PRINCIPAL``) and
is audited like any other caller. Values are read from stdin or a prompt,
never from an argument, and printed only with ``get --reveal``.

Exit codes: 0 ok, 1 something needs a human (health), 2 bad usage or input,
3 access denied, 4 sealed or wrong key, 5 not found, 6 conflict, 7 storage or
audit failure, 8 integrity (audit chain broken, corrupted backup);
``run`` exits with its command's code (127: command not found).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from .. import errors
from ..logs import configure_logging, log_event
from . import admin, commands, machines, sso
from .common import EXIT, _log, common_options


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vault-console", description=__doc__.split("\n\n")[0],
                                     epilog=__doc__.split("\n\n")[-1], formatter_class=argparse.RawDescriptionHelpFormatter)
    common_options(parser, top=True)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_commands(sub)
    admin.add_commands(sub)
    machines.add_commands(sub)
    sso.add_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        configure_logging(args.log_level)
    except ValueError:
        parser.error("--log-level must be DEBUG, INFO, WARNING or ERROR")
    code = 1
    try:
        code = args.func(args)
        return code
    except errors.VaultError as exc:
        print(f"error: {exc}", file=sys.stderr)
        code = next((c for cls, c in EXIT.items() if isinstance(exc, cls)), 1)
        return code
    except KeyboardInterrupt:
        code = 130
        return code
    finally:
        log_event(_log, "cli_command", command=args.command, principal=args.principal or os.environ.get(
            "VAULT_PRINCIPAL"), exit_code=code)
