"""Optional Prometheus metrics: operations by kind and outcome, latency, health gauges.

The facade calls ``observe`` at the end of every attempt. Nothing is counted
until a ``VaultMetrics`` registers a hook, so a vault without metrics pays one
empty-list check per operation. Labels carry operation names, outcomes,
environments and types only: never a secret name (unbounded cardinality) and
never a value.

    metrics = VaultMetrics(vault)
    port = metrics.start(9108)          # GET http://127.0.0.1:9108/metrics
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from .errors import AccessDenied, Sealed, VaultError

Hook = Callable[[str, str, float], None]
_HOOKS: list[Hook] = []
_HOOKS_LOCK = threading.Lock()
HEALTH_IDENTITY = "system:metrics"  # who reads health for a strict vault
HEALTH_ROLES = ("auditor",)  # the figures (counts, never names or values) are shown to auditors
LATENCY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)


def add_hook(hook: Hook) -> None:
    """Call ``hook(operation, outcome, seconds)`` after every vault operation."""
    with _HOOKS_LOCK:
        _HOOKS.append(hook)


def remove_hook(hook: Hook) -> None:
    with _HOOKS_LOCK:
        if hook in _HOOKS:
            _HOOKS.remove(hook)


def outcome_of(exc: BaseException | None) -> str:
    """The audit vocabulary: allowed, denied or failed."""
    if exc is None:
        return "allowed"
    return "denied" if isinstance(exc, AccessDenied) else "failed"


def observe(operation: str, exc: BaseException | None, seconds: float) -> None:
    """Called by ``VaultBase.attempt`` when an attempt ends (hot path: cheap when unused)."""
    if not _HOOKS:
        return
    outcome = outcome_of(exc)
    for hook in tuple(_HOOKS):
        try:
            hook(operation, outcome, seconds)
        except Exception:  # metrics must never break an operation
            pass


def read_health(vault: Any) -> dict[str, Any]:
    """``get_vault_health()`` as the built-in identity ``system:metrics`` when the vault is strict.

    A strict vault (the console's) answers no call without a caller, and gives the
    figures only to admins and auditors; this in-process identity claims the
    auditor role for that one read (in-process code is trusted: see the threat model).
    Raises what ``get_vault_health`` raises (``Sealed``, ``StorageError``...).
    """
    if not getattr(vault, "strict", False):
        return vault.get_vault_health()
    with vault.security_context(HEALTH_IDENTITY, roles=HEALTH_ROLES):
        return vault.get_vault_health()


class _HealthCollector:
    """Gauges read from ``get_vault_health`` at scrape time (cached for ``ttl`` seconds)."""

    def __init__(self, vault: Any, ttl: float):
        self.vault, self.ttl = vault, ttl
        self._cached: tuple[float, dict[str, Any] | None] = (0.0, None)
        self._lock = threading.Lock()

    def _health(self) -> dict[str, Any] | None:
        with self._lock:
            at, health = self._cached
            if health is None or time.monotonic() - at >= self.ttl:
                try:
                    health = read_health(self.vault)
                except Sealed:
                    health = {"sealed": True, "reachable": True}
                except VaultError:
                    health = {"sealed": self.vault.sealed, "reachable": False}
                self._cached = (time.monotonic(), health)
            return health

    def describe(self) -> list:
        return []  # gauges are dynamic; skip the registration-time collect

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        h = self._health() or {}
        yield GaugeMetricFamily("vault_up", "1 when the storage backend answered", value=int(bool(h.get("reachable"))))
        yield GaugeMetricFamily("vault_sealed", "1 when the vault holds no key", value=int(bool(h.get("sealed"))))
        g = GaugeMetricFamily("vault_secrets", "Live secrets by environment", labels=["environment"])
        for env, n in sorted((h.get("by_environment") or {}).items()):
            g.add_metric([env], n)
        yield g
        g = GaugeMetricFamily("vault_secrets_by_type", "Live secrets by type", labels=["secret_type"])
        for kind, n in sorted((h.get("by_type") or {}).items()):
            g.add_metric([kind], n)
        yield g
        for key, doc in (("rotation_overdue", "Secrets more than a day past their rotation date"),
                         ("rotation_due", "Secrets due for rotation"),
                         ("expired", "Secrets past their expiry"),
                         ("expiring_soon", "Secrets expiring within 30 days"),
                         ("failed_logins_24h", "Failed console logins in the last 24 hours"),
                         ("audit_rows", "Rows in the audit chain")):
            if key in h:
                yield GaugeMetricFamily(f"vault_{key}", doc, value=h[key])
        g = GaugeMetricFamily("vault_key_term_encryptions", "Encryptions under each data key term", labels=["term"])
        for term in h.get("key_terms") or ():
            g.add_metric([str(term["term"])], term["encryptions"])
        yield g
        devices = h.get("audit_devices") or ()
        for key, doc in (("lag_rows", "Audit rows each audit device has not accepted yet"),
                         ("lag_seconds", "Age of the oldest audit row each device has not accepted (0: caught up)")):
            g = GaugeMetricFamily(f"vault_audit_device_{key}", doc, labels=["device", "kind"])
            for d in devices:
                g.add_metric([d["name"], d["kind"]], d[key])
            yield g
        g = GaugeMetricFamily("vault_audit_device_refusing", "1 while a required device makes the vault refuse "
                              "operations", labels=["device"])
        for d in devices:
            g.add_metric([d["name"]], int(d["refusing"]))
        yield g


class VaultMetrics:
    """Counters and histograms fed by the facade hook, plus health gauges, in a private registry."""

    def __init__(self, vault: Any, *, health_ttl: float = 5.0):
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.registry = CollectorRegistry(auto_describe=True)
        self.operations = Counter("vault_operations", "Vault operations by kind and outcome",
                                  ["operation", "outcome"], registry=self.registry)
        self.latency = Histogram("vault_operation_duration_seconds", "Latency of vault operations",
                                 ["operation"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.registry.register(_HealthCollector(vault, health_ttl))
        self._server = None
        add_hook(self._record)

    def _record(self, operation: str, outcome: str, seconds: float) -> None:
        self.operations.labels(operation, outcome).inc()
        self.latency.labels(operation).observe(seconds)

    def render(self) -> bytes:
        """The text exposition format (what a scrape returns)."""
        from prometheus_client import generate_latest

        return generate_latest(self.registry)

    def start(self, port: int = 0, addr: str = "127.0.0.1") -> int:
        """Serve ``/metrics`` from a daemon thread; returns the bound port (0 = any free port)."""
        from prometheus_client import start_http_server

        self._server, _thread = start_http_server(port, addr=addr, registry=self.registry)
        return int(self._server.server_port)

    def close(self) -> None:
        remove_hook(self._record)
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


def start_from_env(vault: Any, environ=os.environ) -> VaultMetrics | None:
    """Start metrics on ``VAULT_METRICS_PORT`` (address ``VAULT_METRICS_ADDR``, default 127.0.0.1) if set."""
    port = environ.get("VAULT_METRICS_PORT")
    if not port:
        return None
    metrics = VaultMetrics(vault)
    metrics.start(int(port), environ.get("VAULT_METRICS_ADDR", "127.0.0.1"))
    return metrics
