"""``vault-console machines``: machine identities (AppRole) for apps that read over the HTTP API.

A secret id is printed once, on standard output, and never again (only its hash is kept). Every
command is an audited vault operation and needs the admin role.
"""

from __future__ import annotations

import argparse

from ..service.machines import DEFAULT_MAX_TTL, DEFAULT_TTL, MachinesService
from .common import add_command, emit, open_for


def _service(args: argparse.Namespace) -> MachinesService:
    return open_for(args).machines


def cmd_create(args: argparse.Namespace) -> int:
    machines = _service(args)
    role_id = machines.create_machine(args.name, token_ttl=args.ttl, token_max_ttl=args.max_ttl,
                                      bound_cidrs=args.cidr or "", secret_id_uses=args.uses)
    secret_id = machines.new_secret_id(args.name)
    emit({"machine": args.name, "role_id": role_id, "secret_id": secret_id,
          "note": "the secret id is shown once: give it to the app as VAULT_SECRET_ID"}, args.json)
    return 0


def cmd_secret_id(args: argparse.Namespace) -> int:
    secret_id = _service(args).new_secret_id(args.name, revoke_others=args.rotate)
    emit({"machine": args.name, "secret_id": secret_id, "older_revoked": args.rotate}, args.json)
    return 0


def cmd_update(args: argparse.Namespace) -> int:
    _service(args).update_machine(args.name, token_ttl=args.ttl, token_max_ttl=args.max_ttl,
                                  bound_cidrs=None if args.cidr is None else args.cidr, secret_id_uses=args.uses)
    emit({"machine": args.name, "updated": True}, args.json)
    return 0


def cmd_revoke_tokens(args: argparse.Namespace) -> int:
    emit({"machine": args.name, "tokens_revoked": _service(args).revoke_machine_tokens(args.name)}, args.json)
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    _service(args).delete_machine(args.name)
    emit({"machine": args.name, "deleted": True}, args.json)
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    emit(_service(args).list_machines(), args.json)
    return 0


def _settings(p: argparse.ArgumentParser, defaults: bool) -> None:
    p.add_argument("--ttl", type=int, default=DEFAULT_TTL if defaults else None, help="token TTL, seconds")
    p.add_argument("--max-ttl", type=int, default=DEFAULT_MAX_TTL if defaults else None,
                   help="token max TTL from login, seconds (renewals stop there)")
    p.add_argument("--cidr", action="append", help="allowed source network (repeatable; default: any)")
    p.add_argument("--uses", type=int, default=0 if defaults else None,
                   help="logins per secret id (0: unlimited)")


def add_commands(sub) -> None:
    """Register ``machines`` and its actions (called by ``cli/parser.py``)."""
    p = add_command(sub, "machines", None, "machine identities: AppRole logins for apps using the HTTP API (admin)")
    msub = p.add_subparsers(dest="machines_command", required=True, metavar="ACTION")
    a = add_command(msub, "create", cmd_create, "create a machine; prints its role id and a first secret id once")
    a.add_argument("name")
    _settings(a, True)
    a = add_command(msub, "update", cmd_update, "change TTLs, CIDRs or uses (issued tokens keep their times)")
    a.add_argument("name")
    _settings(a, False)
    a = add_command(msub, "secret-id", cmd_secret_id, "issue another secret id (printed once)")
    a.add_argument("name")
    a.add_argument("--rotate", action="store_true", help="revoke every older secret id of this machine")
    a = add_command(msub, "revoke-tokens", cmd_revoke_tokens, "revoke every live token of a machine")
    a.add_argument("name")
    a = add_command(msub, "delete", cmd_delete, "delete a machine's login, secret ids and tokens")
    a.add_argument("name")
    add_command(msub, "list", cmd_list, "machines and their settings (never a secret)")
