"""The vault facade, and how to open one.

    vault = setup_vault("production_vault")      # a local vault, created on first use
    with vault.security_context("admin_user", "192.168.1.100"):
        secret_id = vault.store_secret(name=..., value=..., ...)
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

from .crypto import generate_master_key, load_master_key, write_key_file
from .crypto.masterkey import KEY_FILE_NAME
from .errors import InvalidKey, Sealed
from .facade.app_ops import AppOps
from .facade.rotation_ops import RotationOps
from .service.access import AccessService
from .service.audit import AuditService
from .service.audit_devices import AuditDevicesService
from .service.backup import BackupService
from .service.health import HealthService
from .service.rekey import RekeyService
from .service.users import UsersService
from .service.wiring import Forwarded, delegate
from .storage import Storage, repos, sqlite_url
from .types import Environment

DB_FILE_NAME = "vault.db"
DEFAULT_DIR = ".vault"


class Vault(RotationOps, AppOps):
    """An open vault. Thread-safe; open one per process and share it.

    It wires the services; the public API is theirs. ``vault.audit`` (``AuditService``) and
    ``vault.health`` (``HealthService``) and ``vault.backups`` (``BackupService``) and
    ``vault.rekey`` (``RekeyService``), ``vault.access`` (``AccessService``) and ``vault.users``
    (``UsersService``) are reachable as attributes too.
    """

    def __init__(self, storage: Storage, **options: Any):
        super().__init__(storage, **options)
        self.audit = AuditService(self._runner, storage, self._holder, self._clock)
        self.health = HealthService(self._runner, storage, self._clock, self.audit)
        self.backups = BackupService(self._runner, storage, self._holder, self._runner.rules, self._clock,
                                     self.vault_dir, self._unlock_with)
        self.rekey = RekeyService(self._runner, storage, self._holder, self._clock, self.vault_dir)
        self.access = AccessService(self._runner, self._clock)
        self.users = UsersService(self._runner, storage, self._holder, self._clock, self.access)
        self.audit_devices = AuditDevicesService(self._runner, storage, self._clock, self._lease_holder)

    get_audit_log = delegate("audit", AuditService.get_audit_log)
    export_audit = delegate("audit", AuditService.export_audit)
    verify_audit_log = delegate("audit", AuditService.verify_audit_log)
    audit_checkpoint = delegate("audit", AuditService.audit_checkpoint)
    audit_hash = delegate("audit", AuditService.audit_hash)
    find_value = delegate("audit", AuditService.find_value)
    audit_counts = delegate("audit", AuditService.audit_counts)
    get_vault_health = delegate("health", HealthService.get_vault_health)
    backup_folder = delegate("backups", BackupService.backup_folder)
    backup = delegate("backups", BackupService.backup)
    list_backups = delegate("backups", BackupService.list_backups)
    restore_backup = delegate("backups", BackupService.restore_backup)
    export_master_key = delegate("backups", BackupService.export_master_key)
    key_terms = delegate("rekey", RekeyService.key_terms)
    rotate_key_term = delegate("rekey", RekeyService.rotate_key_term)
    ensure_key_term_fresh = delegate("rekey", RekeyService.ensure_key_term_fresh)
    reencrypt = delegate("rekey", RekeyService.reencrypt)
    rekey_jobs = delegate("rekey", RekeyService.rekey_jobs)
    change_master_key = delegate("rekey", RekeyService.change_master_key)

    add_principal = delegate("access", AccessService.add_principal)
    set_roles = delegate("access", AccessService.set_roles)
    get_principal = delegate("access", AccessService.get_principal)
    list_principals = delegate("access", AccessService.list_principals)
    grant = delegate("access", AccessService.grant)
    revoke = delegate("access", AccessService.revoke)
    list_rules = delegate("access", AccessService.list_rules)
    effective_permissions = delegate("access", AccessService.effective_permissions)
    who_can = delegate("access", AccessService.who_can)
    console_cookie_secret = delegate("users", UsersService.console_cookie_secret)
    verify_login = delegate("users", UsersService.verify_login)
    check_session = delegate("users", UsersService.check_session)
    logout = delegate("users", UsersService.logout)
    add_user = delegate("users", UsersService.add_user)
    set_password = delegate("users", UsersService.set_password)
    lock_user = delegate("users", UsersService.lock_user)
    unlock_user = delegate("users", UsersService.unlock_user)
    end_sessions = delegate("users", UsersService.end_sessions)
    list_sessions = delegate("users", UsersService.list_sessions)

    # audit devices (issue 23): streaming the audit log; see vault_core/service/audit_devices.py
    add_audit_device = delegate("audit_devices", AuditDevicesService.add_audit_device)
    list_audit_devices = delegate("audit_devices", AuditDevicesService.list_audit_devices)
    remove_audit_device = delegate("audit_devices", AuditDevicesService.remove_audit_device)
    test_audit_device = delegate("audit_devices", AuditDevicesService.test_audit_device)
    deliver_audit = delegate("audit_devices", AuditDevicesService.deliver_audit)
    verify_audit_file = delegate("audit", AuditService.verify_audit_file)

    bcrypt_rounds = Forwarded("users", "bcrypt_rounds", "The bcrypt cost of new password hashes (tests lower it).")
    key_term_rotate_after = Forwarded("rekey", "rotate_after",
                                      "How many values a data key term seals before ensure_key_term_fresh adds one.")

    def status(self) -> dict[str, Any]:
        """Sealed or not, backend, key source and terms (no secrets, no access needed). Raises nothing."""
        return self.health.status(sealed=self.sealed, strict=self.strict, key_source=self.key_source)

    def unlock(self, master_key: bytes | None = None, passphrase: str | None = None, *,
               create: bool = False) -> "Vault":
        """Load the master key and unwrap the keyring. Wrong key or passphrase → ``InvalidKey``."""
        found = load_master_key(self.vault_dir or ".", key=master_key, passphrase=passphrase)
        if found is None:
            if not create:
                raise Sealed(f"no master key: set VAULT_MASTER_KEY or create {KEY_FILE_NAME} with "
                             "`vault-console init`")
            if self.vault_dir is None:
                raise InvalidKey("no vault folder to create a master key in")
            with self.storage.transaction(write=False) as tx:
                if repos.keys.wrapped_keys_of(tx):
                    raise Sealed("this vault exists but its master key file is missing")
            master = generate_master_key()
            write_key_file(self.vault_dir / KEY_FILE_NAME, master, passphrase=passphrase)
            self.key_source = "key-file" if passphrase is None else "passphrase-file"
        else:
            master, source = found
            self.key_source = source.kind
        self._unlock_with(master)
        return self

    def __repr__(self) -> str:
        return f"Vault(backend={self.storage.backend!r}, sealed={self.sealed}, strict={self.strict})"


def _private_dir(path: Path) -> Path:
    """Create the vault folder 0700 (and tighten it if it exists and is ours)."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if path.stat().st_mode & 0o077:
        os.chmod(path, 0o700)
    return path


def open_vault(path: str | os.PathLike | None = None, *, database_url: str | None = None,
               master_key: bytes | None = None, passphrase: str | None = None, strict: bool = False,
               create: bool = True, unlock: bool = True, principal: str | None = None,
               max_value_bytes: int | None = None) -> Vault:
    """Open (and by default create and unlock) a vault.

    The folder comes from ``path``, ``VAULT_PATH`` or ``./.vault``; the database
    from ``database_url``, ``VAULT_DATABASE_URL`` or ``<folder>/vault.db``.
    """
    vault_dir = Path(path or os.environ.get("VAULT_PATH") or DEFAULT_DIR).absolute()
    url = database_url or os.environ.get("VAULT_DATABASE_URL")
    if create:
        _private_dir(vault_dir)
    elif not vault_dir.exists() and not url:
        raise Sealed(f"no vault at {vault_dir}: create one with `vault-console init`")
    storage = Storage(url or sqlite_url(vault_dir / DB_FILE_NAME))
    storage.migrate()
    kwargs: dict[str, Any] = {}
    if max_value_bytes is not None:
        kwargs["max_value_bytes"] = max_value_bytes
    vault = Vault(storage, vault_dir=vault_dir, strict=strict, process_identity=principal, **kwargs)
    if unlock:
        vault.unlock(master_key, passphrase, create=create)
    return vault


_default: Vault | None = None
_default_lock = threading.Lock()


def setup_vault(path: str | os.PathLike | None = None, **options: Any) -> Vault:
    """Open or create a local vault at ``path`` and make it the process default (``get_vault``).

    The process identity (``VAULT_PRINCIPAL`` or ``local:<user>``) owns a new
    vault with the admin role.
    """
    global _default
    vault = open_vault(path, **options)
    with _default_lock:
        _default = vault
    return vault


def get_vault() -> Vault:
    """The process default vault: the last ``setup_vault``, else opened from ``VAULT_PATH``."""
    global _default
    with _default_lock:
        if _default is None:
            _default = open_vault()
        return _default


class EnvironmentSecrets:
    """Read secrets of one environment with the seed's naming conventions."""

    def __init__(self, vault: Vault, environment: Environment | str):
        self.vault = vault
        self.environment = Environment.parse(environment)

    def get(self, name: str, default: Any = None) -> Any:
        """The value of ``name`` in this environment, or ``default`` when missing."""
        value = self.vault.get_secret(name=name, environment=self.environment)
        return default if value is None else value

    def get_database_url(self) -> str | None:
        """The ``database_url`` secret of this environment."""
        return self.get("database_url")

    def get_api_key(self, service: str) -> str | None:
        """The ``api_key_<service>`` secret of this environment."""
        return self.get(f"api_key_{service}")

    def __repr__(self) -> str:
        return f"EnvironmentSecrets(environment={self.environment.value!r})"
