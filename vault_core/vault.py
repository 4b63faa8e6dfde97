"""The Vault (the services, wired, and their public API), and how to open one.

    vault = setup_vault("production_vault")      # a local vault, created on first use
    with vault.security_context("admin_user", "192.168.1.100"):
        secret_id = vault.store_secret(name=..., value=..., ...)
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .context import SecurityContext, make_context, process_principal, use_context
from .crypto import generate_master_key, load_master_key, write_key_file
from .crypto.masterkey import KEY_FILE_NAME, key_file_path
from .errors import InvalidKey, Sealed
from .service.access import AccessService
from .service.audit import AuditService
from .service.audit_devices import AuditDevicesService
from .service.backup import BackupService
from .service.creation import check_rows, initialise
from .service.generators import GeneratorRegistry
from .service.health import HealthService
from .service.keys import KeyHolder, unseal
from .service.lease import new_holder_id
from .service.machines import MachinesService
from .service.rekey import RekeyService
from .service.rotation import RotationService
from .service.rules import RulesCache
from .service.runner import Caller, Runner
from .service.secrets import SecretsService
from .service.two_factor import TwoFactorService
from .service.sso import SsoService
from .service.users import UsersService
from .service.versions import VersionWriter
from .service.wiring import Forwarded, delegate
from .storage import Storage, repos, sqlite_url
from .types import Clock, Environment, now_us
from .validate import DEFAULT_MAX_VALUE_BYTES

DB_FILE_NAME = "vault.db"
DEFAULT_DIR = ".vault"


class Vault:
    """An open vault. Thread-safe; open one per process and share it.

    It wires the services, each given what it uses; the public API is theirs, by one-line
    delegation. The services are reachable as attributes too: ``vault.secrets``
    (``SecretsService``), ``vault.rotation`` (``RotationService``), ``vault.generators``
    (``GeneratorRegistry``), ``vault.audit`` (``AuditService``), ``vault.health``
    (``HealthService``), ``vault.backups`` (``BackupService``), ``vault.rekey``
    (``RekeyService``), ``vault.access`` (``AccessService``),
    ``vault.users`` (``UsersService``), ``vault.two_factor`` (``TwoFactorService``), ``vault.sso``
    (``SsoService``) and ``vault.machines`` (``MachinesService``).
    """

    def __init__(self, storage: Storage, *, vault_dir: Path | None = None, strict: bool = False,
                 max_value_bytes: int = DEFAULT_MAX_VALUE_BYTES, clock: Callable[[], int] | Clock = now_us,
                 process_identity: str | None = None):
        self.storage = storage
        self.vault_dir = vault_dir
        self._clock = clock if isinstance(clock, Clock) else Clock(clock)
        self._holder = KeyHolder()
        self._caller_of = Caller(process_identity or process_principal(), strict)
        self._runner = Runner(storage, self._holder, RulesCache(), self._clock, self._caller_of)
        self._versions = VersionWriter(self._holder, self._clock, max_value_bytes)
        self.generators = GeneratorRegistry()
        self._lease_holder = new_holder_id()  # this process, in the scheduler's and the audit deliverer's leases
        self.audit = AuditService(self._runner, storage, self._holder, self._clock)
        self.health = HealthService(self._runner, storage, self._clock, self.audit)
        self.backups = BackupService(self._runner, storage, self._holder, self._runner.rules, self._clock,
                                     self.vault_dir, self._unlock_with)
        self.rekey = RekeyService(self._runner, storage, self._holder, self._clock, self.vault_dir)
        self.access = AccessService(self._runner, self._clock)
        self.users = UsersService(self._runner, storage, self._holder, self._clock, self.access)
        self.secrets = SecretsService(self._runner, self._versions, self._clock)
        self.rotation = RotationService(self._runner, storage, self._versions, self.generators, self._clock,
                                        self.rekey.ensure_key_term_fresh, self._lease_holder)
        self.two_factor = self.users.two_factor
        self.sso = SsoService(self._runner, storage, self._holder, self._clock, self.users)
        self.machines = MachinesService(self._runner, storage, self._holder, self._clock)
        self.audit_devices = AuditDevicesService(self._runner, storage, self._clock, self._lease_holder)

    store_secret = delegate("secrets", SecretsService.store_secret)
    get_secret = delegate("secrets", SecretsService.get_secret)
    reveal_secret = delegate("secrets", SecretsService.reveal_secret)
    update_secret = delegate("secrets", SecretsService.update_secret)
    delete_secret = delegate("secrets", SecretsService.delete_secret)
    restore_secret = delegate("secrets", SecretsService.restore_secret)
    purge_secret = delegate("secrets", SecretsService.purge_secret)
    list_secrets = delegate("secrets", SecretsService.list_secrets)
    get_metadata = delegate("secrets", SecretsService.get_metadata)
    list_versions = delegate("secrets", SecretsService.list_versions)
    secret_versions = delegate("secrets", SecretsService.secret_versions)
    listing = delegate("secrets", SecretsService.listing)
    read_listed = delegate("secrets", SecretsService.read_listed)
    rotate_secret = delegate("rotation", RotationService.rotate_secret)
    revert_secret = delegate("rotation", RotationService.revert_secret)
    rotate_due = delegate("rotation", RotationService.rotate_due)
    rotation_schedule = delegate("rotation", RotationService.rotation_schedule)
    reminders = delegate("rotation", RotationService.reminders)
    rotation_history = delegate("rotation", RotationService.rotation_history)
    record_event = delegate("_runner", Runner.record_event)
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
    make_sso_only = delegate("users", UsersService.make_sso_only)
    list_sessions = delegate("users", UsersService.list_sessions)
    complete_login = delegate("users", UsersService.complete_login)
    reset_two_factor = delegate("users", UsersService.reset_two_factor)
    disable_two_factor = delegate("users", UsersService.disable_two_factor)
    sso_login = delegate("sso", SsoService.sso_login)
    set_sso_provider = delegate("sso", SsoService.set_provider)
    remove_sso_provider = delegate("sso", SsoService.remove_provider)
    list_sso_providers = delegate("sso", SsoService.list_providers)
    map_sso_group = delegate("sso", SsoService.map_group)
    unmap_sso_group = delegate("sso", SsoService.unmap_group)
    sso_group_mappings = delegate("sso", SsoService.group_mappings)
    link_sso_identity = delegate("sso", SsoService.link_identity)
    unlink_sso_identity = delegate("sso", SsoService.unlink_identity)
    enrol_two_factor = delegate("two_factor", TwoFactorService.enrol_two_factor)
    confirm_two_factor = delegate("two_factor", TwoFactorService.confirm_two_factor)
    two_factor_status = delegate("two_factor", TwoFactorService.two_factor_status)
    require_two_factor = delegate("two_factor", TwoFactorService.require_two_factor)
    two_factor_policy = delegate("two_factor", TwoFactorService.two_factor_policy)

    max_value_bytes = Forwarded("_versions", "max_value_bytes", "The largest value accepted, in bytes.")
    rotation_retry_s = Forwarded("rotation", "rotation_retry_s",
                                 "Seconds before a claimed-but-failed scheduled rotation is tried again.")
    pending_stale_s = Forwarded("rotation", "pending_stale_s",
                                "Seconds after which a PENDING version counts as left by a crashed rotation.")
    scheduler_lease_s = Forwarded("rotation", "scheduler_lease_s",
                                  "How long the scheduler's lease lasts unless renewed (seconds).")
    key_source = Forwarded("_holder", "source", "Where the master key came from (env, key-file, passphrase-file, ...).")
    strict = Forwarded("_caller_of", "strict", "True when every call needs a security context.")

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

    @property
    def clock(self) -> Callable[[], int]:
        """The vault's time source (microseconds); assigning a callable swaps what every service reads.

        Reading it gives the current source function (so ``saved = vault.clock`` ... ``vault.clock = saved``
        restores it), not the shared ``Clock`` the services hold. Raises nothing.
        """
        return self._clock.source

    @clock.setter
    def clock(self, source: Callable[[], int]) -> None:
        self._clock.source = source.source if isinstance(source, Clock) else source

    @property
    def process_identity(self) -> str:
        """The principal this process acts as without a security context (and the owner of a new vault)."""
        return self._caller_of.process_identity

    @property
    def sealed(self) -> bool:
        """True while no master key is loaded."""
        return self._holder.sealed

    def register_generator(self, name: str, generator: Callable[[], Any], *,
                           apply: Callable[[Any], Any] | None = None,
                           test: Callable[[Any], Any] | None = None) -> None:
        """Make a generator (and optional ``apply``/``test`` hooks) findable by name, for scheduled rotations.

        The name is stored with each secret rotated by it (``secrets.generator``);
        every process that runs the scheduler must register the same names.
        Raises ``ValidationError`` (a bad name, a generator or hook that is not callable).
        """
        self.generators.register(name, generator, apply=apply, test=test)

    def generator_names(self) -> list[str]:
        """Built-in and registered generator names (for the console's rotation form). Raises nothing."""
        return self.generators.names()

    def rotation_hooks(self, generator: str) -> dict[str, bool]:
        """Whether this process has ``apply`` / ``test`` hooks registered for a generator name. Raises nothing."""
        apply, test = self.generators.hooks(generator)
        return {"apply": apply is not None, "test": test is not None}

    @contextmanager
    def security_context(self, user_id: str, ip_address: str | None = None, user_agent: str | None = None,
                         roles: tuple[str, ...] | list[str] | None = (), session_id: str | None = None,
                         forwarded_for: str | None = None, forwarded_trusted: bool = False
                         ) -> Iterator[SecurityContext]:
        """Act as ``user_id`` inside the block (per thread / per Streamlit session).

        Raises ``ValidationError`` (a bad user id, address or role).
        """
        ctx = make_context(user_id, ip_address, user_agent, roles, session_id, forwarded_for, forwarded_trusted)
        with use_context(ctx) as active:
            yield active

    def seal(self) -> None:
        """Forget the keys held in memory; every operation is refused until unlock. Raises nothing."""
        self._holder.forget()
        self.storage.seal = None

    def status(self) -> dict[str, Any]:
        """Sealed or not, backend, key source and terms (no secrets, no access needed).

        Raises ``AccessDenied`` only on a strict vault called without a security context.
        """
        return self.health.status(sealed=self.sealed, strict=self.strict, key_source=self.key_source)

    def unlock(self, master_key: bytes | None = None, passphrase: str | None = None, *,
               create: bool = False) -> Vault:
        """Load the master key and unwrap the keyring; with ``create``, make a key file for a new vault.

        Raises ``InvalidKey`` (wrong key or passphrase), ``Sealed`` (no master key found), ``StorageError``.
        """
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

    def _unlock_with(self, master: bytes) -> None:
        """Unwrap the keys with ``master`` (creating them on a new vault) and hold them."""
        self.storage.seal = None  # the key rows are read unchecked, then checked with the row key they yield
        with self.storage.transaction() as tx:
            if not repos.keys.wrapped_keys_of(tx):
                initialise(tx, master, self.process_identity, self._clock())
        key_file = key_file_path(self.vault_dir) if self.key_source in ("key-file", "passphrase-file") else None
        keys = unseal(self.storage, master, key_file)
        check_rows(self.storage, keys.audit_key, self.process_identity, self._clock())
        self._holder.hold(keys)

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
               max_value_bytes: int | None = None, clock: Callable[[], int] | Clock | None = None) -> Vault:
    """Open (and by default create and unlock) a vault.

    The folder comes from ``path``, ``VAULT_PATH`` or ``./.vault``; the database
    from ``database_url``, ``VAULT_DATABASE_URL`` or ``<folder>/vault.db``. ``clock``
    (microseconds since the epoch; a ``types.Clock`` stays shared with the caller, who may
    move its ``source``) is the time every service reads; tests move time with it.
    Raises ``Sealed`` (no vault there and ``create=False``, or no master key), ``InvalidKey``,
    ``StorageError``.
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
    if clock is not None:
        kwargs["clock"] = clock
    vault = Vault(storage, vault_dir=vault_dir, strict=strict, process_identity=principal, **kwargs)
    if unlock:
        vault.unlock(master_key, passphrase, create=create)
    return vault


_default: Vault | None = None
_default_lock = threading.Lock()


def setup_vault(path: str | os.PathLike | None = None, **options: Any) -> Vault:
    """Open or create a local vault at ``path`` and make it the process default (``get_vault``).

    The process identity (``VAULT_PRINCIPAL`` or ``local:<user>``) owns a new
    vault with the admin role. Takes ``open_vault``'s options (``clock=`` too). Raises what ``open_vault`` raises.
    """
    global _default
    vault = open_vault(path, **options)
    with _default_lock:
        _default = vault
    return vault


def get_vault() -> Vault:
    """The process default vault: the last ``setup_vault``, else opened from ``VAULT_PATH``.

    Raises what ``open_vault`` raises.
    """
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
        """The value of ``name`` in this environment, or ``default`` when missing.

        Raises what ``Vault.get_secret`` raises (``AccessDenied``, ``Sealed``, ...).
        """
        value = self.vault.get_secret(name=name, environment=self.environment)
        return default if value is None else value

    def get_database_url(self) -> str | None:
        """The ``database_url`` secret of this environment. Raises as ``get``."""
        return self.get("database_url")

    def get_api_key(self, service: str) -> str | None:
        """The ``api_key_<service>`` secret of this environment. Raises as ``get``."""
        return self.get(f"api_key_{service}")

    def __repr__(self) -> str:
        return f"EnvironmentSecrets(environment={self.environment.value!r})"
