"""Audit device delivery: rows a second per kind and format, lag from commit to receiver, and the cost of
the fail-closed check per operation. Run: python benchmarks/audit_delivery.py (prints JSON; noisy on a shared
machine, compare the figures of one run with each other)."""

import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.audit_receivers import Receiver, SyslogTcpReceiver  # noqa: E402
from vault_core import open_vault  # noqa: E402
from vault_core.service.audit_devices import start_audit_delivery, stop_audit_delivery  # noqa: E402

d = tempfile.mkdtemp()
v = open_vault(d + "/v", principal="owner")
N = 5000
# bulk rows through the runner: record_event is the cheapest audited write
t0 = time.perf_counter()
for i in range(N):
    v.record_event("login", "allowed", f"bench {i}")
write_s = time.perf_counter() - t0
res = {"rows": N, "write_rows_per_s": round(N / write_s)}
for fmt in ("native", "ocsf", "ecs"):
    for kind, rx_cls in (("socket", Receiver), ("syslog", SyslogTcpReceiver)):
        rx = rx_cls()
        name = f"{kind}-{fmt}"
        v.add_audit_device(name, kind, address=rx.address, format=fmt, backfill=True)
        total = v.audit_checkpoint()["seq"]
        t0 = time.perf_counter()
        while next(x for x in v.list_audit_devices() if x["name"] == name)["lag_rows"]:
            v.deliver_audit()
        dt = time.perf_counter() - t0
        rx.wait_for(total)
        res[f"{name}_rows_per_s"] = round(total / dt)
        v.remove_audit_device(name)
        rx.stop()
# lag: a row written while the delivery thread runs; time until the receiver has it
rx = Receiver()
v.add_audit_device("lag", "socket", address=rx.address)
start_audit_delivery(v, interval_s=0.05)
time.sleep(0.5)
lags = []
for i in range(50):
    n = len(rx.messages)
    t0 = time.perf_counter()
    v.record_event("login", "allowed", "lag")
    rx.wait_for(n + 1)
    lags.append(time.perf_counter() - t0)
    time.sleep(0.02)
stop_audit_delivery(v)
lags.sort()
res["lag_ms_median"] = round(lags[25] * 1000, 1)
res["lag_ms_p99"] = round(lags[-1] * 1000, 1)
# the gate's cost per operation: get_secret with and without a required device
v.store_secret("x", "y")


def timeit(n=2000):
    t0 = time.perf_counter()
    for _ in range(n):
        v.get_secret("x")
    return (time.perf_counter() - t0) / n * 1e6


v.remove_audit_device("lag")
base = timeit()
v.add_audit_device("req", "file", path=d + "/req.jsonl", required=True)
gated = timeit()
res["get_secret_us_no_device"] = round(base)
res["get_secret_us_required_device"] = round(gated)
print(json.dumps(res, indent=1))
