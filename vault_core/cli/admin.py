"""Operator commands of ``vault-console``: audit, backup/restore, health, metrics, users, rekey, export-key."""

from __future__ import annotations

import argparse
import base64
import json
import sys
from pathlib import Path

from .. import errors
from ..crypto import write_key_file
from ..service.two_factor import status_label
from ..vault import open_vault
from . import audit_devices
from .common import add_command, emit, open_for, parse_time, read_secret_input


# -- audit ----------------------------------------------------------------------------------------
def _audit_filters(args: argparse.Namespace) -> dict:
    return {k: v for k, v in dict(principal=args.who, operation=args.operation, outcome=args.outcome,
                                  environment=args.env, name=args.name, since=parse_time(args.since),
                                  until=parse_time(args.until)).items() if v is not None}


def cmd_audit_tail(args: argparse.Namespace) -> int:
    vault = open_for(args)
    rows = vault.get_audit_log(limit=args.lines, **_audit_filters(args))
    rows.reverse()  # oldest first, like tail
    keep = ("seq", "timestamp", "principal", "operation", "environment", "secret_name", "outcome", "reason")
    emit([{k: r[k] for k in keep} for r in rows], args.json)
    return 0


def progress_bar(stream=None, width: int = 30):
    """A ``progress(done, total)`` callback drawing ``[#####     ]  42%  420,000 / 1,000,000 rows`` on
    ``stream`` (stderr: stdout keeps the report), redrawn when the percentage moves."""
    stream = stream or sys.stderr
    shown = [-1]

    def progress(done: int, total: int) -> None:
        pct = 100 if total <= 0 else min(100, done * 100 // total)
        if pct == shown[0]:
            return
        shown[0] = pct
        bar = "#" * (pct * width // 100)
        stream.write(f"\r[{bar:<{width}}] {pct:3d}%  {done:,} / {total:,} rows" + ("\n" if pct == 100 else ""))
        stream.flush()

    return progress


def cmd_audit_verify(args: argparse.Namespace) -> int:
    if args.file:
        return audit_devices.cmd_verify_file(args)
    vault = open_for(args)
    checkpoint = json.loads(Path(args.checkpoint).read_text()) if args.checkpoint else None
    report = vault.verify_audit_log(checkpoint, progress=progress_bar())
    emit(report.to_dict(), args.json)
    if args.save_checkpoint and report.ok:
        Path(args.save_checkpoint).write_text(json.dumps(vault.audit_checkpoint()))
    return 0 if report.ok else 8


def cmd_audit_export(args: argparse.Namespace) -> int:
    vault = open_for(args)
    chunks = vault.export_audit(args.format, **_audit_filters(args))
    if args.out:
        from ..backup import create_private

        with open(create_private(Path(args.out)), "w", encoding="utf-8") as out:
            out.writelines(chunks)
    else:
        sys.stdout.writelines(chunks)
    return 0


# -- backup and restore ------------------------------------------------------------------------------
def cmd_backup(args: argparse.Namespace) -> int:
    vault = open_for(args)
    if args.list:
        emit(vault.list_backups(args.dir), args.json)
        return 0
    doc = vault.backup(args.dir, keep=args.keep)
    emit({"path": doc["path"], "audit_seq": doc["audit"]["seq"], "rows": sum(doc["counts"].values()),
          "sha256": doc["sha256"], "removed": doc["removed"]}, args.json)
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    if not args.yes:
        print("error: restore replaces every secret, rule and audit row of this vault with the backup's; "
              "stop other processes using it and pass --yes", file=sys.stderr)
        return 2
    vault = open_for(args, create=True)  # a lost database can be restored into a new one
    emit(vault.restore_backup(args.file), args.json)
    return 0


def cmd_export_key(args: argparse.Namespace) -> int:
    if not (args.out or args.print):
        print("error: choose --out FILE (a 0600 key file) or --print (to stdout)", file=sys.stderr)
        return 2
    vault = open_for(args)
    key = vault.export_master_key()
    if args.out:
        passphrase = None
        if args.passphrase:  # wrap the exported copy (scrypt), prompted twice
            passphrase = read_secret_input("passphrase for the exported key file")
        write_key_file(args.out, base64.b64decode(key), passphrase=passphrase)
        emit({"written": str(Path(args.out).absolute())}, args.json)
    else:
        print(key)
    return 0


# -- health and metrics ---------------------------------------------------------------------------------
def cmd_health(args: argparse.Namespace) -> int:
    """Exit 1 when a human is needed: sealed, unreachable, chain broken, overdue, expired, key worn out."""
    from ..service.health import needs_attention

    try:
        vault = open_vault(args.path, create=False, unlock=False, principal=args.principal)
    except errors.Sealed as exc:  # no vault there
        health = {"sealed": True, "reachable": None, "error": str(exc)}
        health["needs_attention"] = needs_attention(health)
        emit(health, args.json)
        return 1
    except Exception as exc:  # the database did not answer (migrations run at open)
        health = {"sealed": None, "reachable": False, "error": type(exc).__name__}
        health["needs_attention"] = needs_attention(health)
        emit(health, args.json)
        return 1
    try:
        vault.unlock()
    except (errors.Sealed, errors.InvalidKey, errors.StorageError) as exc:
        status = vault.status()
        health = {"sealed": True, "backend": status["backend"], "reachable": status.get("reachable"),
                  "error": str(exc)}
        health["needs_attention"] = needs_attention(health)
        emit(health, args.json)
        return 1
    status = vault.status()
    if not status.get("reachable"):
        health = {"sealed": False, "backend": status["backend"], "reachable": False}
        health["needs_attention"] = needs_attention(health)
        emit(health, args.json)
        return 1
    if not args.no_verify:
        vault.verify_audit_log()
    health = vault.get_vault_health()
    emit(health, args.json)
    return 1 if health.get("needs_attention") else 0


def cmd_metrics(args: argparse.Namespace) -> int:
    import os
    import signal
    import threading

    from ..metrics import VaultMetrics

    vault = open_for(args)
    port = args.port if args.port is not None else int(os.environ.get("VAULT_METRICS_PORT") or 9108)
    metrics = VaultMetrics(vault, health_ttl=args.health_ttl)
    bound = metrics.start(port, args.addr)
    print(f"serving metrics on http://{args.addr}:{bound}/metrics", file=sys.stderr, flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while not stop.wait(1.0):
            pass
    except KeyboardInterrupt:
        pass
    metrics.close()
    return 0


# -- users -------------------------------------------------------------------------------------------------
def cmd_users(args: argparse.Namespace) -> int:
    vault = open_for(args)
    action = args.action
    if action == "list":
        factor = {s["user"]: s for s in vault.two_factor_status()}
        emit([{**{k: p.get(k) for k in ("name", "kind", "roles", "disabled")},
               "two_factor": status_label(factor.get(p["name"]))} for p in vault.list_principals()], args.json)
        return 0
    if action == "2fa-require":
        if not args.role:
            raise errors.ValidationError("users 2fa-require needs --role ROLE")
        vault.require_two_factor(args.role, not args.off)
        emit(vault.two_factor_policy(), args.json)
        return 0
    if not args.user:
        raise errors.ValidationError(f"users {action} needs a user name")
    if action == "add":
        password = read_secret_input(f"password for {args.user}")
        vault.add_user(args.user, password, args.roles or ())
    elif action == "passwd":
        vault.set_password(args.user, read_secret_input(f"new password for {args.user}"))
    elif action == "lock":
        vault.lock_user(args.user)
    elif action == "unlock":
        vault.unlock_user(args.user)
    elif action == "roles":
        vault.set_roles(args.user, args.roles or ())
    elif action == "2fa-reset":
        vault.reset_two_factor(args.user)
    emit(vault.get_principal(args.user) or {"name": args.user}, args.json)
    return 0


# -- rekey ----------------------------------------------------------------------------------------------------
def _progress(done: int, total: int) -> None:
    width = 30
    filled = width if total <= 0 else int(width * done / total)
    print(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total}", end="", file=sys.stderr, flush=True)


def cmd_rekey(args: argparse.Namespace) -> int:
    """New data key term + re-encryption with a progress bar; ``--master-key`` also re-wraps under a new master key."""
    vault = open_for(args)
    out: dict = {}
    if args.master_key:
        passphrase = read_secret_input("new passphrase for the master key") if args.passphrase else None
        vault.change_master_key(passphrase=passphrase)
        out["master_key"] = "changed (key file replaced; restart other processes)"
    if not args.resume:
        out["new_term"] = vault.rotate_key_term()
    job = vault.reencrypt(progress=_progress, batch=args.batch)
    print(file=sys.stderr)
    out.update(job)
    emit(out, args.json)
    return 0


# -- the parser --------------------------------------------------------------------------------------------
def add_commands(sub) -> None:
    p = add_command(sub, "audit", None, "read, verify and export the audit log (admin or auditor)")
    asub = p.add_subparsers(dest="audit_command", required=True, metavar="ACTION")
    for name, func, text in (("tail", cmd_audit_tail, "the newest rows, oldest first"),
                             ("verify", cmd_audit_verify, "check the hash chain (exit 8 when broken)"),
                             ("export", cmd_audit_export, "rows as CSV or JSON Lines")):
        a = add_command(asub, name, func, text, env=True)
        a.add_argument("--who", help="only this principal")
        a.add_argument("--operation")
        a.add_argument("--outcome", choices=("allowed", "denied", "failed"))
        a.add_argument("--name", help="only this secret name")
        a.add_argument("--since", help="ISO 8601 time")
        a.add_argument("--until", help="ISO 8601 time")
        if name == "tail":
            a.add_argument("-n", "--lines", type=int, default=20)
        if name == "verify":
            a.add_argument("--checkpoint", help="a JSON checkpoint saved earlier (catches a cut-off tail)")
            a.add_argument("--save-checkpoint", help="write the current head here when the chain is sound")
            audit_devices.add_commands(asub, a)
        if name == "export":
            a.add_argument("--format", choices=("csv", "jsonl", "ocsf", "ecs"), default="csv",
                           help="ocsf / ecs: JSON Lines of OCSF 1.2 events or ECS documents, for a SIEM")
            a.add_argument("--out", help="file to create (0600); default stdout")
    p = add_command(sub, "backup", cmd_backup, "write an online, consistent backup (ciphertext only)")
    p.add_argument("--dir", help="backup folder (default: VAULT_BACKUP_PATH or <vault>/backups)")
    p.add_argument("--keep", type=int, default=10, help="keep the newest N backups (default 10)")
    p.add_argument("--list", action="store_true", help="list backups instead")
    p = add_command(sub, "restore", cmd_restore, "verify a backup, then replace the vault with it")
    p.add_argument("file", help="the backup data file (its .manifest.json must be beside it)")
    p.add_argument("--yes", action="store_true", help="confirm: the vault's contents are replaced")
    p = add_command(sub, "export-key", cmd_export_key, "export the master key (audited); keep it offline")
    p.add_argument("--out", help="write a 0600 key file (usable as VAULT_MASTER_KEY_FILE)")
    p.add_argument("--print", action="store_true", help="print the base64 key to stdout")
    p.add_argument("--passphrase", action="store_true", help="wrap the --out file with a passphrase (stdin/prompt)")
    p = add_command(sub, "health", cmd_health, "health for monitoring: exit 1 when a human is needed")
    p.add_argument("--no-verify", action="store_true", help="skip the audit chain check")
    p = add_command(sub, "metrics", cmd_metrics, "serve Prometheus metrics until stopped")
    p.add_argument("--port", type=int, help="port (default VAULT_METRICS_PORT or 9108; 0 = any)")
    p.add_argument("--addr", default="127.0.0.1")
    p.add_argument("--health-ttl", type=float, default=5.0, help="seconds between health reads")
    p = add_command(sub, "users", cmd_users, "console users: add, passwd, lock, unlock, roles, list, "
                                              "2fa-reset (remove a user's two-factor), 2fa-require --role")
    p.add_argument("action", choices=("add", "passwd", "lock", "unlock", "roles", "list", "2fa-reset", "2fa-require"))
    p.add_argument("user", nargs="?")
    p.add_argument("roles", nargs="*", help="roles (for add and roles)")
    p.add_argument("--role", help="2fa-require: the role whose users must use two-factor")
    p.add_argument("--off", action="store_true", help="2fa-require: stop requiring it for --role")
    p = add_command(sub, "rekey", cmd_rekey, "rotate keys: a new data key term, then re-encrypt every value "
                                              "under it with a progress bar")
    p.add_argument("--resume", action="store_true", help="only finish an interrupted re-encryption")
    p.add_argument("--master-key", action="store_true", help="also replace the master key (re-wrap every key)")
    p.add_argument("--passphrase", action="store_true", help="protect the new master key file with a passphrase")
    p.add_argument("--batch", type=int, default=500, help="versions per transaction (default 500)")
