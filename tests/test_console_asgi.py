"""`vault-console serve` as a hardened ASGI app (issue 14), probed over real HTTP and WebSocket connections.

Each attack of the issue is a test here or in tests/e2e/test_console_e2e.py (Chromium).
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from websockets.exceptions import InvalidStatus

from tests.browser import StreamlitServer, console_server, free_port
from tests.console_http import Client, back_msg, header, run_script, set_cookies
from vault_core import open_vault
from vault_core.console.middleware import configured_origins, own_origins

PW = "asgi test password 1"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    path = tmp_path_factory.mktemp("asgi") / "vault"
    vault = open_vault(path, principal="owner")
    vault.bcrypt_rounds = 4
    for user, roles in (("ann", ["admin"]), ("rita", []), ("aud", ["auditor"])):
        vault.add_user(user, PW, roles, must_change_password=False)
    vault.store_secret("prod_key", "prod-value-asgi", environment="production")
    metrics_port = free_port()
    env = {"VAULT_METRICS_PORT": str(metrics_port), "VAULT_METRICS_ALLOW": "127.0.0.1/32",
           "VAULT_CONSOLE_ORIGINS": "https://vault.example.com"}  # a reverse proxy's public origin
    with console_server(path, env=env) as server:
        yield vault, server, metrics_port
    vault.storage.dispose()


def test_handshake_without_origin_or_from_another_port_is_refused_before_upgrade(served):
    _, server, _ = served
    client = Client(server.url)
    client.log_in("ann", PW)
    other = free_port()
    for origin in (None, f"http://127.0.0.1:{other}", f"http://localhost:{other}", "null",
                   f"https://127.0.0.1:{server.port}", f"http://127.0.0.1.evil.test:{server.port}"):
        with pytest.raises(InvalidStatus) as refused:
            client.stream(origin=origin).close()
        assert refused.value.response.status_code == 403, origin
    for origin in (server.url, f"http://localhost:{server.port}"):
        with client.stream(origin=origin) as ws:  # the console's own origins
            ws.send(back_msg("rerun"))
            assert ws.recv(timeout=30)
    # behind a TLS proxy publishing https://vault.example.com (passing Host on, as the README asks)
    with client.stream(origin="https://vault.example.com", host="vault.example.com") as ws:
        ws.send(back_msg("rerun"))
        assert ws.recv(timeout=30)
    with pytest.raises(InvalidStatus):
        client.stream(origin="https://other.example.com", host="other.example.com").close()


def test_a_session_id_without_the_cookie_is_a_stranger(served):
    _, server, _ = served
    admin = Client(server.url)
    admin.log_in("ann", PW)
    with admin.stream() as ws:
        session_id, seen = run_script(ws)
    assert session_id and b"production/prod_key" in seen and b"Log in" not in seen
    with admin.stream(cookies=False, resume=session_id) as ws:  # the same session, without the cookie
        resumed, seen = run_script(ws)
    assert resumed == session_id  # Streamlit did resume it ...
    assert b"prod_key" not in seen and b"You are not logged in" in seen  # ... as a stranger


def test_own_origins_are_scheme_host_and_port_of_the_socket_plus_the_configured_ones():
    loopback = {"server": ("127.0.0.1", 8501), "scheme": "ws"}
    assert own_origins(loopback, set()) == {"http://127.0.0.1:8501", "http://localhost:8501", "http://[::1]:8501"}
    assert own_origins({"server": ("10.0.0.5", 443), "scheme": "wss"}, set()) == {"https://10.0.0.5"}
    raw = {"VAULT_CONSOLE_ORIGINS": "https://Vault.example.com/, junk, http://x:8080/path, http://y:8080"}
    assert configured_origins(raw) == {"https://vault.example.com", "http://y:8080"}


def test_login_sets_an_httponly_strict_host_cookie_and_needs_the_csrf_token(served):
    vault, server, _ = served
    client = Client(server.url)
    status, pairs, _ = client.request("POST", "/login", {"username": "ann", "password": PW, "csrf": "forged" * 4})
    assert status == 403 and not any("vault_session" in c for c in set_cookies(pairs))
    assert Client(server.url).request("HEAD", "/login")[0] == 200  # a HEAD is a GET, not a failed form post
    status, pairs, _ = client.log_in("ann", PW)
    assert status == 303 and header(pairs, "location") == "/"
    cookie = next(c for c in set_cookies(pairs) if c.startswith("__Host-vault_session="))
    attrs = {a.strip().split("=")[0].lower() for a in cookie.split(";")[1:]}
    assert {"httponly", "secure", "path", "max-age"} <= attrs and "domain" not in attrs
    assert "samesite=strict" in cookie.lower() and "path=/;" in cookie.lower() + ";"
    assert vault.check_session(client.jar["__Host-vault_session"]).user == "ann"
    status, _, text = Client(server.url).log_in("ann", "wrong password 1")
    assert status == 401 and "wrong user name or password" in text and "wrong password 1" not in text
    status, _, text = Client(server.url).log_in("ann", "p" * 80)
    assert status == 401 and "72 bytes" in text and "p" * 80 not in text
    rows = vault.get_audit_log(operation="login", principal="ann")
    assert rows[0]["outcome"] == "denied" and "allowed" in [r["outcome"] for r in rows]


def test_every_response_carries_the_security_headers(served):
    _, server, _ = served
    client = Client(server.url)
    client.log_in("ann", PW)
    _, _, index = client.request("GET", "/")
    bundle = re.search(r'src="\./(static/js/index\.[^"]+\.js)"', index).group(1)
    for path in ("/", "/secrets", "/login", "/healthz", "/_stcore/health", "/export/audit.csv", "/" + bundle):
        status, pairs, _ = client.request("GET", path)
        csp = header(pairs, "content-security-policy")
        for part in ("default-src 'self'", "frame-ancestors 'none'", "object-src 'none'", "base-uri 'none'",
                     "form-action 'self'"):
            assert part in csp, (path, part)
        assert re.search(r"script-src 'self' 'wasm-unsafe-eval' 'sha256-[A-Za-z0-9+/=]+'", csp)
        assert (header(pairs, "x-frame-options"), header(pairs, "x-content-type-options"),
                header(pairs, "referrer-policy"), header(pairs, "cross-origin-opener-policy")) == \
            ("DENY", "nosniff", "no-referrer", "same-origin"), path
        assert "camera=()" in header(pairs, "permissions-policy")
        cache = header(pairs, "cache-control")
        assert ("immutable" in cache) if path.startswith("/static/") else cache == "no-store", (path, cache)


def test_pages_redirect_strangers_to_the_login_route(served):
    _, server, _ = served
    for path in ("/", "/secrets", "/audit", "/pages/secrets"):
        status, pairs, _ = Client(server.url).request("GET", path)
        assert status == 303 and header(pairs, "location").startswith("/login"), path


def test_export_needs_a_live_session_with_the_right_and_is_audited(served):
    vault, server, _ = served
    assert Client(server.url).request("GET", "/export/audit.csv")[0] == 401
    reader = Client(server.url)
    reader.log_in("rita", PW)
    assert reader.request("GET", "/export/audit.csv")[0] == 403  # no auditor or admin role
    auditor = Client(server.url)
    auditor.log_in("aud", PW)
    status, pairs, text = auditor.request("GET", "/export/audit.jsonl?principal=rita&operation=login")
    assert status == 200 and header(pairs, "cache-control") == "no-store"
    assert header(pairs, "content-disposition") == 'attachment; filename="audit.jsonl"'
    assert '"principal": "rita"' in text or '"principal":"rita"' in text
    assert vault.get_audit_log(operation="audit_export", principal="aud")[0]["outcome"] == "allowed"
    status, pairs, text = auditor.request("GET", "/export/audit.ocsf?principal=rita")
    assert status == 200 and header(pairs, "content-disposition") == 'attachment; filename="audit-ocsf.jsonl"'
    events = [json.loads(line) for line in text.splitlines()]
    assert {e["class_uid"] for e in events} == {3002, 6003}  # rita's login, her refused export
    assert all(e["actor"]["user"]["name"] == "rita" and "mac" in e["unmapped"] for e in events)
    assert auditor.request("GET", "/export/audit.csv?since=yesterday")[0] == 400
    saved = dict(auditor.jar)
    token = auditor.csrf("/logout")
    status, pairs, _ = auditor.request("POST", "/logout", {"csrf": token})
    assert status == 303 and any("__Host-vault_session=" in c and "Max-Age=0" in c for c in set_cookies(pairs))
    replay = Client(server.url)
    replay.jar = saved
    assert replay.request("GET", "/export/audit.csv")[0] == 401
    assert vault.check_session(saved["__Host-vault_session"]) is None


def _threads_and_files(pid: int) -> tuple[int, int]:
    return len(os.listdir(f"/proc/{pid}/task")), len(os.listdir(f"/proc/{pid}/fd"))


def _settled(pid: int) -> tuple[int, int]:
    """The counts once they have not moved for two seconds (Streamlit ends script threads lazily)."""
    last, same, now = None, 0, _threads_and_files(pid)
    for _ in range(240):
        now = _threads_and_files(pid)
        same = same + 1 if now == last else 0
        if same >= 8:
            break
        last = now
        time.sleep(0.25)
    return now


def _flood(client: Client, messages: list[str]) -> None:
    for _ in range(15):
        with client.stream() as ws:
            for kind in messages:
                ws.send(back_msg(kind))
            if messages:
                ws.recv(timeout=30)


def test_anonymous_clear_cache_messages_open_nothing(served):
    """15 strangers' sockets sending clear_cache cost what 15 bare sockets cost: no vault, no thread.

    (Streamlit keeps each disconnected session, with its script event loop's 3
    descriptors, for a reconnect; that is the cost of a bare socket.)
    """
    _, server, _ = served
    pid = server.pid
    stranger = Client(server.url)
    _flood(stranger, ["rerun"])  # warm up: the first script runs import the pages
    start = _settled(pid)
    _flood(stranger, [])
    bare = _settled(pid)
    _flood(stranger, ["rerun", "clear_cache", "rerun", "clear_cache", "rerun"])
    cleared = _settled(pid)
    print(f"threads/open files: start {start}, after 15 bare sockets {bare}, "
          f"after 15 sockets sending clear_cache {cleared}")
    assert start[0] == bare[0] == cleared[0]  # no thread (scheduler, metrics server) started
    assert cleared[1] - bare[1] == bare[1] - start[1]  # no vault (database files) opened


def _scrape(url: str) -> str:
    with urllib.request.urlopen(url, timeout=30) as resp:
        return resp.read().decode()


def test_metrics_and_healthz_tell_the_truth_under_the_strict_console(served):
    _, server, metrics_port = served
    for text in (_scrape(f"{server.url}/metrics"), _scrape(f"http://127.0.0.1:{metrics_port}/metrics")):
        assert re.search(r"^vault_up 1\.0$", text, re.M)
        assert re.search(r"^vault_audit_rows [1-9]", text, re.M)
        assert re.search(r'^vault_secrets\{environment="production"\} 1\.0$', text, re.M)
    assert _scrape(f"{server.url}/healthz") == '{"status":"ok"}'


def test_metrics_route_is_off_unless_configured(tmp_path):
    open_vault(tmp_path / "v", principal="owner").storage.dispose()
    with console_server(tmp_path / "v") as server:
        assert Client(server.url).request("GET", "/metrics")[0] == 404


def test_serve_checks_the_port_before_creating_anything(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        exe = Path(sys.executable).parent / "vault-console"
        done = subprocess.run([str(exe), "serve", "--port", str(port)], env={**os.environ, "VAULT_PATH":
                              str(tmp_path / "new")}, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and f"cannot listen on 127.0.0.1:{port}" in done.stderr
    assert "password" not in done.stdout + done.stderr and not (tmp_path / "new").exists()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_everything_serve_started(tmp_path, sig):
    with console_server(tmp_path / "v") as server:
        proc = server._proc
        children = subprocess.run(["ps", "--ppid", str(proc.pid), "-o", "pid="], capture_output=True, text=True)
        assert children.stdout.split() == []  # one process: uvicorn runs inside serve
        proc.send_signal(sig)
        assert proc.wait(timeout=60) in (0, -sig, 128 + sig)  # uvicorn re-raises the signal after shutting down
        time.sleep(0.5)  # let the output pump read the last lines
        assert "vault console: stopped: scheduler and metrics ended" in server.output()  # the lifespan's end ran


def _uvicorn(tmp_path, env: dict[str, str] | None = None):
    empty = tmp_path / "empty"
    empty.mkdir(exist_ok=True)
    server = StreamlitServer(None, cwd=empty, env={"VAULT_PATH": str(tmp_path / "v"), **(env or {})},
                             command=lambda port: [sys.executable, "-m", "uvicorn", "vault_core.console.asgi:app",
                                                   "--host", "127.0.0.1", "--port", str(port),
                                                   "--forwarded-allow-ips", ""])
    return server


def test_the_asgi_module_runs_under_an_operators_own_uvicorn(tmp_path):
    vault = open_vault(tmp_path / "v", principal="owner")
    vault.bcrypt_rounds = 4
    vault.add_user("ann", PW, ["admin"], must_change_password=False)
    with _uvicorn(tmp_path) as server:  # from an empty folder: no .streamlit/ config.toml to find
        client = Client(server.url)
        assert client.log_in("ann", PW)[0] == 303
        with client.stream() as ws:
            assert b"Signed in as" in run_script(ws)[1]
        with pytest.raises(InvalidStatus):
            client.stream(origin=f"http://localhost:{free_port()}").close()
        status, pairs, _ = client.request("GET", "/")
        assert status == 200 and "frame-ancestors 'none'" in header(pairs, "content-security-policy")
    vault.storage.dispose()


def test_the_asgi_module_overrides_a_weakened_config_toml(tmp_path):
    vault = open_vault(tmp_path / "v", principal="owner")
    vault.bcrypt_rounds = 4
    vault.add_user("ann", PW, ["admin"], must_change_password=False)
    (tmp_path / "empty" / ".streamlit").mkdir(parents=True)
    (tmp_path / "empty" / ".streamlit" / "config.toml").write_text(
        '[server]\nenableXsrfProtection = false\nenableStaticServing = true\n[client]\nshowErrorDetails = "full"\n')
    with _uvicorn(tmp_path) as server:  # it starts: the lifespan refuses weakened options, so they were overridden
        client = Client(server.url)
        client.log_in("ann", PW)
        with client.stream() as ws:
            assert b"Signed in as" in run_script(ws)[1]
    vault.storage.dispose()
