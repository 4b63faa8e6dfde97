"""Where audit devices write: a JSON Lines file with rotation, syslog (RFC 5424 over UDP or TCP), a TCP socket.

A sink takes a batch of (row, line) pairs in chain order and either delivers all of it or raises
``OSError``; the caller moves the device's cursor only after ``send`` returned. Lines are text already
formatted (native, OCSF or ECS: ``audit_devices.format_line``); rows give syslog its header fields.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..types import to_datetime

Batch = Sequence[tuple[Mapping[str, Any], str]]
TIMEOUT_S = 2.0  # a send must end well inside the delivery lease (see audit_devices.LEASE_TTL_S)


class FileSink:
    """Appends lines to ``path`` (created 0600), fsynced per batch; rotates by size and/or by time.

    Rotation renames the file to ``<path>.<UTC time>`` before a batch that would take it past
    ``max_bytes``, or when its last write fell in an earlier ``rotate_seconds`` period than now
    (the file's mtime says so, which survives restarts).
    """

    def __init__(self, path: str, max_bytes: int | None = None, rotate_seconds: int | None = None,
                 now=time.time):
        self.path, self.max_bytes, self.rotate_seconds, self._now = Path(path), max_bytes, rotate_seconds, now
        self._repaired = False  # the tail is checked once per process, before its first write

    def _rotate_if_due(self, incoming: int) -> None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return
        full = self.max_bytes is not None and st.st_size > 0 and st.st_size + incoming > self.max_bytes
        stale = self.rotate_seconds is not None and st.st_size > 0 and \
            int(st.st_mtime // self.rotate_seconds) != int(self._now() // self.rotate_seconds)
        if full or stale:
            stamp = datetime.fromtimestamp(self._now(), tz=timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
            target = self.path.with_name(f"{self.path.name}.{stamp}")
            n = 1
            while target.exists():
                target = self.path.with_name(f"{self.path.name}.{stamp}.{n}")
                n += 1
            os.rename(self.path, target)

    def _chunks(self, batch: Batch) -> list[bytes]:
        """The batch cut so that no chunk passes ``max_bytes`` (a longer line goes alone)."""
        chunks: list[bytes] = []
        current = b""
        for _, line in batch:
            data = line.encode("utf-8")
            if current and self.max_bytes is not None and len(current) + len(data) > self.max_bytes:
                chunks.append(current)
                current = b""
            current += data
        return [*chunks, current] if current else chunks

    def _repair_tail(self) -> None:
        """Cut a torn last line (a process killed mid-write): its rows are sent again, the cursor never moved."""
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_NOFOLLOW)
        except FileNotFoundError:
            return
        try:
            size = os.fstat(fd).st_size
            end = size
            while end > 0:
                start = max(0, end - 65536)
                block = os.pread(fd, end - start, start)
                if end == size and block.endswith(b"\n"):
                    return
                cut = block.rfind(b"\n")
                if cut >= 0:
                    os.ftruncate(fd, start + cut + 1)
                    return
                end = start
            os.ftruncate(fd, 0)
        finally:
            os.close(fd)

    def send(self, batch: Batch) -> None:
        """Append the batch (rotating first when due). Raises ``OSError``."""
        if not self._repaired:
            self._repair_tail()
            self._repaired = True
        for data in self._chunks(batch):
            self._rotate_if_due(len(data))
            self._append(data)

    def _append(self, data: bytes) -> None:
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        try:
            os.fchmod(fd, 0o600)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)

    def probe(self) -> None:
        """Raise ``OSError`` unless the file can be appended to."""
        os.close(os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o600))

    def close(self) -> None:
        """Nothing stays open between batches."""


class _Stream:
    """One TCP connection, reopened when the peer has closed it."""

    def __init__(self, host: str, port: int):
        self.address = (host, port)
        self.sock: socket.socket | None = None

    def _alive(self) -> bool:
        """False when the peer closed the connection (a receiver that went away): checked before each batch,
        so rows are not written into a dead connection and lost."""
        assert self.sock is not None
        self.sock.settimeout(0)  # a socket with a timeout would wait for data first, whatever the flags say
        try:
            return self.sock.recv(1, socket.MSG_PEEK) != b""
        except BlockingIOError:
            return True
        except OSError:
            return False
        finally:
            self.sock.settimeout(TIMEOUT_S)

    def sendall(self, data: bytes) -> None:
        if self.sock is not None and not self._alive():
            self.close()
        if self.sock is None:
            self.sock = socket.create_connection(self.address, timeout=TIMEOUT_S)
        try:
            self.sock.sendall(data)
        except OSError:
            self.close()
            raise

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None


class SocketSink:
    """JSON Lines over one TCP connection (a log shipper's TCP input: Logstash, Vector, Fluent Bit)."""

    def __init__(self, host: str, port: int):
        self._stream = _Stream(host, port)

    def send(self, batch: Batch) -> None:
        """Write the batch on the connection (reconnecting if the peer closed it). Raises ``OSError``."""
        self._stream.sendall("".join(line for _, line in batch).encode("utf-8"))

    def probe(self) -> None:
        """Raise ``OSError`` unless a connection can be opened now (sends nothing)."""
        self._stream.close()
        socket.create_connection(self._stream.address, timeout=TIMEOUT_S).close()

    def close(self) -> None:
        self._stream.close()


FACILITY_AUDIT = 13  # RFC 5424 "log audit"
_SEVERITY = {"allowed": 6, "denied": 5}  # informational, notice; a failure is a warning (4)
SD_ID = "vault@32473"  # 32473: the enterprise number RFC 5612 reserves for documentation and examples


def _sd_value(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def syslog_message(row: Mapping[str, Any], line: str, hostname: str, procid: int) -> bytes:
    """One RFC 5424 message: header from the row, structured data with its seq, the line (UTF-8, BOM) as MSG."""
    pri = FACILITY_AUDIT * 8 + _SEVERITY.get(row["outcome"], 4)
    stamp = to_datetime(int(row["ts"])).isoformat(timespec="microseconds").replace("+00:00", "Z")
    msgid = "".join(c for c in str(row["operation"]) if 33 <= ord(c) <= 126)[:32] or "-"
    sd = f'[{SD_ID} seq="{int(row["seq"])}" outcome="{_sd_value(str(row["outcome"]))}"]'
    header = f"<{pri}>1 {stamp} {hostname} vault-core {procid} {msgid} {sd} "
    return header.encode("ascii") + b"\xef\xbb\xbf" + line.rstrip("\n").encode("utf-8")


class SyslogSink:
    """RFC 5424 messages: over TCP with octet-counting framing (RFC 6587), or one UDP datagram each.

    UDP cannot tell whether the receiver got a message: it is best effort (a receiver that is down
    loses what was sent meanwhile). Use TCP where none may be lost.
    """

    def __init__(self, host: str, port: int, protocol: str = "tcp"):
        self.protocol, self.address = protocol, (host, port)
        self.hostname = "".join(c for c in socket.gethostname() if 33 <= ord(c) <= 126)[:255] or "-"
        self._stream = _Stream(host, port) if protocol == "tcp" else None
        self._udp: socket.socket | None = None

    def send(self, batch: Batch) -> None:
        """Send one message per row (TCP: one write for the batch). Raises ``OSError``."""
        messages = [syslog_message(row, line, self.hostname, os.getpid()) for row, line in batch]
        if self._stream is not None:
            self._stream.sendall(b"".join(b"%d %s" % (len(m), m) for m in messages))
            return
        if self._udp is None:
            self._udp = socket.socket(socket.AF_INET6 if ":" in self.address[0] else socket.AF_INET,
                                      socket.SOCK_DGRAM)
            self._udp.connect(self.address)  # connected: an ICMP "port unreachable" surfaces as an error
        try:
            for message in messages:
                self._udp.send(message)
        except OSError:
            self.close()
            raise

    def probe(self) -> None:
        """TCP: raise ``OSError`` unless a connection can be opened now. UDP: nothing to check."""
        if self._stream is not None:
            self._stream.close()
            socket.create_connection(self.address, timeout=TIMEOUT_S).close()

    def close(self) -> None:
        if self._stream is not None:
            self._stream.close()
        if self._udp is not None:
            self._udp.close()
            self._udp = None


def make_sink(kind: str, config: Mapping[str, Any]):
    """The sink of a device (``kind`` and its stored ``config``). Raises ``ValueError`` for an unknown kind."""
    if kind == "file":
        return FileSink(config["path"], config.get("max_bytes"), config.get("rotate_seconds"))
    if kind == "syslog":
        return SyslogSink(config["host"], int(config["port"]), config.get("protocol", "tcp"))
    if kind == "socket":
        return SocketSink(config["host"], int(config["port"]))
    raise ValueError(f"unknown audit device kind {kind!r}")
