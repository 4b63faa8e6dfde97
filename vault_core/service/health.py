"""Health figures and status for dashboards and monitoring: figures, never values."""

from __future__ import annotations

from typing import Any

from ..access import ADMIN_ROLE
from ..types import US_PER_DAY, to_datetime
from ..crypto.keyring import ROTATE_BEFORE
from ..storage import repos
from ..storage import Storage
from ..types import Clock
from .audit import AuditService
from .audit_devices import device_status
from .runner import Runner


class HealthService:
    """``get_vault_health`` and ``status``: figures, never values."""

    def __init__(self, runner: Runner, storage: Storage, clock: Clock, audit: AuditService):
        self._runner, self._storage, self._clock, self._audit = runner, storage, clock, audit

    def status(self, *, sealed: bool, strict: bool, key_source: str | None) -> dict[str, Any]:
        """Sealed or not, backend, key source and terms (no secrets; no access needed beyond a caller).

        An unreachable database is reported as ``reachable: False``. Raises ``AccessDenied`` only on a
        strict vault asked without a security context (it answers nobody).
        """
        if strict:
            self._runner.caller.current()
        out: dict[str, Any] = {"sealed": sealed, "backend": self._storage.backend, "strict": strict,
                               "key_source": key_source}
        try:
            with self._storage.transaction(write=False) as tx:
                state = repos.state.get_state(tx)
                out["reachable"] = True
                out["vault_id"] = state["vault_id"] if state else None
                out["key_terms"] = [{"term": r["term"], "created_at": to_datetime(r["created_at"]),
                                     "encryptions": r["encryptions"]} for r in repos.keys.wrapped_keys_of(tx, "data")]
                out["audit_rows"] = state["audit_seq"] if state else 0
        except Exception as exc:  # monitoring wants an answer, not a traceback
            out.update(reachable=False, error=type(exc).__name__)
        return out

    def get_vault_health(self) -> dict[str, Any]:
        """Counts by environment and type, expiring and overdue, key terms, audit chain head.

        Figures only for admins and auditors; others see sealed/backend/reachable.
        Raises ``Sealed``, ``AccessDenied`` (strict mode without a context), ``StorageError``.
        """
        with self._runner.attempt("health", durable=False, audited=False) as att:
            tx = att.tx
            now = self._clock()
            by_env: dict[str, int] = {}
            by_type: dict[str, int] = {}
            for r in repos.secrets.count_secrets_by(tx):
                by_env[r["environment"]] = by_env.get(r["environment"], 0) + r["n"]
                by_type[r["secret_type"]] = by_type.get(r["secret_type"], 0) + r["n"]
            health = {
                "sealed": False,
                "backend": self._storage.backend,
                "reachable": True,
                "total_secrets": sum(by_env.values()),
                "by_environment": by_env,
                "by_type": by_type,
                "expiring_soon": repos.secrets.count_expiring(tx, now + 30 * US_PER_DAY),
                "expired": repos.secrets.count_expiring(tx, now),
                "rotation_due": repos.secrets.count_rotation_due(tx, now),
                "rotation_overdue": repos.secrets.count_rotation_due(tx, now - US_PER_DAY),
                "key_terms": [{"term": r["term"], "created_at": to_datetime(r["created_at"]),
                               "age_days": (now - r["created_at"]) / US_PER_DAY, "encryptions": r["encryptions"]}
                              for r in repos.keys.wrapped_keys_of(tx, "data")],
                "audit_rows": att.state["audit_seq"],
                "last_audit_verify": self._audit.last_verify and self._audit.last_verify.to_dict(),
                "failed_logins_24h": repos.users.count_failures_since(tx, now - US_PER_DAY),
                "key_encryption_limit": ROTATE_BEFORE,
                "audit_devices": device_status(tx, now, att.state["audit_seq"]),
            }
            health["needs_attention"] = needs_attention(health)
            if not att.roles & {ADMIN_ROLE, "auditor"}:  # figures only for those who may see the whole vault
                health = {k: health[k] for k in ("sealed", "backend", "reachable")}
            return health


def needs_attention(health: dict[str, Any]) -> list[str]:
    """What a human should look at (empty when all is well); monitoring exits non-zero on any."""
    problems = []
    if health.get("sealed"):
        problems.append("the vault is sealed")
    if health.get("reachable") is False:
        problems.append(f"the {health.get('backend', 'storage')} backend is unreachable")
    verify = health.get("last_audit_verify")
    if verify and not verify.get("ok"):
        problems.append(f"the audit chain is broken: {verify.get('problem')}")
    if health.get("rotation_overdue"):
        problems.append(f"{health['rotation_overdue']} secret(s) overdue for rotation")
    if health.get("expired"):
        problems.append(f"{health['expired']} secret(s) expired")
    for d in health.get("audit_devices") or ():
        if d["refusing"]:
            problems.append(f"the required audit device {d['name']} is {d['lag_rows']} row(s), {d['lag_seconds']:.0f} s "
                            f"behind (bound {d['max_lag_s']} s): operations are refused until it recovers")
        elif d["failing_since"] is not None:
            problems.append(f"the audit device {d['name']} is failing ({d['last_error']}); "
                            f"{d['lag_rows']} row(s) wait for it")
    limit = health.get("key_encryption_limit", ROTATE_BEFORE)
    for term in health.get("key_terms") or ():
        if term["encryptions"] >= limit:
            problems.append(f"key term {term['term']} has {term['encryptions']} encryptions: rotate the key")
    return problems
