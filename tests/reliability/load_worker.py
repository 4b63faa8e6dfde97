"""Load worker: THREADS threads mixing reads, cas increments, rotations and rule changes.

    python load_worker.py VAULT_DIR DATABASE_URL|- WORKER THREADS OPS_PER_THREAD

Prints one JSON line: acknowledged increments per counter, conflicts retried, and every error
that reached a caller (the test expects none).
"""

from __future__ import annotations

import faulthandler
import json
import random
import sys
import threading
from collections import Counter

from vault_core import Conflict, open_vault

COUNTERS = [f"ctr/{i}" for i in range(4)]
ROTATED = [f"rot/{i}" for i in range(2)]
ENV = "development"


def run_thread(vault, worker: int, thread: int, ops: int, out: dict, lock: threading.Lock) -> None:
    rng = random.Random(worker * 100 + thread)
    mine = Counter()
    for _ in range(ops):
        roll = rng.random()
        try:
            if roll < 0.5:
                name = rng.choice(COUNTERS)
                while True:
                    version = vault.get_metadata(name, ENV).current_version
                    current = vault.get_secret(name, ENV, version=version)
                    try:
                        vault.update_secret(name, ENV, value=str(int(current) + 1), cas=version)
                        mine["inc:" + name] += 1
                        break
                    except Conflict:
                        mine["conflicts"] += 1
            elif roll < 0.75:
                if vault.get_secret(rng.choice(COUNTERS + ROTATED), ENV) is None:
                    mine["errors:read returned None"] += 1
                mine["reads"] += 1
            elif roll < 0.9:
                vault.rotate_secret(name=rng.choice(ROTATED), environment=ENV)
                mine["rotations"] += 1
            else:
                rule_id = vault.grant(f"svc-{worker}-{thread}", ["read"], environment=ENV, pattern="rot/*")
                vault.revoke(rule_id)
                mine["rule_changes"] += 2
        except Exception as exc:  # noqa: BLE001 - anything reaching the caller is a finding
            mine[f"errors:{type(exc).__name__}: {str(exc)[:200]}"] += 1
    with lock:
        out.update({k: out.get(k, 0) + v for k, v in mine.items()})


def main() -> None:
    # a hang (a deadlock across threads and database locks) ends with every thread's stack, not a timeout
    faulthandler.dump_traceback_later(300, exit=True)
    vault_dir, url, worker, threads, ops = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), \
        int(sys.argv[5])
    vault = open_vault(vault_dir, database_url=None if url == "-" else url, principal="owner", create=False)
    out: dict = {}
    lock = threading.Lock()
    pool = [threading.Thread(target=run_thread, args=(vault, worker, t, ops, out, lock)) for t in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
