"""The vault's everyday commands: init, status, serve, put, get, list, delete, undelete, purge, rotate, run,
import and export. Each prints text for a person (aligned fields and tables) and JSON with ``--json``."""


from __future__ import annotations

import argparse
import base64
import getpass
import os
import sys
from typing import Any

from .. import errors
from ..logs import log_event
from ..vault import open_vault

from .common import _log, add_command, confirm, emit, env_var_name, open_for, parse_time, read_secret_input


def cmd_init(args: argparse.Namespace) -> int:
    passphrase = None
    if args.passphrase:
        passphrase = getpass.getpass("New passphrase for the master key: ")
        if passphrase != getpass.getpass("Repeat it: "):
            print("the passphrases differ", file=sys.stderr)
            return 2
    vault = open_vault(args.path, passphrase=passphrase, create=True, principal=args.principal)
    status = vault.status()
    emit({"vault": str(vault.vault_dir), "backend": status["backend"], "key_source": status["key_source"],
          "owner": vault.process_identity}, args.json)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    vault = open_vault(args.path, create=False, unlock=False, principal=args.principal)
    try:
        vault.unlock()
    except (errors.Sealed, errors.InvalidKey) as exc:
        status = vault.status()
        status["error"] = str(exc)
        emit(status, args.json)
        return 4
    status = vault.status()
    try:  # counts for those who may see the whole vault
        health = vault.get_vault_health()
        status.update({k: health[k] for k in ("total_secrets", "by_environment", "by_type") if k in health})
    except errors.AccessDenied:
        pass
    emit(status, args.json)
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from ..console.serve import main as serve_main

    return serve_main(args)


# -- secrets ------------------------------------------------------------------------------------------
def cmd_put(args: argparse.Namespace) -> int:
    vault = open_for(args)
    value = read_secret_input(f"value for {args.name}")
    secret_id = vault.store_secret(args.name, value, args.type, args.env, args.description or "",
                                   rotation_interval_days=args.rotation_days, tags=args.tag or None,
                                   expires_at=parse_time(args.expires), cas=args.cas)
    meta = vault.get_metadata(secret_id=secret_id)
    emit({"id": secret_id, "environment": meta.environment, "name": meta.name, "version": meta.current_version},
         args.json)
    return 0


def cmd_get(args: argparse.Namespace) -> int:
    vault = open_for(args)
    if not args.reveal:
        if args.version is not None:
            raise errors.ValidationError("--version needs --reveal (metadata is per secret)")
        meta = vault.get_metadata(args.name, args.env)
        if meta is None:
            raise errors.NotFound(f"no secret {args.name} in this environment")
        emit(meta.to_dict(), args.json)
        return 0
    value = vault.reveal_secret(args.name, args.env, version=args.version)
    if value is None:
        raise errors.NotFound(f"no secret {args.name} in this environment")
    if args.json:
        emit({"name": args.name, "value": value if isinstance(value, str) else None,
              "value_base64": None if isinstance(value, str) else base64.b64encode(value).decode()}, True)
    elif isinstance(value, bytes):
        sys.stdout.buffer.write(value)
    else:
        print(value)
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    vault = open_for(args)
    rows: list[dict[str, Any]] = []
    cursor = None
    while len(rows) < args.limit:
        page = vault.list_secrets(args.env if args.env else None, args.type, tag=args.tag, prefix=args.prefix,
                                  search=args.search, limit=min(1000, args.limit - len(rows)), cursor=cursor,
                                  only_deleted=args.deleted)
        rows += [{"environment": m.environment, "name": m.name, "type": m.secret_type,
                  "version": m.current_version, "updated_at": m.updated_at, "next_rotation_at": m.next_rotation_at}
                 | ({"deleted_at": m.deleted_at} if args.deleted else {}) for m in page]
        cursor = page.next_cursor
        if cursor is None:
            break
    emit(rows, args.json)
    return 0


def _where(vault, args: argparse.Namespace, *, deleted: bool | None) -> tuple[str, str, str]:
    """(id, environment, name) of the secret the arguments name; NotFound if there is none in that state."""
    meta = vault.get_metadata(args.name, args.env)  # deleted ones too, with their deleted_at
    if meta is None or (deleted is not None and (meta.deleted_at is not None) != deleted):
        state = {True: "deleted ", False: "live ", None: ""}[deleted]
        raise errors.NotFound(f"no {state}secret {args.name} in this environment")
    return meta.id, meta.environment, meta.name


def cmd_delete(args: argparse.Namespace) -> int:
    vault = open_for(args)
    secret_id, env, name = _where(vault, args, deleted=False)
    vault.delete_secret(secret_id=secret_id)
    emit({"deleted": f"{env}/{name}", "undo": f"vault-console undelete {name} --env {env}"}, args.json)
    return 0


def cmd_undelete(args: argparse.Namespace) -> int:
    vault = open_for(args)
    secret_id, env, name = _where(vault, args, deleted=True)
    vault.restore_secret(secret_id=secret_id)
    emit({"restored": f"{env}/{name}"}, args.json)
    return 0


def cmd_purge(args: argparse.Namespace) -> int:
    """Asks first (y/N) unless --yes; without a terminal it needs --yes (exit 2 otherwise)."""
    vault = open_for(args)
    secret_id, env, name = _where(vault, args, deleted=None)
    if not confirm(args, f"Purge {env}/{name} and every version? This cannot be undone."):
        return 2
    vault.purge_secret(secret_id=secret_id)
    emit({"purged": f"{env}/{name}"}, args.json)
    return 0


def cmd_rotate(args: argparse.Namespace) -> int:
    vault = open_for(args)
    version = vault.rotate_secret(generator=args.generator, name=args.name, environment=args.env)
    emit({"name": args.name, "version": version}, args.json)
    return 0


def cmd_rotate_due(args: argparse.Namespace) -> int:
    """For cron: exit 0 when nothing failed, 1 when a rotation failed (it is retried later)."""
    vault = open_for(args)
    run = vault.rotate_due(limit=args.limit)
    emit(run.to_dict() if args.json else run.summary(), args.json)
    return 1 if run.failed else 0


def _readable(args: argparse.Namespace, environment: Any):
    """(name, value or None when denied) of the environment's secrets: from ``VAULT_ADDR``'s HTTP API
    (``integrations.remote``: no key or database here), else from the local vault."""
    from ..integrations.remote import connect

    remote = connect()
    if remote is not None:
        yield from remote.readable(environment, args.prefix)
        return
    vault = open_for(args)
    try:
        cursor = None
        while True:
            page = vault.list_secrets(environment, prefix=args.prefix, limit=1000, cursor=cursor)
            for meta in page:
                try:
                    yield meta.name, vault.get_secret(meta.name, meta.environment)
                except errors.AccessDenied:
                    yield meta.name, None
            cursor = page.next_cursor
            if cursor is None:
                break
    finally:
        vault.storage.dispose()


def cmd_run(args: argparse.Namespace) -> int:
    """Run one command with this environment's secrets as variables; our own os.environ is untouched."""
    import subprocess

    command = list(args.command)
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        raise errors.ValidationError("give a command after --, e.g. vault-console run -- python app.py")
    from ..types import Environment, default_environment

    environment = Environment.parse(args.env) if args.env else default_environment()
    child_env = dict(os.environ)
    if child_env.get("VAULT_ADDR"):  # the command gets values, never the credential that read them
        for var in ("VAULT_TOKEN", "VAULT_SECRET_ID"):
            child_env.pop(var, None)
    injected: dict[str, str] = {}
    for name, value in _readable(args, environment):
        var = env_var_name(name)
        if var in injected:
            raise errors.ValidationError(f"{injected[var]} and {name} both become {var}")
        if value is None:
            print(f"warning: {name}: not readable, not injected", file=sys.stderr)
        elif not isinstance(value, str):
            print(f"warning: {name}: binary value, not injected", file=sys.stderr)
        else:
            child_env[var] = value
            injected[var] = name
    log_event(_log, "run", variables=sorted(injected), program=os.path.basename(command[0]))
    try:
        return subprocess.run(command, env=child_env).returncode
    except FileNotFoundError:
        print(f"error: command not found: {command[0]}", file=sys.stderr)
        return 127


# -- migration ------------------------------------------------------------------------------------------
def cmd_import_toml(args: argparse.Namespace) -> int:
    from ..migration import import_toml

    vault = open_for(args)
    report = import_toml(vault, args.file, args.env, dry_run=args.dry_run, metadata=args.meta)
    emit(report.to_dict(), args.json)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from ..migration import EXPORT_WARNING, export_docker_env, export_dotenv, export_toml, write_private

    vault = open_for(args)
    if args.format == "toml":
        text = export_toml(vault, args.env, metadata=args.with_meta)
    else:
        text = (export_dotenv if args.format == "env" else export_docker_env)(vault, args.env)
    print(EXPORT_WARNING, file=sys.stderr)
    if args.out:
        write_private(args.out, text)
    else:
        sys.stdout.write(text)
    return 0


def add_commands(sub) -> None:
    """Register these commands on the subparsers ``sub`` (in the order ``--help`` lists them)."""
    p = add_command(sub, "init", cmd_init, "create a vault and its master key (0600 file in a 0700 folder)")
    p.add_argument("--passphrase", action="store_true", help="wrap the master key with a passphrase (prompted)")
    add_command(sub, "status", cmd_status, "sealed or not, backend, key terms, counts")
    p = add_command(sub, "serve", cmd_serve, "start the admin console (creates the vault and a first admin)")
    p.add_argument("--demo", action="store_true", help="seed demo secrets, rules and audit history")
    p.add_argument("--port", type=int, default=8501)
    p.add_argument("--address", default="127.0.0.1")
    p.add_argument("--api-port", type=int, help="also serve the HTTP API (/v1/) alone on this port")
    p.add_argument("--api-cert", help="TLS certificate (PEM) of the --api-port server")
    p.add_argument("--api-key", help="its private key (PEM)")
    p = add_command(sub, "put", cmd_put, "store a secret; the value comes from stdin or a hidden prompt",
                    env=True, secret=True)
    p.add_argument("--type", default="generic", help="api_key, password, database_url, token, ... (default generic)")
    p.add_argument("--description")
    p.add_argument("--tag", action="append", help="a tag (repeat for several)")
    p.add_argument("--rotation-days", type=int, help="rotate every N days")
    p.add_argument("--expires", help="expiry time, ISO 8601")
    p.add_argument("--cas", type=int, help="check-and-set: 0 = create only, N = current version must be N")
    p = add_command(sub, "get", cmd_get, "metadata of a secret; its value only with --reveal (audited)",
                    env=True, secret=True)
    p.add_argument("--reveal", action="store_true", help="print the value")
    p.add_argument("--version", type=int, help="an older version (with --reveal)")
    p = add_command(sub, "list", cmd_list, "secrets you may see (metadata only)", env=True)
    p.add_argument("--type")
    p.add_argument("--tag")
    p.add_argument("--prefix")
    p.add_argument("--search")
    p.add_argument("--limit", type=int, default=1000)
    p.add_argument("--deleted", action="store_true", help="list deleted secrets (which undelete can bring back)")
    add_command(sub, "delete", cmd_delete, "delete a secret (an admin can undelete it)", env=True, secret=True)
    add_command(sub, "undelete", cmd_undelete, "restore a deleted secret (`restore` restores a backup)",
                env=True, secret=True)
    p = add_command(sub, "purge", cmd_purge, "destroy a secret and every version (asks first)", env=True,
                    secret=True)
    p.add_argument("--yes", action="store_true", help="do not ask (needed without a terminal)")
    p = add_command(sub, "rotate", cmd_rotate, "replace a value with a generated one", env=True, secret=True)
    p.add_argument("--generator", help="password, token, key or a registered name")
    p = add_command(sub, "rotate-due", cmd_rotate_due, "rotate every secret whose rotation date has passed "
                                                       "(for cron; once across replicas)")
    p.add_argument("--limit", type=int, default=100, help="at most N secrets this run (default 100)")
    p = add_command(sub, "run", cmd_run, "run a command with the environment's secrets as variables "
                                         "(db.password → DB_PASSWORD)", env=True)
    p.add_argument("--prefix", help="only secrets under this prefix")
    p.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND [ARGS...]")
    p = add_command(sub, "import-toml", cmd_import_toml, "import a secrets.toml into an environment", env=True)
    p.add_argument("file")
    p.add_argument("--dry-run", action="store_true", help="show what would change")
    p.add_argument("--meta", help='sidecar TOML of [__vault__."name"] tables: type, tags, description')
    p = add_command(sub, "export", cmd_export, "write readable secrets as secrets.toml or .env (CLEAR TEXT)",
                    env=True)
    p.add_argument("--format", choices=("toml", "env", "docker-env"), default="toml",
                   help="env: for python-dotenv; docker-env: for docker --env-file (one-line values only)")
    p.add_argument("--with-meta", action="store_true", help="toml: add type, tags, description per secret")
    p.add_argument("--out", help="file to create (0600); default stdout")
