"""kill -9 loop: writers are killed at random points; after each kill the vault must be whole.

After every kill: ``integrity_check() == "ok"``, every acknowledged write is present (value
readable and equal, with its 'allowed' audit row), no change exists without its audit row, and
the audit chain verifies.
"""

from __future__ import annotations

import random
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .common import check_consistency, open_test_vault, read_json_lines, worker_cmd, worker_env


@dataclass
class CrashFigures:
    backend: str
    kills: int = 0
    acknowledged: int = 0
    in_flight_committed: int = 0
    in_flight_lost: int = 0
    lost_writes: int = 0
    versions_checked: int = 0
    chain_rows: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems and self.lost_writes == 0


def _wait_ready(out: Path, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if out.exists() and out.read_text().startswith("READY"):
            return
        if proc.poll() is not None:
            raise RuntimeError(f"writer exited early ({proc.returncode})")
        time.sleep(0.01)
    raise RuntimeError("writer did not start")


def run_crash_loop(workdir: Path, kills: int, url: str | None = None, seed: int = 1,
                   max_delay: float = 0.6) -> CrashFigures:
    """``kills`` writer subprocesses, each SIGKILLed after a random delay, each followed by checks."""
    rng = random.Random(seed)
    vault_dir = workdir / "vault"
    vault = open_test_vault(vault_dir, url)
    figures = CrashFigures("postgresql" if url else "sqlite")
    rule_state: dict[int, bool] = {}  # acknowledged: True = present, False = removed
    try:
        for k in range(kills):
            out = workdir / f"writer-{k}.out"
            err = workdir / f"writer-{k}.err"
            args = [str(vault_dir), str(seed * 1000 + k)] + ([url] if url else [])
            with out.open("w") as fo, err.open("w") as fe:
                proc = subprocess.Popen(worker_cmd("writer.py", *args), stdout=fo, stderr=fe, env=worker_env())
                try:
                    _wait_ready(out, proc)
                    time.sleep(rng.uniform(0.0, max_delay))
                    if proc.poll() is not None:
                        figures.problems.append(f"kill {k}: writer died by itself: {err.read_text()[-500:]}")
                    proc.send_signal(signal.SIGKILL)
                finally:
                    proc.kill()
                    proc.wait()
            figures.kills += 1
            _check_after_kill(vault, out.read_text(), figures, rule_state, k)
            if figures.problems:
                break
    finally:
        vault.storage.dispose()
    return figures


def _check_after_kill(vault, text: str, figures: CrashFigures, rule_state: dict[int, bool], k: int) -> None:
    lines = text.splitlines()
    acked = [r for r in read_json_lines("\n".join(l[2:] for l in lines if l.startswith("A ")))]
    begun = [r for r in read_json_lines("\n".join(l[2:] for l in lines if l.startswith("B ")))]
    in_flight = begun[len(acked)] if len(begun) > len(acked) else None
    figures.acknowledged += len(acked)
    for rec in acked:
        if "error" in rec:
            figures.problems.append(f"kill {k}: {rec['op']} failed: {rec['error']}")
        if rec["op"] == "grant":
            rule_state[rec["rule_id"]] = True
        elif rec["op"] == "revoke":
            rule_state[rec["rule_id"]] = False
        else:
            _check_value_write(vault, rec, figures, k)
    if in_flight is not None:
        _classify_in_flight(vault, in_flight, figures, rule_state)
    live = {r.id for r in vault.list_rules() if r.id}  # built-in rules are never in rule_state
    for rule_id, present in rule_state.items():
        if (rule_id in live) != present:
            figures.lost_writes += 1
            figures.problems.append(f"kill {k}: rule {rule_id} should be {'present' if present else 'gone'}")
    report = check_consistency(vault)
    figures.versions_checked, figures.chain_rows = report.versions, report.chain_rows
    if not report.ok:
        figures.problems.append(f"kill {k}: integrity={report.integrity} chain={report.chain_ok} "
                                f"{report.problems[:3]}")


def _check_value_write(vault, rec: dict[str, Any], figures: CrashFigures, k: int) -> None:
    value = vault.get_secret(rec["name"], rec["env"], version=rec["version"])
    rows = vault.get_audit_log(name=rec["name"], operation=rec["op"], environment=rec["env"], outcome="allowed",
                               limit=10_000)
    if value != rec["value"] or not any(r["version"] == rec["version"] for r in rows):
        figures.lost_writes += 1
        figures.problems.append(f"kill {k}: acknowledged {rec['op']} {rec['env']}/{rec['name']} "
                                f"v{rec['version']} missing (value ok={value == rec['value']})")


def _classify_in_flight(vault, rec: dict[str, Any], figures: CrashFigures, rule_state: dict[int, bool]) -> None:
    """The call cut by the kill either committed whole (with its audit row) or not at all."""
    committed = False
    if rec["op"] in ("store", "update", "rotate"):
        meta = vault.get_metadata(rec["name"], rec["env"])
        if meta is not None:
            committed = vault.get_secret(rec["name"], rec["env"]) == rec["value"]
    elif rec["op"] == "revoke":
        committed = rec["rule_id"] not in {r.id for r in vault.list_rules()}
        rule_state[rec["rule_id"]] = not committed
    elif rec["op"] == "grant":
        # an unacknowledged grant may have committed: adopt whatever rules exist that we do not track
        for rule in vault.list_rules():
            if rule.id and not rule.note.startswith("built-in") and not rule_state.get(rule.id):
                rule_state[rule.id] = True
                committed = True
    if committed:
        figures.in_flight_committed += 1
    else:
        figures.in_flight_lost += 1
