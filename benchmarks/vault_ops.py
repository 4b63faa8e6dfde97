"""The seed's operations measured through the public facade on a built vault."""

from __future__ import annotations

import itertools
import os
import random
from datetime import datetime, timedelta, timezone
from typing import Any

from vault_core.access import CompiledRules, Rule
from vault_core.types import AccessLevel

from .build import ENVIRONMENTS, principal_name, secret_name
from .timing import Stat, measure, throughput

# (key, label) of the per-size rows, in table order.
OPERATIONS = (
    ("store", "store (new secret, durable)"),
    ("retrieve", "retrieve (+ audit row)"),
    ("list_100", "list 100"),
    ("update_cas", "update with cas"),
    ("rotate", "rotate"),
    ("audit_newest_100", "audit query: newest 100"),
    ("audit_principal_7d", "audit query: 1 principal, 7 days"),
    ("health", "health"),
)
THROUGHPUT_OPS = ("retrieve", "store")
THREADS = (1, 2, 8)
_counter = itertools.count()


class VaultBench:
    """Measures one built vault of ``size`` bulk secrets; ``iters`` maps operation → iterations."""

    def __init__(self, vault, size: int, *, seed: int, iters: dict[str, int]):
        self.vault = vault
        self.size = size
        self.iters = iters
        self.rng = random.Random(f"{seed}:ops:{size}:{vault.storage.backend}")
        # Disjoint slices of the bulk secrets: update and rotate move versions, reads don't care.
        third = max(1, size // 3)
        self.read_range = (0, size)
        self.update_range = (third, 2 * third)
        self.rotate_range = (2 * third, size)
        self.versions: dict[int, int] = {}
        self.run_id = f"{vault.storage.backend}-{size}-{next(_counter)}-{random.Random().getrandbits(32):08x}"

    def _pick(self, lo_hi: tuple[int, int]) -> tuple[str, str, int]:
        i = self.rng.randrange(*lo_hi)
        env, name = secret_name(i)
        return env, name, i

    # -- one callable per operation ------------------------------------------------------------
    def op_store(self, n: int) -> None:
        self.vault.store_secret(f"bench/new/{self.run_id}/s{n}", "v" * 40, environment="production")

    def op_retrieve(self, n: int) -> None:
        env, name, _ = self._pick(self.read_range)
        if self.vault.get_secret(name, env) is None:
            raise AssertionError(f"bulk secret {env}/{name} did not read back")

    def op_list_100(self, n: int) -> None:
        # Start after a random secret that still has >= 100 names after it in its environment
        # (bulk names sort by app group, 40 to a group, a quarter of them per environment).
        env, name, _ = self._pick((0, max(1, self.size - 500)))
        page = self.vault.list_secrets(environment=env, limit=100, cursor=f"{env}/{name}")
        if self.size >= 1000 and len(page) != 100:
            raise AssertionError(f"list returned {len(page)} names, not 100")

    def op_update_cas(self, n: int) -> None:
        env, name, i = self._pick(self.update_range)
        current = self.versions.get(i, 1)
        self.versions[i] = self.vault.update_secret(name, env, value=f"updated-{n}", cas=current)

    def op_rotate(self, n: int) -> None:
        env, name, _ = self._pick(self.rotate_range)
        self.vault.rotate_secret(name=name, environment=env)

    def op_audit_newest_100(self, n: int) -> None:
        rows = self.vault.get_audit_log(limit=100)
        if len(rows) != 100:
            raise AssertionError("the audit log returned fewer than 100 rows")

    def op_audit_principal_7d(self, n: int) -> None:
        end = datetime.now(timezone.utc) - timedelta(days=self.rng.randrange(8, 350))
        self.vault.get_audit_log(principal=principal_name(self.rng.randrange(0, 8)),
                                 since=end - timedelta(days=7), until=end, limit=100)

    def op_health(self, n: int) -> None:
        self.vault.get_vault_health()

    # -- runs ---------------------------------------------------------------------------------------
    def latencies(self) -> dict[str, Stat]:
        return {key: measure(getattr(self, f"op_{key}"), self.iters[key]) for key, _ in OPERATIONS}

    def throughput(self, op: str, threads: int, seconds: float) -> float:
        """ops/s of ``op`` with ``threads`` threads (each with its own random stream and names)."""
        def make(t: int):
            worker = VaultBench(self.vault, self.size, seed=self.rng.randrange(1 << 30), iters=self.iters)
            worker.run_id = f"{self.run_id}-t{threads}-{t}"
            return getattr(worker, f"op_{op}")
        return throughput(make, threads, seconds)


# -- the access check with 10,000 rules -----------------------------------------------------------
def build_rules(n_rules: int, seed: int) -> CompiledRules:
    """``n_rules`` rules over 500 users and 50 roles: app globs, exact names, some denies."""
    rng = random.Random(f"{seed}:rules")
    levels = [frozenset({AccessLevel.READ}), frozenset({AccessLevel.READ, AccessLevel.ROTATE}),
              frozenset({AccessLevel.WRITE}), frozenset({AccessLevel.ADMIN})]
    rules = []
    for rid in range(1, n_rules + 1):
        kind = rng.choice(("user", "user", "role", "any"))
        subject = f"user-{rng.randrange(500):03d}" if kind != "role" else f"role-{rng.randrange(50):02d}"
        i = rng.randrange(100_000)
        env, name = secret_name(i)
        pattern = rng.choice((name, f"app-{i // 40:05d}/*", f"app-{i // 4000:03d}*", "*"))
        rules.append(Rule(rid, kind, subject, rng.choice((*ENVIRONMENTS, "*")), pattern, rng.choice(levels),
                          "deny" if rng.random() < 0.05 else "allow"))
    roles_of = {f"user-{u:03d}": [f"role-{rng.randrange(50):02d}" for _ in range(3)] for u in range(500)}
    return CompiledRules(1, rules, roles_of)


def bench_access(n_rules: int, iterations: int, seed: int) -> dict[str, Any]:
    """Median/p99 of ``CompiledRules.check``: uncached (a new name every call) and cached."""
    compiled = build_rules(n_rules, seed)
    rng = random.Random(f"{seed}:checks")
    user = "user-007"
    roles = compiled.roles(user)
    names = [secret_name(i) for i in rng.sample(range(100_000), iterations)]  # distinct: every call misses

    def uncached(n: int) -> None:
        env, name = names[n]
        compiled.check(user, roles, env, name, AccessLevel.READ)

    def cached(n: int) -> None:
        compiled.check(user, roles, "production", "app-00001/api_key-0000041", AccessLevel.READ)

    return {"uncached": measure(uncached, iterations, warmup=0), "cached": measure(cached, iterations),
            "rules": n_rules, "candidates": len(compiled._candidates(user, roles))}


def fsync_ms(folder, rounds: int = 40) -> float:
    """Median cost of one fsync of a 4 KiB write in ``folder`` (what a durable commit waits for)."""
    import os
    import statistics
    import time

    path = os.path.join(folder, ".fsync-probe")
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    samples = []
    try:
        for _ in range(rounds):
            os.write(fd, b"x" * 4096)
            t = time.perf_counter_ns()
            os.fsync(fd)
            samples.append((time.perf_counter_ns() - t) / 1e6)
    finally:
        os.close(fd)
        os.unlink(path)
    return statistics.median(samples)


CPU_OPS = ("store", "retrieve", "update_cas", "rotate")


def bench_cpu_only(size: int, iters: dict[str, int], seed: int) -> dict[str, Stat]:
    """Point operations on a SQLite vault in /dev/shm, where fsync is free: the software's own cost."""
    import shutil
    import tempfile

    from vault_core import open_vault

    from .build import add_secrets

    folder = tempfile.mkdtemp(prefix="vault-bench-shm-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
    try:
        vault = open_vault(os.path.join(folder, "v"), principal="bench-owner")
        add_secrets(vault, 0, size, seed=seed, now=vault.clock())
        bench = VaultBench(vault, size, seed=seed, iters=iters)
        out = {op: measure(getattr(bench, f"op_{op}"), iters[op]) for op in CPU_OPS}
        vault.storage.dispose()
        return out
    finally:
        shutil.rmtree(folder, ignore_errors=True)
