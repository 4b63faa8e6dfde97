"""Fault and load suite: crashes, concurrent replicas, lost and full storage, hostile input, leaks.

    python tools/fault_suite.py            # the bounded form the tests run (a few minutes)
    python tools/fault_suite.py --full     # the issue's counts: 100 kills on SQLite, 50 on PostgreSQL, ...

Starts a private PostgreSQL server (stopped and removed at the end) and prints one line per
scenario plus totals. Exit status 0 when every scenario held (no lost write, chain verified).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.pgserver import start_postgres  # noqa: E402
from tests.reliability import crash, fuzz, fuzz_cli, leak, load, outage  # noqa: E402
from tests.reliability.common import open_test_vault  # noqa: E402

COUNTS = {  # bounded (CI) and full
    "kills_sqlite": (20, 100), "kills_pg": (10, 50), "load_ops": (25, 100), "outages": (1, 3),
    "fuzz_sqlite": (600, 3000), "fuzz_pg": (300, 1000), "cli": (12, 60), "headers": (1500, 5000),
}
KNOWN_FUZZ = None  # filled from tests/reliability/test_fuzz.py


def row(name: str, backend: str, seconds: float, **fig: Any) -> dict[str, Any]:
    return {"scenario": name, "backend": backend, "seconds": round(seconds, 1), **fig}


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    start = time.monotonic()
    return fn(), time.monotonic() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="the issue's full counts")
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    args = parser.parse_args(argv)
    n = {k: v[1 if args.full else 0] for k, v in COUNTS.items()}
    from tests.reliability.test_fuzz import KNOWN

    work = Path(tempfile.mkdtemp(prefix="vault-fault-suite-"))
    server = None if args.no_postgres else start_postgres(work / "pg")

    def new_db() -> str:
        name = "fs_" + uuid.uuid4().hex[:10]
        server.create_database(name)
        return server.url(name)

    def sub(name: str) -> Path:
        path = work / name
        path.mkdir()
        return path

    rows: list[dict[str, Any]] = []
    try:
        backends = [("sqlite", None)] + ([] if server is None else [("postgresql", new_db)])
        for backend, make_url in backends:
            url = make_url() if make_url else None
            kills = n["kills_sqlite"] if url is None else n["kills_pg"]
            f, s = timed(lambda: crash.run_crash_loop(sub(f"crash-{backend}"), kills, url=url))
            rows.append(row("kill -9 writers", backend, s, ops=f.acknowledged, kills=f.kills, faults=f.kills,
                            lost=f.lost_writes, chain=not any("chain" in p for p in f.problems), ok=f.ok,
                            note=f"in flight at kill: {f.in_flight_committed} committed whole, "
                                 f"{f.in_flight_lost} not at all; {f.versions_checked} versions checked"))
            url = make_url() if make_url else None
            f, s = timed(lambda: load.run_load(sub(f"load-{backend}"), n["load_ops"], url=url))
            rows.append(row("4 procs x 4 threads", backend, s, ops=f.operations, conflicts=f.conflicts,
                            lost=f.lost_updates, chain=not f.problems, ok=f.ok,
                            note=f"{f.increments} cas increments, {f.rotations} rotations, "
                                 f"{f.rule_changes} rule changes, errors to callers: {sum(f.errors.values())}"))
        if server is not None:
            f, s = timed(lambda: outage.run_postgres_outage(sub("outage"), outages=n["outages"]))
            rows.append(row("server stopped under load", "postgresql", s, ops=f.operations,
                            faults=f.faults_injected, lost=f.lost_writes, chain=not f.problems, ok=f.ok,
                            note=f"{f.failed_while_down} failed while down: {dict(f.error_types)}; "
                                 f"recovered: {f.recovered}"))
        f, s = timed(lambda: outage.run_sqlite_full(sub("full")))
        rows.append(row("file capped until full", "sqlite", s, ops=f.operations, faults=f.faults_injected,
                        lost=f.lost_writes, chain=not f.problems, ok=f.ok,
                        note=f"{dict(f.error_types)}; messages: {f.sample_messages}"))
        for backend, make_url in backends:
            url = make_url() if make_url else None
            examples = n["fuzz_sqlite"] if url is None else n["fuzz_pg"]
            vault = open_test_vault(sub(f"fuzz-{backend}") / "vault", url)
            f, s = timed(lambda: fuzz.run_fuzz(vault, examples, backend))
            ok_chain = vault.verify_audit_log().ok
            vault.storage.dispose()
            new = sorted(k for k in f.findings if k not in KNOWN)
            rows.append(row("hostile input, API", backend, s, inputs=f.inputs, chain=ok_chain,
                            ok=not new and ok_chain, note=f"known findings hit: {len(f.findings) - len(new)}; "
                                                          f"new: {new}"))
        cdir = sub("cli") / "vault"
        vault = open_test_vault(cdir)
        vault.store_secret("canary/cli", "CANARY-cli-suite-91b2", environment="development")
        f, s = timed(lambda: fuzz_cli.run_cli_fuzz(vault, cdir, n["cli"], "CANARY-cli-suite-91b2"))
        vault.storage.dispose()
        rows.append(row("hostile input, CLI", "sqlite", s, inputs=f.runs, ok=not f.findings,
                        note=f"exit codes {dict(sorted(f.exit_codes.items()))} {list(f.findings)}"))
        f, s = timed(lambda: fuzz_cli.run_header_fuzz(n["headers"]))
        rows.append(row("hostile headers", "-", s, inputs=f.inputs, ok=not f.findings, note=str(list(f.findings))))
        for backend, make_url in backends:
            url = make_url() if make_url else None
            data_dir = getattr(server, "data_dir", None) if url else None
            f, s = timed(lambda: leak.run_leak_scan(sub(f"leak-{backend}"), url, data_dir))
            rows.append(row("canary leak scan", backend, s, ok=not f.hits and f.control_found,
                            note=f"{f.places} places, {f.bytes_scanned // 1024} KiB, {f.log_records} log records, "
                                 f"{f.exceptions} exceptions; hits: {f.hits}"))
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(work, ignore_errors=True)
    print_summary(rows, args.full)
    return 0 if all(r["ok"] for r in rows) else 1


def print_summary(rows: list[dict[str, Any]], full: bool) -> None:
    cols = ["scenario", "backend", "ops", "kills", "faults", "inputs", "conflicts", "lost", "chain", "ok", "seconds"]
    print(f"\nFault suite ({'full' if full else 'bounded'}), {os.cpu_count()} cores")
    print("  ".join(f"{c:>9}" if c not in ("scenario",) else f"{c:<26}" for c in cols))
    for r in rows:
        print("  ".join(f"{str(r.get(c, '')):>9}" if c != "scenario" else f"{r[c]:<26}" for c in cols))
    for r in rows:
        if r.get("note"):
            print(f"  - {r['scenario']} [{r['backend']}]: {r['note']}")
    total = lambda key: sum(int(r.get(key, 0) or 0) for r in rows)  # noqa: E731
    print(f"\nTotals: operations {total('ops')}, kills {total('kills')}, faults injected {total('faults')}, "
          f"inputs tried {total('inputs')}, cas conflicts {total('conflicts')}, lost writes {total('lost')}, "
          f"chain ok {all(r.get('chain', True) for r in rows)}, all scenarios held {all(r['ok'] for r in rows)}")


if __name__ == "__main__":
    sys.exit(main())
