"""A plain HTTP and WebSocket client for the served console (cookies handled by hand, Secure ones too)."""

from __future__ import annotations

import http.client
import re
import socket
from http.cookies import SimpleCookie
from urllib.parse import urlencode, urlparse

from streamlit.proto.BackMsg_pb2 import BackMsg
from websockets.sync.client import connect


class Client:
    """One browser-like cookie jar against ``url`` (``http://127.0.0.1:port``)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.host, self.port = urlparse(url).hostname, urlparse(url).port
        self.jar: dict[str, str] = {}

    def request(self, method: str, path: str, body: dict[str, str] | None = None,
                headers: dict[str, str] | None = None, cookies: bool = True):
        """(status, headers as a list of pairs, body text); Set-Cookie updates the jar."""
        conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        sent = dict(headers or {})
        if cookies and self.jar:
            sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.jar.items())
        data = None
        if body is not None:
            data = urlencode(body)
            sent["Content-Type"] = "application/x-www-form-urlencoded"
        conn.request(method, path, body=data, headers=sent)
        resp = conn.getresponse()
        text = resp.read().decode("utf-8", "replace")
        pairs = resp.getheaders()
        for key, value in pairs:
            if key.lower() == "set-cookie":
                for name, morsel in SimpleCookie(value).items():
                    if morsel["max-age"] == "0" or 'expires=Thu, 01 Jan 1970' in value:
                        self.jar.pop(name, None)
                    else:
                        self.jar[name] = morsel.value
        conn.close()
        return resp.status, pairs, text

    def csrf(self, path: str = "/login") -> str:
        status, _, text = self.request("GET", path)
        found = re.search(r'name="csrf" value="([^"]+)"', text)
        assert found, (status, text[:500])
        return found.group(1)

    def log_in(self, user: str, password: str):
        token = self.csrf()
        return self.request("POST", "/login", {"csrf": token, "username": user, "password": password, "next": "/"})

    def stream(self, origin: str | None = "own", cookies: bool = True, resume: str | None = None,
               host: str | None = None):
        """Open ``/_stcore/stream`` (raises ``websockets.exceptions.InvalidStatus`` when refused).

        ``resume``: a Streamlit session id to reconnect to, as the browser sends it (subprotocol).
        ``host``: the ``Host`` to send (as a reverse proxy passes its public name), still to our port.
        """
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.jar.items())} if cookies and self.jar else {}
        protocols = ["streamlit", "no-xsrf", resume] if resume else None
        sock = socket.create_connection((self.host, self.port), timeout=30) if host else None
        return connect(f"ws://{host or f'{self.host}:{self.port}'}/_stcore/stream", sock=sock,
                       origin=self.url if origin == "own" else origin, additional_headers=headers,
                       subprotocols=protocols, open_timeout=30)


def set_cookies(pairs) -> list[str]:
    return [v for k, v in pairs if k.lower() == "set-cookie"]


def header(pairs, name: str) -> str | None:
    return next((v for k, v in pairs if k.lower() == name.lower()), None)


def back_msg(kind: str) -> bytes:
    """A serialized BackMsg: ``rerun`` (run the app script) or ``clear_cache``."""
    msg = BackMsg()
    if kind == "clear_cache":
        msg.clear_cache = True
    else:
        msg.rerun_script.query_string = ""
        msg.rerun_script.page_script_hash = ""
    return msg.SerializeToString()


def run_script(ws) -> tuple[str, bytes]:
    """Ask for a run; return (the session id, every message of that run, concatenated)."""
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

    ws.send(back_msg("rerun"))
    session_id, seen = "", b""
    while True:
        raw = ws.recv(timeout=60)
        msg = ForwardMsg()
        msg.ParseFromString(raw)
        seen += raw
        kind = msg.WhichOneof("type")
        if kind == "new_session":
            session_id = msg.new_session.initialize.session_id or session_id
        if kind == "script_finished":
            return session_id, seen
