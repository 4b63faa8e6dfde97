"""Shared helpers: scale, vault opening, consistency checks and leak scanning."""

from __future__ import annotations

import json
import os
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vault_core import open_vault
from vault_core.vault import Vault

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
ENVS = ("development", "staging", "production", "testing")
VALUE_OPS = ("store", "update", "rotate")  # audit operations that write a secret version
BIG = 10_000


def fault_scale() -> float:
    """``VAULT_FAULT_SCALE``: 1.0 = the bounded CI counts; the tool's ``--full`` uses the issue's counts."""
    try:
        return max(0.05, float(os.environ.get("VAULT_FAULT_SCALE", "1")))
    except ValueError:
        return 1.0


def scaled(n: int) -> int:
    return max(1, round(n * fault_scale()))


def worker_env() -> dict[str, str]:
    """Environment for worker subprocesses: the project importable, no developer vault settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VAULT_")}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def worker_cmd(script: str, *args: str) -> list[str]:
    return [sys.executable, str(HERE / script), *args]


def open_test_vault(vault_dir: Path, url: str | None = None) -> Vault:
    return open_vault(vault_dir, database_url=url, principal="owner")


def all_audit_rows(vault: Vault, **filters: Any) -> list[dict[str, Any]]:
    """Every audit row matching ``filters`` (follows cursors)."""
    from vault_core import audit_cursor

    out, cursor = [], None
    while True:
        page = vault.get_audit_log(limit=BIG, cursor=cursor, **filters)
        out.extend(page)
        if len(page) < BIG:
            return out
        cursor = audit_cursor(page[-1])


def all_secrets(vault: Vault) -> list:
    out, cursor = [], None
    while True:
        page = vault.list_secrets(limit=1000, cursor=cursor, include_deleted=True)
        out.extend(page)
        cursor = page.next_cursor
        if cursor is None:
            return out


def snapshot(vault: Vault) -> dict[str, Any]:
    """Secrets (metadata + versions) and rules: what must not change when a call fails."""
    secrets = {}
    for meta in all_secrets(vault):
        versions = [(v.version, v.state) for v in vault.list_versions(secret_id=meta.id)]
        secrets[meta.id] = (meta.environment, meta.name, meta.current_version, meta.description, meta.tags,
                            meta.secret_type, meta.deleted_at, meta.updated_at, tuple(versions))
    rules = sorted((r.id, r.subject_kind, r.subject, r.environment, r.pattern, tuple(sorted(r.levels)), r.effect)
                   for r in vault.list_rules())
    return {"secrets": secrets, "rules": rules}


@dataclass
class Consistency:
    """What a consistency pass found (empty ``problems`` = sound)."""

    integrity: str = ""
    chain_ok: bool = False
    chain_rows: int = 0
    versions: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.integrity == "ok" and self.chain_ok and not self.problems


def check_consistency(vault: Vault) -> Consistency:
    """Storage sound, chain verifies, and every secret version and rule has its 'allowed' audit row."""
    report = Consistency(integrity=vault.storage.integrity_check())
    verify = vault.verify_audit_log()
    report.chain_ok, report.chain_rows = verify.ok, verify.rows_checked
    if not verify.ok:
        report.problems.append(f"chain: {verify.problem} at {verify.first_bad_seq}")
    for meta in all_secrets(vault):
        stored = {v.version for v in vault.list_versions(secret_id=meta.id)}
        audited = Counter(r["version"] for r in all_audit_rows(vault, secret_id=meta.id, outcome="allowed")
                          if r["operation"] in VALUE_OPS and r["details"] != "metadata")
        report.versions += len(stored)
        # old versions may be pruned (max_versions), but every version ever written has one row
        ever = set(range(1, meta.current_version + 1))
        if not stored <= set(audited) or set(audited) != ever or any(c != 1 for c in audited.values()):
            report.problems.append(f"{meta.environment}/{meta.name}: versions {sorted(stored)} "
                                   f"but audited {sorted(audited.elements())}")
    # rule ids may be reused after a removal (SQLite rowids): count adds minus removes per id
    live = {r.id for r in vault.list_rules() if r.id and r.note != "access_policy"}
    net = Counter(_rule_id(r) for r in all_audit_rows(vault, operation="rule_add", outcome="allowed"))
    net.subtract(_rule_id(r) for r in all_audit_rows(vault, operation="rule_remove", outcome="allowed"))
    audited_live = {i for i, n in net.items() if n == 1}
    if live != audited_live or any(n not in (0, 1) for n in net.values()):
        report.problems.append(f"rules {sorted(live)} but audited adds-removes {sorted(audited_live)}")
    return report


def _rule_id(row: dict[str, Any]) -> int:
    return int(row["details"].split(":", 1)[0].split()[1])  # "rule 12: allow read to ..."


def read_json_lines(text: str) -> list[dict[str, Any]]:
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                pass  # a line cut by the kill
    return out


def files_containing(paths: list[Path], needles: list[bytes]) -> list[str]:
    """Which files hold any needle in clear (raw bytes)."""
    hits = []
    for path in paths:
        if path.exists() and path.is_file():
            data = path.read_bytes()
            hits.extend(f"{path.name}: {n[:6]!r}..." for n in needles if n in data)
    return hits


def database_files(vault_dir: Path) -> list[Path]:
    return sorted(p for p in vault_dir.glob("vault.db*") if p.is_file())
