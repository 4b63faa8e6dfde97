"""Audit devices (issue 23): every row once, in chain order, after commit, from a durable cursor; one sender
by lease; fail closed on a required device; rotation and 0600 files; OCSF events that validate.

The receivers are real servers on local sockets (tests/audit_receivers.py); the workers are real
``vault-console audit devices run`` processes, killed with SIGKILL where the test says so.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.audit_receivers import Receiver, SyslogTcpReceiver, SyslogUdpReceiver, seq_of
from tests.test_audit_formats import ECS, VALIDATORS
from vault_core import AccessDenied, AuditFailure, open_vault
from vault_core.types import US


def _head(vault) -> int:
    return vault.audit_checkpoint()["seq"]


def _work(vault, n: int, tag: str = "s") -> None:
    for i in range(n):
        vault.store_secret(f"{tag}{i}", f"value-{tag}-{i}", environment="development")


def _first_seen(seqs: list[int]) -> list[int]:
    seen, out = set(), []
    for s in seqs:
        if s not in seen:
            seen.add(s)
            out.append(s)
    return out


def test_socket_device_gets_every_row_once_in_chain_order(vault):
    rx = Receiver()
    vault.add_audit_device("siem", "socket", address=rx.address)
    start = _head(vault)  # the device's first row is its own creation
    _work(vault, 5)
    with vault.security_context("mallory"):
        with pytest.raises(AccessDenied):
            vault.get_secret("s1", "development")
    assert vault.deliver_audit() == _head(vault) - start + 1
    assert vault.deliver_audit() == 0  # nothing twice
    vault.store_secret("late", "v")
    assert vault.deliver_audit() == 1
    assert rx.connections == 1  # one connection kept across passes (a live peer is not taken for a dead one)
    got = [seq_of(m) for m in rx.wait_for(_head(vault) - start + 1)]
    assert got == list(range(start, _head(vault) + 1))
    assert rx.messages[0]["operation"] == "audit_device_add" and rx.messages[-2]["principal"] == "mallory"
    assert [d["lag_rows"] for d in vault.list_audit_devices()] == [0]


def test_syslog_over_tcp_and_udp_is_rfc5424_with_ocsf_events_that_validate(vault):
    tcp, udp = SyslogTcpReceiver(), SyslogUdpReceiver()
    vault.add_audit_device("syslog-tcp", "syslog", address=tcp.address, format="ocsf", backfill=True)
    vault.add_audit_device("syslog-udp", "syslog", address=udp.address, protocol="udp", format="ecs",
                           backfill=True)
    _work(vault, 3)
    vault.add_user("carol", "a long enough password 1", ["auditor"], must_change_password=False)
    vault.deliver_audit()
    head = _head(vault)
    events = tcp.wait_for(head)
    assert [seq_of(e) for e in events] == list(range(1, head + 1))
    for event in events:
        assert VALIDATORS[event["class_uid"]].is_valid(event), event["unmapped"]["operation"]
    assert {e["class_uid"] for e in events} >= {6003, 3001, 3004}
    pri, msgid = tcp.raw[-1].split(b" ")[0], tcp.raw[-1].split(b" ")[5]
    assert pri == b"<110>1" and msgid == b"user_add"  # facility 13 (log audit) * 8 + informational
    docs = udp.wait_for(head)
    assert [seq_of(d) for d in docs] == list(range(1, head + 1))
    assert all(d["ecs"]["version"] == ECS["version"] for d in docs)


def test_a_receiver_outage_loses_nothing_and_catches_up_in_order(vault):
    rx = SyslogTcpReceiver()
    vault.add_audit_device("siem", "syslog", address=rx.address)
    start = _head(vault)
    _work(vault, 3, "a")
    vault.deliver_audit()
    rx.wait_for(_head(vault) - start + 1)
    rx.stop()
    _work(vault, 4, "b")
    assert vault.deliver_audit() == 0
    [device] = vault.list_audit_devices()
    assert device["lag_rows"] == 4 and device["failing_since"] is not None and device["last_error"]
    rx.start()
    assert vault.deliver_audit() == 4
    got = [seq_of(m) for m in rx.wait_for(_head(vault) - start + 1)]
    assert got == list(range(start, _head(vault) + 1))
    assert vault.list_audit_devices()[0]["failing_since"] is None


def _worker(path: Path, url: str | None = None, lease_ttl: float = 1.0) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VAULT_")}
    env.update(VAULT_PATH=str(path), VAULT_PRINCIPAL="owner", **({"VAULT_DATABASE_URL": url} if url else {}))
    proc = subprocess.Popen([sys.executable, "-m", "vault_core.cli", "audit", "devices", "run", "--interval", "0.05",
                             "--lease-ttl", str(lease_ttl)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout.readline() == b"delivering\n", proc.stderr.read()
    return proc


def _until(predicate, timeout: float = 60.0) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.02)


def test_outage_and_kill9_of_the_worker_lose_nothing(tmp_path):
    path = tmp_path / "vault"
    vault = open_vault(path, principal="owner")
    rx = Receiver()
    vault.add_audit_device("siem", "socket", address=rx.address, format="ecs")
    start = _head(vault)
    worker = _worker(path)
    try:
        _work(vault, 5, "a")
        _until(lambda: len(rx.messages) >= _head(vault) - start + 1)
        rx.stop()  # the receiver goes down while rows keep coming
        _work(vault, 5, "b")
        _until(lambda: vault.list_audit_devices()[0]["failing_since"] is not None)
        worker.send_signal(signal.SIGKILL)  # and the vault's worker dies without a word
        worker.wait()
        _work(vault, 5, "c")
        rx.start()
        worker = _worker(path)  # a new worker (after the dead one's lease ran out) resumes from the cursor
        _until(lambda: vault.list_audit_devices()[0]["lag_rows"] == 0)
    finally:
        worker.terminate()
        worker.wait()
    got = _first_seen([seq_of(m) for m in rx.messages])
    assert got == list(range(start, _head(vault) + 1))
    vault.storage.dispose()


def _two_replicas(path: Path, url: str | None) -> None:
    vault = open_vault(path, principal="owner", database_url=url)
    rx = Receiver()
    vault.add_audit_device("siem", "socket", address=rx.address)
    start = _head(vault)
    # a lease long enough that no pause of this loaded test machine outlasts it: a sender that stalls past its
    # lease could see the other replica resend (at-least-once); here the hand-over is a clean stop
    first, second = _worker(path, url, lease_ttl=6.0), _worker(path, url, lease_ttl=6.0)
    try:
        for batch in range(4):
            _work(vault, 10, f"r{batch}-")
            if batch == 1:  # the sender steps down mid-stream: the other replica takes over
                leader = vault.storage.transaction(write=False)
                with leader as tx:
                    from vault_core.storage import repos

                    holder = repos.leases.lease_holder(tx, "audit-delivery")["holder"]
                stopping = first if f":{first.pid}:" in holder else second
                stopping.terminate()
                stopping.wait()
        _until(lambda: vault.list_audit_devices()[0]["lag_rows"] == 0)
    finally:
        for proc in (first, second):
            proc.terminate()
            proc.wait()
    got = [seq_of(m) for m in rx.messages]
    assert got == list(range(start, _head(vault) + 1))  # every row exactly once, in order
    vault.storage.dispose()


def test_two_replicas_on_one_sqlite_file_send_each_row_once(tmp_path):
    _two_replicas(tmp_path / "vault", None)


def test_two_replicas_on_postgresql_send_each_row_once(tmp_path, pg_url):
    _two_replicas(tmp_path / "vault", pg_url)


def test_a_required_device_that_is_down_refuses_operations_until_it_recovers(vault):
    rx = Receiver()
    vault.add_audit_device("siem", "socket", address=rx.address, required=True, max_lag_s=5)
    vault.audit_devices.gate.ttl_s = 0
    vault.store_secret("before", "v1")
    vault.deliver_audit()
    rx.stop()
    vault.store_secret("during", "v2")  # within the bound: accepted, its row waits for the device
    assert vault.deliver_audit() == 0
    real = vault.clock
    vault.clock = lambda: real() + 6 * US  # the device has now been behind for longer than its bound
    with pytest.raises(AuditFailure, match="required audit device 'siem'"):
        vault.store_secret("refused", "v3")
    with pytest.raises(AuditFailure):
        vault.get_secret("before")
    health = vault.get_vault_health()  # health stays readable, and says why
    assert health["audit_devices"][0]["refusing"] and any("siem" in p for p in health["needs_attention"])
    rx.start()
    assert vault.deliver_audit() >= 1
    vault.store_secret("after", "v4")
    assert vault.get_secret("during") == "v2" and vault.get_secret("refused") is None


def test_devices_are_admin_only_and_audited(vault, tmp_path):
    with vault.security_context("mallory"):
        with pytest.raises(AccessDenied):
            vault.add_audit_device("x", "file", path=str(tmp_path / "x.jsonl"))
    vault.add_audit_device("x", "file", path=str(tmp_path / "x.jsonl"))
    assert vault.test_audit_device("x")["ok"]
    vault.remove_audit_device("x")
    ops = [(r["operation"], r["outcome"]) for r in vault.get_audit_log(limit=5)]
    assert ("audit_device_remove", "allowed") in ops and ("audit_device_test", "allowed") in ops
    assert ("audit_device_add", "denied") in [(r["operation"], r["outcome"]) for r in vault.get_audit_log(limit=20)]
    with pytest.raises(Exception, match="address must be host:port"):
        vault.add_audit_device("y", "socket", address="nowhere")


def test_the_file_device_rotates_by_size_and_time_and_files_are_0600(vault, tmp_path):
    log = tmp_path / "audit" / "vault.jsonl"
    log.parent.mkdir()
    vault.add_audit_device("file", "file", path=str(log), max_bytes=4000, rotate_seconds=3600, format="ocsf",
                           backfill=True)
    _work(vault, 6)
    vault.deliver_audit()
    _work(vault, 3, "t")
    os.utime(log, (time.time() - 7200, time.time() - 7200))  # last written two periods ago
    vault.deliver_audit()
    files = sorted(log.parent.iterdir(), key=lambda p: p.stat().st_mtime_ns)
    assert len(files) >= 3
    lines = [line for f in sorted(files[:-1], key=lambda p: p.name) + [log] for line in f.read_text().splitlines()]
    assert [json.loads(line)["unmapped"]["seq"] for line in lines] == list(range(1, _head(vault) + 1))
    assert all(stat.S_IMODE(f.stat().st_mode) == 0o600 for f in files)
    assert all(VALIDATORS[json.loads(line)["class_uid"]].is_valid(json.loads(line)) for line in lines)


def test_cli_adds_lists_tests_and_removes_devices(tmp_path):
    from tests.test_cli import out, store, vc

    path = tmp_path / "v"
    store(path)
    target = tmp_path / "stream.jsonl"
    assert vc(path, "audit", "devices", "add", "f", "file", "--file", str(target)).returncode == 0
    listed = json.loads(out(vc(path, "--json", "audit", "devices", "list")))
    assert listed[0]["name"] == "f" and listed[0]["lag_rows"] == 1
    result = vc(path, "--json", "audit", "devices", "test", "f")
    assert json.loads(out(result))["ok"] and target.exists()
    assert vc(path, "audit", "devices", "remove", "f").returncode == 0
    assert json.loads(out(vc(path, "--json", "audit", "devices", "list"))) == []


def test_the_served_console_delivers_and_its_metrics_show_the_lag(tmp_path):
    import re
    import urllib.request

    from tests.browser import console_server, free_port

    path = tmp_path / "vault"
    vault = open_vault(path, principal="owner")
    rx = Receiver()
    vault.add_audit_device("siem", "socket", address=rx.address, format="ocsf")
    env = {"VAULT_METRICS_PORT": str(free_port()), "VAULT_METRICS_ALLOW": "127.0.0.1/32"}
    with console_server(path, env=env) as server:  # its lifespan starts the delivery thread
        _work(vault, 3)
        _until(lambda: len(rx.messages) >= 4)

        def scrape() -> str:
            with urllib.request.urlopen(f"{server.url}/metrics", timeout=30) as resp:
                return resp.read().decode()

        _until(lambda: re.search(r'^vault_audit_device_lag_rows\{device="siem",kind="socket"\} 0\.0$', scrape(),
                                 re.M) is not None)
        assert re.search(r'^vault_audit_device_refusing\{device="siem"\} 0\.0$', scrape(), re.M)
    got = [seq_of(m) for m in rx.messages]
    assert got == list(range(2, 2 + len(got))) and len(got) >= 4  # from the device's own row, in chain order
    vault.storage.dispose()


def test_a_line_torn_by_a_crash_is_cut_and_sent_again(vault, tmp_path):
    log = tmp_path / "audit.jsonl"
    vault.add_audit_device("file", "file", path=str(log), backfill=True)
    vault.deliver_audit()
    whole = log.read_text()
    with open(log, "a") as f:  # what a kill -9 in the middle of a write leaves (its cursor never moved)
        f.write('{"seq": 99, "timestamp": "2026-')
    vault.audit_devices.deliverer.close()  # a new process: it has not looked at the file yet
    vault.store_secret("next", "v")
    vault.deliver_audit()
    lines = log.read_text().splitlines()
    assert log.read_text().startswith(whole) and [json.loads(line)["seq"] for line in lines] == \
        list(range(1, _head(vault) + 1))
    assert vault.verify_audit_file(lines, vault.audit_checkpoint()).ok
