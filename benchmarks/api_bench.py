"""Benchmark of the HTTP API (issue 21): a KV v2 read over HTTP at 1, 8 and 32 concurrent clients, next to the
in-process ``get_secret`` of the same secret in the same run.

    python benchmarks/api_bench.py [--seconds 3] [--iterations 500]

The API runs as its own process (``uvicorn vault_core.api.asgi:app``, one worker, as ``vault-console serve``
runs it); clients are threads with one keep-alive connection each. An API read is a token check, the
version lookup, the audited read and the version metadata: the ratio to the in-process read is the figure.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from vault_core import open_vault  # noqa: E402
from vault_core.service.machines import MachinesService  # noqa: E402

CONCURRENCY = (1, 8, 32)
PATH = "/v1/production/data/bench/db_url"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _stats(samples_ns: list[int]) -> dict[str, float]:
    ms = sorted(s / 1e6 for s in samples_ns)
    return {"median_ms": round(statistics.median(ms), 4), "p99_ms": round(ms[int(0.99 * (len(ms) - 1))], 4),
            "n": len(ms)}


def _read(conn: http.client.HTTPConnection, token: str) -> None:
    conn.request("GET", PATH, headers={"X-Vault-Token": token})
    resp = conn.getresponse()
    body = resp.read()
    if resp.status != 200:
        raise RuntimeError(f"API read answered {resp.status}: {body[:200]!r}")


def _clients(port: int, token: str, n: int, seconds: float) -> dict[str, Any]:
    samples: list[list[int]] = [[] for _ in range(n)]
    start, stop = threading.Barrier(n + 1), time.perf_counter() + seconds + 0.2

    def client(i: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        _read(conn, token)
        start.wait()
        while time.perf_counter() < stop:
            t = time.perf_counter_ns()
            _read(conn, token)
            samples[i].append(time.perf_counter_ns() - t)
        conn.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    start.wait()
    began = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - began
    flat = [s for one in samples for s in one]
    return {"clients": n, "reads_per_s": round(len(flat) / elapsed, 1), **_stats(flat)}


def bench(folder: Path, *, iterations: int = 500, seconds: float = 3.0, quiet: bool = False) -> dict[str, Any]:
    """Figures of one run: in-process read, API read at 1 client, and throughput at each concurrency."""
    vault = open_vault(folder / "vault", principal="bench-owner")
    machines = MachinesService(vault)
    role_id = machines.create_machine("bench-app", token_ttl=3600, token_max_ttl=7200)
    secret_id = machines.new_secret_id("bench-app")
    vault.grant("bench-app", ["read"], environment="production", subject_kind="user")
    vault.store_secret("bench/db_url", "postgresql://bench@db/app", environment="production")
    out: dict[str, Any] = {}
    samples = []
    with vault.security_context("bench-app", "127.0.0.1"):
        for _ in range(iterations):
            t = time.perf_counter_ns()
            vault.get_secret("bench/db_url", "production")
            samples.append(time.perf_counter_ns() - t)
    out["in_process_read"] = _stats(samples)
    port = _free_port()
    env = {**os.environ, "VAULT_PATH": str(folder / "vault")}
    server = subprocess.Popen([sys.executable, "-m", "uvicorn", "vault_core.api.asgi:app", "--port", str(port),
                               "--host", "127.0.0.1", "--forwarded-allow-ips", "", "--log-level", "warning",
                               "--no-access-log"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        conn = None
        for _ in range(200):
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                conn.request("POST", "/v1/auth/approle/login", body=json.dumps(
                    {"role_id": role_id, "secret_id": secret_id}), headers={"Content-Type": "application/json"})
                token = json.loads(conn.getresponse().read())["auth"]["client_token"]
                break
            except OSError:
                time.sleep(0.1)
        else:
            raise RuntimeError("the API server did not start")
        samples = []
        for _ in range(iterations):
            t = time.perf_counter_ns()
            _read(conn, token)
            samples.append(time.perf_counter_ns() - t)
        out["api_read_1_client"] = _stats(samples)
        out["throughput"] = [_clients(port, token, n, seconds) for n in CONCURRENCY]
    finally:
        server.terminate()
        server.wait(timeout=30)
        vault.storage.dispose()
    out["ratio_api_to_in_process"] = round(out["api_read_1_client"]["median_ms"]
                                           / out["in_process_read"]["median_ms"], 1)
    if not quiet:
        print(render(out))
    return out


def render(out: dict[str, Any]) -> str:
    lines = ["| read | clients | median ms | p99 ms | reads/s |", "|---|---|---|---|---|",
             f"| in-process get_secret | 1 | {out['in_process_read']['median_ms']} | "
             f"{out['in_process_read']['p99_ms']} | |",
             f"| API GET /v1/<env>/data/<name> | 1 (sequential) | {out['api_read_1_client']['median_ms']} | "
             f"{out['api_read_1_client']['p99_ms']} | |"]
    for row in out["throughput"]:
        lines.append(f"| API, concurrent | {row['clients']} | {row['median_ms']} | {row['p99_ms']} | "
                     f"{row['reads_per_s']} |")
    lines.append(f"\nAPI read / in-process read (median, same run): {out['ratio_api_to_in_process']}x")
    return "\n".join(lines)


def run_for(cfg: dict, work: Path) -> dict[str, Any]:
    """``benchmarks/run.py``'s entry: a quick run under ``--quick``, else the full one."""
    quick = cfg["iters"]["retrieve"] < 100
    folder = work / "api-bench"
    folder.mkdir(parents=True, exist_ok=True)
    try:
        return bench(folder, iterations=50 if quick else 500, seconds=0.5 if quick else 3.0, quiet=True)
    except Exception as exc:  # this bench failing must not lose the others
        return {"note": f"api_bench failed: {type(exc).__name__}: {str(exc)[:200]}"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--iterations", type=int, default=500)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        bench(Path(tmp), iterations=args.iterations, seconds=args.seconds)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
