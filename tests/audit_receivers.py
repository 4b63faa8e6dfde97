"""Real receivers on local sockets for the audit device tests: a TCP JSON Lines receiver, an RFC 5424
syslog receiver over TCP (octet counting, RFC 6587) and over UDP. Each can go down and come back on the
same port, and collects what it got in arrival order."""

from __future__ import annotations

import json
import re
import socket
import threading
import time

RFC5424 = re.compile(rb"^<(\d{1,3})>1 (\S+) (\S+) (\S+) (\S+) (\S+) (\[vault@32473 [^\]]*\]) \xef\xbb\xbf(.*)$", re.S)


class Receiver:
    """A local TCP server; ``messages`` are the parsed JSON payloads in arrival order."""

    def __init__(self):
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        self.messages: list[dict] = []
        self.raw: list[bytes] = []
        self.connections = 0  # accepted so far: a sender should keep one connection open, not one per batch
        self._lock = threading.Lock()
        self._server: socket.socket | None = None
        self._conns: list[socket.socket] = []
        self.start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        server = socket.socket()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", self.port))
        server.listen()
        self._server = server
        threading.Thread(target=self._accept, args=(server,), daemon=True).start()

    def stop(self) -> None:
        """Go down: stop listening and close every connection (peers see the close)."""
        server, self._server = self._server, None
        if server is not None:
            try:
                server.shutdown(socket.SHUT_RDWR)  # wakes the thread blocked in accept (close alone does not)
            except OSError:
                pass
            server.close()
        with self._lock:
            conns, self._conns = self._conns, []
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            conn.close()

    def _accept(self, server: socket.socket) -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with self._lock:
                self._conns.append(conn)
                self.connections += 1
            threading.Thread(target=self._read, args=(conn,), daemon=True).start()

    def _read(self, conn: socket.socket) -> None:
        buf = b""
        while True:
            try:
                chunk = conn.recv(65536)
            except OSError:
                return
            if not chunk:
                return
            buf += chunk
            buf = self._frames(buf)

    def _frames(self, buf: bytes) -> bytes:
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            self._got(line, json.loads(line))
        return buf

    def _got(self, raw: bytes, payload: dict) -> None:
        with self._lock:
            self.raw.append(raw)
            self.messages.append(payload)

    def wait_for(self, count: int, timeout: float = 60.0) -> list[dict]:
        """Wait until at least ``count`` messages arrived (or the timeout); returns them all."""
        end = time.monotonic() + timeout
        while len(self.messages) < count and time.monotonic() < end:
            time.sleep(0.02)
        return list(self.messages)


def seq_of(message: dict) -> int:
    """The chain seq of a native, OCSF or ECS event."""
    if "class_uid" in message:
        return message["unmapped"]["seq"]
    if "ecs" in message:
        return int(message["labels"]["seq"])
    return message["seq"]


class SyslogTcpReceiver(Receiver):
    """RFC 5424 over TCP with octet-counting framing: ``MSG-LEN SP SYSLOG-MSG``."""

    def _frames(self, buf: bytes) -> bytes:
        while b" " in buf:
            length, rest = buf.split(b" ", 1)
            if len(rest) < int(length):
                break
            message, buf = rest[:int(length)], rest[int(length):]
            match = RFC5424.match(message)
            assert match, message[:200]
            self._got(message, json.loads(match[8]))
        return buf


class SyslogUdpReceiver(Receiver):
    """RFC 5424 over UDP: one message a datagram."""

    def start(self) -> None:
        server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        server.bind(("127.0.0.1", self.port))
        self._server = server
        threading.Thread(target=self._datagrams, args=(server,), daemon=True).start()

    def _datagrams(self, server: socket.socket) -> None:
        while True:
            try:
                message = server.recv(65536)
            except OSError:
                return
            match = RFC5424.match(message)
            assert match, message[:200]
            self._got(message, json.loads(match[8]))
