"""The one vault of a console process, opened by the st.App lifespan (with scheduler and metrics).

Routes and pages get it from ``console_vault()``. Nothing here is a Streamlit
cache: no message from a browser (``clear_cache`` included) can open a second
vault or start a second scheduler. Without a lifespan (AppTest, a script run
by hand) the first call opens a strict vault without background work, one per
``VAULT_PATH`` / ``VAULT_DATABASE_URL``.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from typing import Any

from ..vault import Vault, open_vault

_lock = threading.Lock()
_vaults: dict[tuple[str, str], Vault] = {}
_served: Services | None = None


@dataclass
class Services:
    """What the lifespan started: the vault, the scheduler thread and metrics (each optional)."""

    vault: Vault
    scheduler: Any = None
    metrics: Any = None
    delivery: Any = None  # the audit devices' delivery thread (service/audit_devices.py)
    extra: list[Any] = field(default_factory=list)


def _where() -> tuple[str, str]:
    return os.environ.get("VAULT_PATH", ""), os.environ.get("VAULT_DATABASE_URL", "")


def _open() -> Vault:
    path, url = _where()
    return open_vault(path or None, database_url=url or None, strict=True, create=False)


def console_vault() -> Vault:
    """The process's strict vault; raises ``VaultError`` (e.g. ``Sealed``) if it cannot be opened."""
    if _served is not None:
        return _served.vault
    key = _where()
    with _lock:
        if key not in _vaults:
            _vaults[key] = _open()
        return _vaults[key]


def scheduler_wanted(environ=os.environ) -> bool:
    return environ.get("VAULT_SCHEDULER", "off").lower() in ("1", "on", "true", "yes")


def start_services() -> Services:
    """Open the vault and start the scheduler and metrics once (the st.App lifespan calls this).

    Raises ``VaultError`` when the vault cannot be opened, ``RuntimeError`` if already started.
    """
    global _served
    from ..metrics import VaultMetrics, start_from_env

    with _lock:
        if _served is not None:
            raise RuntimeError("the console's services are already running in this process")
        vault = _open()
        services = Services(vault)
        if scheduler_wanted():
            from ..scheduler import start_scheduler

            services.scheduler = start_scheduler(vault, float(os.environ.get("VAULT_SCHEDULER_INTERVAL", "60")))
        services.metrics = start_from_env(vault) or VaultMetrics(vault)  # the /metrics route renders it
        if os.environ.get("VAULT_AUDIT_DELIVERY", "on").lower() not in ("0", "off", "false", "no"):
            from ..service.audit_devices import start_audit_delivery

            services.delivery = start_audit_delivery(vault)
        _served = services
        return services


def stop_services() -> None:
    """Stop what ``start_services`` started and close the vault's connections."""
    global _served
    with _lock:
        services, _served = _served, None
    if services is None:
        return
    if services.scheduler is not None:
        services.scheduler.stop()
    if services.metrics is not None:
        services.metrics.close()
    if services.delivery is not None:
        from ..service.audit_devices import stop_audit_delivery

        stop_audit_delivery(services.vault)
    services.vault.storage.dispose()


def services() -> Services | None:
    """What the lifespan started, or None outside a served console."""
    return _served
