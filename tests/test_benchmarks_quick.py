"""The benchmark harness works end to end (a smoke run: it checks output, never a timing)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_quick_run_writes_every_row(tmp_path):
    out = tmp_path / "bench"
    proc = subprocess.run([sys.executable, "-m", "benchmarks.run", "--quick", "--pg", "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    table = (out / "results.md").read_text()
    data = json.loads((out / "results.json").read_text())
    assert (out / "latency_vs_size.html").stat().st_size > 1000
    assert set(data["vault"]) == {"sqlite", "postgresql"}
    # Every vault operation at every size, with a median and a p99.
    for backend, per in data["vault"].items():
        assert sorted(int(s) for s in per["sizes"]) == data["meta"]["sizes"]
        for size in per["sizes"].values():
            for op in ("store", "retrieve", "list_100", "update_cas", "rotate", "audit_newest_100",
                       "audit_principal_7d", "health"):
                assert size["latency"][op]["median_ms"] > 0 and size["latency"][op]["p99_ms"] > 0
        assert set(per["throughput"]) == {"retrieve", "store"}
        assert all(per["throughput"][op][t] > 0 for op in ("retrieve", "store") for t in ("1", "2", "8"))
    # The hot paths against their in-run floors, with statements, round trips and throughput points.
    for backend in ("sqlite", "postgresql"):
        hot = data["hot"][backend]
        for op in ("retrieve", "store", "update", "rotate", "list_100", "audit_newest_100"):
            o = hot["ops"][op]
            assert o["floor_ms"] > 0 and o["ratio"] > 0 and o["p99_ms"] > 0 and o["statements"] >= 1
            assert (o["round_trips"] >= 1) == (backend == "postgresql")
        assert set(hot["throughput"]) == {"1 threads", "2 threads", "8 threads", "32 threads", "2 processes",
                                          "4 processes"} and all(v > 0 for v in hot["throughput"].values())
        assert hot["verify"]["ok"]
    assert "Hot paths" in table and "× floor" in table
    # Peers and both floors ran (none reported an error), beside the seed's published figures.
    assert {"seed-literal", "keyrings.cryptfile", "pykeepass", "floor (sqlite3)", "floor (psycopg)"} <= set(
        data["peers"])
    assert not [name for name, p in data["peers"].items() if "error" in p]
    # The bulk-built chain still verifies, on both backends.
    assert all(v["ok"] and v["rows"] > data["meta"]["audit_rows"] for v in data["verify"].values())
    # Every row id is in the JSON and in the printed table, with a status for every goal.
    expected = {f"{b}/{op}" for b in ("sqlite", "postgresql") for op in
                ("store", "retrieve", "list_100", "update_cas", "rotate", "audit_newest_100",
                 "audit_principal_7d", "health", "throughput/retrieve", "throughput/store")}
    expected |= {"access/uncached", "access/cached", "secrets_mapping/cached", "secrets_mapping/after_rotation",
                 "page/secrets", "page/audit", "page/health", "goal/sqlite/retrieve", "goal/postgresql/retrieve",
                 "goal/faster-than/pykeepass/store", "goal/faster-than/keyrings.cryptfile/retrieve",
                 "peer/seed (published)", "peer/floor (sqlite3)"}
    assert expected <= set(data["row_ids"])
    for rid in data["row_ids"]:
        assert f"[{rid}]" in table, rid
    assert all(g["status"] in ("PASS", "MISS", "n/a") for g in data["goals"])
    assert all(g["status"] != "n/a" for g in data["goals"] if g["id"].startswith(("goal/sqlite/", "goal/postgresql/")))
    assert "PASS" in table or "MISS" in table
    assert data["access"]["rules"] == 10_000
    for key in ("nproc", "cpu", "memory_gib"):
        assert data["meta"]["machine"][key]
    for key in ("python", "sqlite", "SQLAlchemy", "cryptography", "PostgreSQL"):
        assert data["meta"]["versions"][key]
    assert proc.stdout.count("[sqlite/retrieve]") == 1  # the table is printed too
