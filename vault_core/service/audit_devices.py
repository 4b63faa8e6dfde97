"""Audit devices: the audit log streamed, oldest first, to a file, syslog or a TCP socket.

Each device has a durable cursor in the database (``audit_devices.delivered_seq``, the last row it
accepted). The deliverer reads committed rows after it (chain order: rows are numbered under the
chain head's lock, so a committed row's predecessors are all committed), sends them, and only then
moves the cursor: delivery is at-least-once, and a device that was down, or a process that was killed,
resumes from where it stopped. Only the holder of the ``audit-delivery`` lease sends, so two replicas
do not both send a row; the cursor moves with a compare-and-set and only while that lease is held.

Run one deliverer per vault process::

    from vault_core.service.audit_devices import start_audit_delivery
    start_audit_delivery(vault)          # a daemon thread; idempotent; the console's serve starts it

or in the foreground: ``vault-console audit devices run``. A single pass: ``vault.deliver_audit()``.
"""

from __future__ import annotations

import ipaddress
import json
import re
import threading
from collections.abc import Mapping
from typing import Any

from ..background import PerVault
from .. import audit, audit_formats
from ..errors import Conflict, NotFound, ValidationError
from ..storage import Storage, repos
from ..types import US, Clock, to_datetime
from . import audit_gate
from .audit_sinks import make_sink
from .lease import Lease
from .runner import Runner

KINDS = ("file", "syslog", "socket")
FORMATS = ("native", "ocsf", "ecs")
LEASE_NAME = "audit-delivery"
LEASE_TTL_S = 10.0
_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
ADMIN = ("admin",)


def format_line(fmt: str, row: Mapping[str, Any]) -> str:
    """One stored audit row as one JSON line in ``fmt`` (native, ocsf or ecs)."""
    if fmt == "native":
        return json.dumps(audit.native_event(row), ensure_ascii=False) + "\n"
    return next(audit_formats.export_events(iter([row]), fmt))


def _address(address: Any) -> tuple[str, int]:
    """``host:port`` (``[v6]:port`` for IPv6) → (host, port). Raises ``ValidationError``."""
    text = str(address or "")
    match = re.fullmatch(r"\[([0-9a-fA-F:.]+)\]:(\d{1,5})|([A-Za-z0-9.-]{1,253}):(\d{1,5})", text)
    if not match:
        raise ValidationError("address must be host:port (or [IPv6]:port)")
    host, port = (match[1], match[2]) if match[1] else (match[3], match[4])
    if match[1]:
        ipaddress.IPv6Address(host)
    if not 0 < int(port) < 65536:
        raise ValidationError("the port must be 1-65535")
    return host, int(port)


def device_config(kind: str, *, path: Any = None, max_bytes: Any = None, rotate_seconds: Any = None,
                  address: Any = None, protocol: str = "tcp") -> dict[str, Any]:
    """The stored configuration of a device of ``kind``. Raises ``ValidationError``."""
    if kind == "file":
        if not isinstance(path, str) or not path.startswith("/") or "\x00" in path or len(path) > 1024:
            raise ValidationError("a file device needs an absolute path")
        config: dict[str, Any] = {"path": path}
        for key, value in (("max_bytes", max_bytes), ("rotate_seconds", rotate_seconds)):
            if value is not None:
                if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                    raise ValidationError(f"{key} must be a positive integer")
                config[key] = value
        return config
    if kind in ("syslog", "socket"):
        host, port = _address(address)
        config = {"host": host, "port": port}
        if kind == "syslog":
            if protocol not in ("tcp", "udp"):
                raise ValidationError("syslog protocol must be tcp or udp")
            config["protocol"] = protocol
        return config
    raise ValidationError(f"kind must be one of {', '.join(KINDS)}")


def device_status(tx, now: int, head: int) -> list[dict[str, Any]]:
    """Each device's lag (rows and seconds behind the head), for health and ``list``."""
    out = []
    for d in repos.devices.list_devices(tx):
        pending = repos.audit.rows_after(tx, d["delivered_seq"], 1) if d["delivered_seq"] < head else []
        lag_s = max(0, now - pending[0]["ts"]) / US if pending else 0.0
        out.append({"name": d["name"], "kind": d["kind"], "format": d["format"], "required": bool(d["required"]),
                    "max_lag_s": d["max_lag_s"], "config": json.loads(d["config"]),
                    "delivered_seq": d["delivered_seq"], "lag_rows": max(0, head - d["delivered_seq"]),
                    "lag_seconds": lag_s, "delivered_at": to_datetime(d["delivered_at"]),
                    "failing_since": to_datetime(d["failing_since"]), "last_error": d["last_error"],
                    "refusing": bool(d["required"]) and lag_s > d["max_lag_s"]})
    return out


class Deliverer:
    """Sends every device its rows after its cursor, while holding the delivery lease."""

    def __init__(self, storage: Storage, clock: Clock, holder: str, gate: audit_gate.AuditGate, *,
                 batch: int = 500, lease_ttl_s: float = LEASE_TTL_S):
        self._storage, self._clock, self._gate, self.batch = storage, clock, gate, batch
        self.lease = Lease(storage, clock, LEASE_NAME, holder, lease_ttl_s)
        self._sinks: dict[str, tuple[str, Any]] = {}
        self._lock = threading.Lock()

    def _sink(self, device: Mapping[str, Any]):
        key = f"{device['kind']}:{device['config']}"
        found = self._sinks.get(device["name"])
        if found is None or found[0] != key:
            if found is not None:
                found[1].close()
            found = self._sinks[device["name"]] = (key, make_sink(device["kind"], json.loads(device["config"])))
        return found[1]

    def _leading(self) -> bool:
        return self.lease.renew() if self.lease.held else self.lease.__enter__().held

    def deliver_once(self) -> int:
        """One pass over every device: send what it has not accepted yet. Returns how many rows were sent
        (0 when another process holds the lease). Raises ``StorageError``; a device's own failure is
        recorded on the device (``failing_since``, ``last_error``), not raised."""
        with self._lock:
            with self._storage.transaction(write=False, durable=False) as tx:
                devices = repos.devices.list_devices(tx)
            if not devices or not self._leading():  # no device: no lease taken, no write every pass
                return 0
            for gone in set(self._sinks) - {d["name"] for d in devices}:
                self._sinks.pop(gone)[1].close()
            sent = sum(self._deliver(d) for d in devices)
            if sent:
                self._gate.forget()
            return sent

    def _deliver(self, device: Mapping[str, Any]) -> int:
        name, sent = device["name"], 0
        sink = self._sink(device)
        while True:
            if not self._leading():
                return sent
            # the cursor as the database has it now, read after the lease is ours: the list this pass
            # started from may predate another replica's last batch
            with self._storage.transaction(write=False, durable=False) as tx:
                current = repos.devices.get_device(tx, name)
                if current is None:
                    return sent
                cursor = current["delivered_seq"]
                rows = repos.audit.rows_after(tx, cursor, self.batch)
            if not rows:
                return sent
            try:
                sink.send([(row, format_line(device["format"], row)) for row in rows])
            except OSError as exc:
                sink.close()
                with self._storage.transaction() as tx:
                    repos.devices.mark_failing(tx, name, self._clock(), f"{type(exc).__name__}: {exc.strerror or ''}")
                return sent
            with self._storage.transaction() as tx:
                holder = repos.leases.lease_holder(tx, LEASE_NAME)
                if holder is None or holder["holder"] != self.lease.holder or \
                        not repos.devices.advance(tx, name, cursor, rows[-1]["seq"], self._clock()):
                    return sent  # another process took over (or the device was removed): stop here
            sent += len(rows)

    def close(self) -> None:
        """Close every sink and give the lease up (another replica takes over at once). Raises ``StorageError``."""
        with self._lock:
            for _, sink in self._sinks.values():
                sink.close()
            self._sinks.clear()
            self.lease.__exit__(None, None, None)


class AuditDevicesService:
    """Adding, listing, testing and removing devices (admin only, audited), and their delivery."""

    def __init__(self, runner: Runner, storage: Storage, clock: Clock, holder: str):
        self._runner, self._storage, self._clock = runner, storage, clock
        self.gate = audit_gate.AuditGate(storage, clock)
        audit_gate.register(runner, self.gate)
        self.deliverer = Deliverer(storage, clock, holder, self.gate)

    def add_audit_device(self, name: str, kind: str, *, format: str = "native", path: str | None = None,
                         max_bytes: int | None = None, rotate_seconds: int | None = None,
                         address: str | None = None, protocol: str = "tcp", required: bool = False,
                         max_lag_s: int = 30, backfill: bool = False) -> dict[str, Any]:
        """Add a device: ``file`` (``path``, ``max_bytes``/``rotate_seconds`` rotation), ``syslog``
        (``address`` host:port, ``protocol`` tcp|udp) or ``socket`` (``address``, TCP JSON Lines), in
        ``format`` native|ocsf|ecs. It receives every row from its own ``audit_device_add`` row on
        (``backfill=True``: the whole log). ``required``: operations are refused with ``AuditFailure``
        while it is more than ``max_lag_s`` seconds behind.

        Raises ``AccessDenied`` (not admin), ``ValidationError``, ``Conflict`` (name taken), ``Sealed``,
        ``StorageError``, ``AuditFailure``.
        """
        if not isinstance(name, str) or not _NAME.match(name):
            raise ValidationError("a device name is 1-64 lower-case letters, digits and _ . - (starting with a "
                                  "letter or digit)")
        if format not in FORMATS:
            raise ValidationError(f"format must be one of {', '.join(FORMATS)}")
        if not isinstance(max_lag_s, int) or isinstance(max_lag_s, bool) or not 0 <= max_lag_s <= 86_400:
            raise ValidationError("max_lag_s must be 0-86400 seconds")
        config = device_config(kind, path=path, max_bytes=max_bytes, rotate_seconds=rotate_seconds,
                               address=address, protocol=protocol)
        with self._runner.attempt("audit_device_add") as att:
            att.require_role(*ADMIN)
            att.name = name
            if repos.devices.get_device(att.tx, name) is not None:
                raise Conflict(f"an audit device named {name!r} exists")
            repos.devices.add_device(att.tx, name=name, kind=kind, format=format, config=json.dumps(config),
                                     required=bool(required), max_lag_s=max_lag_s,
                                     delivered_seq=0 if backfill else att.state["audit_seq"],
                                     created_at=self._clock(), created_by=att.ctx.user_id)
            att.reason = f"{kind} device {name} ({format}{', required' if required else ''}): {_where(config)}"
        self.gate.forget()
        return {"name": name, "kind": kind, "format": format, "required": bool(required), "config": config}

    def list_audit_devices(self) -> list[dict[str, Any]]:
        """Every device with its cursor and lag. Raises ``AccessDenied`` (not admin or auditor), ``Sealed``,
        ``StorageError``."""
        with self._runner.attempt("audit_device_list", durable=False, audited=False) as att:
            att.require_role("admin", "auditor")
            return device_status(att.tx, self._clock(), att.state["audit_seq"])

    def remove_audit_device(self, name: str) -> None:
        """Remove a device (it stops receiving rows). Raises ``AccessDenied``, ``NotFound``, ``Sealed``,
        ``StorageError``, ``AuditFailure``."""
        with self._runner.attempt("audit_device_remove") as att:
            att.require_role(*ADMIN)
            att.name = name if isinstance(name, str) else None
            if not isinstance(name, str) or not repos.devices.remove_device(att.tx, name):
                raise NotFound("no such audit device")
            att.reason = f"device {name} removed"
        self.gate.forget()

    def test_audit_device(self, name: str) -> dict[str, Any]:
        """Check that the device is reachable now (opens its file or connects; sends nothing) and
        deliver what it is owed. Returns {"ok": bool, "error": str|None, "sent": rows}.

        Raises ``AccessDenied``, ``NotFound``, ``Sealed``, ``StorageError``, ``AuditFailure``.
        """
        with self._runner.attempt("audit_device_test", durable=False, audited=False) as att:
            att.require_role(*ADMIN)
            device = repos.devices.get_device(att.tx, name) if isinstance(name, str) else None
            if device is None:
                raise NotFound("no such audit device")
        error = None
        try:  # outside any transaction: a slow receiver must not hold the database's write lock
            make_sink(device["kind"], json.loads(device["config"])).probe()
        except OSError as exc:
            error = f"{type(exc).__name__}: {exc.strerror or ''}"
        self._runner.record_event("audit_device_test", "failed" if error else "allowed",
                                  f"device {name}: " + (error or "reachable"), name=name)
        return {"ok": error is None, "error": error, "sent": self.deliver_audit() if error is None else 0}

    def deliver_audit(self) -> int:
        """One delivery pass now (what the delivery thread does every interval); rows sent.
        Raises ``StorageError``."""
        return self.deliverer.deliver_once()


def _where(config: Mapping[str, Any]) -> str:
    if "path" in config:
        return config["path"]
    return f"{config.get('protocol', 'tcp')}://{config['host']}:{config['port']}"


class DeliveryThread(threading.Thread):
    """Runs ``deliver_once`` every ``interval_s`` seconds until stopped; never raises out of its loop."""

    def __init__(self, deliverer: Deliverer, interval_s: float):
        super().__init__(name="vault-audit-delivery", daemon=True)
        self.deliverer, self.interval_s = deliverer, interval_s
        self.stopping = threading.Event()
        self.sent = 0
        self.last_error: str | None = None

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                n = self.deliverer.deliver_once()
                self.sent, self.last_error = self.sent + n, None
            except Exception as exc:  # noqa: BLE001 - database down: try again next tick
                self.last_error, n = type(exc).__name__, 0
            if not n:
                self.stopping.wait(self.interval_s)

    def stop(self, timeout: float | None = 10.0) -> None:
        """Stop the loop and release the lease (so another replica takes over without waiting)."""
        self.stopping.set()
        self.join(timeout)
        try:
            self.deliverer.close()
        except Exception:  # noqa: BLE001 - the lease then simply expires
            pass


_running = PerVault()


def start_audit_delivery(vault: Any, interval_s: float = 0.5) -> DeliveryThread:
    """Start the delivery thread of ``vault`` once per process; later calls return the same thread.

    Raises ``ValidationError`` for a bad interval.
    """
    deliverer = vault.audit_devices.deliverer
    return _running.start(vault, interval_s, lambda s: DeliveryThread(deliverer, s),
                          lambda t: t.deliverer is deliverer)


def stop_audit_delivery(vault: Any, timeout: float | None = 10.0) -> bool:
    """Stop ``vault``'s delivery thread in this process; False if none ran. Raises nothing."""
    return _running.stop(vault, timeout)
