"""``vault-console audit devices add|list|remove|test|run`` and ``audit verify --file`` (offline verification)."""

from __future__ import annotations

import argparse
import json
import signal
import threading
from pathlib import Path

from .common import add_command, emit, open_for


def cmd_devices(args: argparse.Namespace) -> int:
    vault = open_for(args)
    action = args.devices_command
    if action == "add":
        emit(vault.add_audit_device(args.name, args.kind, format=args.format, path=args.file_path,
                                    max_bytes=args.max_bytes, rotate_seconds=args.rotate_seconds,
                                    address=args.address, protocol=args.protocol, required=args.required,
                                    max_lag_s=args.max_lag, backfill=args.backfill), args.json)
    elif action == "list":
        rows = vault.list_audit_devices()
        keep = ("name", "kind", "format", "required", "delivered_seq", "lag_rows", "lag_seconds", "last_error")
        emit(rows if args.json else [{k: r[k] for k in keep} for r in rows], args.json)
    elif action == "remove":
        vault.remove_audit_device(args.name)
        emit({"removed": args.name}, args.json)
    elif action == "test":
        result = vault.test_audit_device(args.name)
        emit(result, args.json)
        return 0 if result["ok"] else 7
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    """Deliver in the foreground until SIGTERM/SIGINT (a worker process for systemd or a container)."""
    from ..service.audit_devices import DeliveryThread

    vault = open_for(args)
    if args.lease_ttl is not None:
        vault.audit_devices.deliverer.lease.ttl_s = args.lease_ttl
    thread = DeliveryThread(vault.audit_devices.deliverer, args.interval)
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    thread.start()
    print("delivering", flush=True)
    done.wait()
    thread.stop()
    return 0


def cmd_verify_file(args: argparse.Namespace) -> int:
    """``audit verify --file``: each line's MAC and chain, and the checkpoint, without reading the log."""
    vault = open_for(args)
    checkpoint = json.loads(Path(args.checkpoint).read_text()) if args.checkpoint else None
    with open(args.file, encoding="utf-8") as lines:
        report = vault.verify_audit_file(lines, checkpoint, allow_gaps=args.allow_gaps)
    emit(report.to_dict(), args.json)
    return 0 if report.ok else 8


def add_commands(audit_actions, verify: argparse.ArgumentParser) -> None:
    """Add ``devices`` to the ``audit`` actions and ``--file`` to its ``verify`` (``admin.add_commands`` calls this)."""
    p = add_command(audit_actions, "devices", cmd_devices, "stream the audit log to files, syslog or sockets "
                                                           "(admin; add, list, remove, test, run)")
    dsub = p.add_subparsers(dest="devices_command", required=True, metavar="ACTION")
    a = add_command(dsub, "add", cmd_devices, "add a device: file, syslog or socket")
    a.add_argument("name")
    a.add_argument("kind", choices=("file", "syslog", "socket"))
    a.add_argument("--format", choices=("native", "ocsf", "ecs"), default="native")
    a.add_argument("--file", dest="file_path", help="file devices: the absolute path of the JSON Lines file")
    a.add_argument("--max-bytes", type=int, help="file devices: rotate before the file passes this size")
    a.add_argument("--rotate-seconds", type=int, help="file devices: rotate every this many seconds")
    a.add_argument("--address", help="syslog/socket devices: host:port")
    a.add_argument("--protocol", choices=("tcp", "udp"), default="tcp", help="syslog devices (default tcp)")
    a.add_argument("--required", action="store_true", help="refuse operations while this device is behind")
    a.add_argument("--max-lag", type=int, default=30, help="required: seconds it may be behind (default 30)")
    a.add_argument("--backfill", action="store_true", help="send the whole log, not only rows from now on")
    add_command(dsub, "list", cmd_devices, "every device with its cursor and lag")
    for name, text in (("remove", "remove a device"), ("test", "check a device is reachable, then deliver")):
        add_command(dsub, name, cmd_devices, text).add_argument("name")
    r = add_command(dsub, "run", cmd_run, "deliver in the foreground until stopped (one sender per vault, "
                                          "by lease)")
    r.add_argument("--interval", type=float, default=0.5, help="seconds between passes when idle")
    r.add_argument("--lease-ttl", type=float, help="seconds the delivery lease lasts (default 10)")
    verify.add_argument("--file", help="verify this exported or streamed JSON Lines file (native, OCSF or ECS) "
                                       "with the audit key, instead of the log")
    verify.add_argument("--allow-gaps", action="store_true", help="--file: accept missing rows (a filtered export)")
