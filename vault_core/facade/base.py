"""Plumbing every operation shares: unlock, and the wiring of the runner (``service/runner.py``)."""

from __future__ import annotations

import os
import secrets as pysecrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .. import audit
from ..context import SecurityContext, make_context, process_principal, use_context
from ..crypto import Barrier, Keyring
from ..crypto.keyring import load_keyring, unwrap_key, wrap_key
from ..errors import InvalidKey, Sealed
from ..service.keys import KeyHolder, UnsealedKeys
from ..service.lease import new_holder_id
from ..service.rules import RulesCache
from ..service.runner import Caller, Runner, environment_value
from ..service.wiring import Forwarded
from ..storage import Storage, repos
from ..storage.tx import Tx
from ..types import US_PER_DAY, Clock, now_us
from ..validate import DEFAULT_MAX_VALUE_BYTES


class VaultBase:
    """Opening, unlocking, the caller's identity and the audited attempt."""

    def __init__(self, storage: Storage, *, vault_dir: Path | None = None, strict: bool = False,
                 max_value_bytes: int = DEFAULT_MAX_VALUE_BYTES, clock: Callable[[], int] = now_us,
                 process_identity: str | None = None):
        self.storage = storage
        self.vault_dir = vault_dir
        self.max_value_bytes = max_value_bytes
        self._clock = Clock(clock)
        self._holder = KeyHolder()
        self._caller_of = Caller(process_identity or process_principal(), strict)
        self._runner = Runner(storage, self._holder, RulesCache(), self._clock, self._caller_of)
        self.attempt = self._runner.attempt
        self.record_event = self._runner.record_event
        self._record = self._runner.record
        self._caller = self._caller_of.current
        self._generators: dict[str, Callable[[], Any]] = {}
        self._lease_holder = new_holder_id()  # this vault object's identity as the scheduler's lease holder

    @property
    def clock(self) -> Callable[[], int]:
        """The vault's time source (microseconds); assigning a callable swaps what every service reads.

        Reading it gives the current source function (so ``saved = vault.clock`` ... ``vault.clock = saved``
        restores it), not the shared ``Clock`` the services hold.
        """
        return self._clock.source

    @clock.setter
    def clock(self, source: Callable[[], int]) -> None:
        self._clock.source = source.source if isinstance(source, Clock) else source

    key_source = Forwarded("_holder", "source", "Where the master key came from (env, key-file, passphrase-file, ...).")
    strict = Forwarded("_caller_of", "strict", "True when every call needs a security context.")

    @property
    def process_identity(self) -> str:
        """The principal this process acts as without a security context (and the owner of a new vault)."""
        return self._caller_of.process_identity

    # -- sealing -----------------------------------------------------------------
    @property
    def sealed(self) -> bool:
        """True while no master key is loaded."""
        return self._holder.sealed

    def _unsealed(self) -> UnsealedKeys:
        return self._holder.get()

    def seal(self) -> None:
        """Forget the keys held in memory; every operation is refused until unlock. Raises nothing."""
        self._holder.forget()

    def _unlock_with(self, master: bytes) -> None:
        """Unwrap the keyring and the audit/cookie keys; create them on a new vault.

        Also finishes an interrupted master-key change (``crypto.masterkey.resolve_staged``).
        """
        from ..crypto.masterkey import key_file_path, read_key_file, resolve_staged, staged_path

        with self.storage.transaction() as tx:
            rows = repos.keys.wrapped_keys_of(tx)
            if not rows:
                self._initialise(tx, master)
                rows = repos.keys.wrapped_keys_of(tx)
        key_file = key_file_path(self.vault_dir) if self.key_source in ("key-file", "passphrase-file") else None
        try:
            other = {r["purpose"]: unwrap_key(master, r["purpose"], r["term"], r["wrapped"])
                     for r in rows if r["purpose"] != "data"}
        except InvalidKey:
            staged = staged_path(key_file) if key_file is not None else None
            if staged is None or not staged.exists():
                raise
            try:  # a change committed in the database but not yet in the key file
                master = read_key_file(staged)
            except Sealed:
                raise InvalidKey("an interrupted master-key change left master.key.new: "
                                 "unlock with the new passphrase") from None
            other = {r["purpose"]: unwrap_key(master, r["purpose"], r["term"], r["wrapped"])
                     for r in rows if r["purpose"] != "data"}
        if "audit" not in other:
            raise InvalidKey("the vault has no audit key: it was not initialised by this software")
        keyring = load_keyring(master, [r for r in rows if r["purpose"] == "data"])
        storage = self.storage
        keys = UnsealedKeys()

        def newest(known: Keyring) -> Keyring:  # key terms added by any process, under the current master key
            with storage.transaction(write=False, durable=False) as rtx:
                return load_keyring(keys.master, repos.keys.wrapped_keys_of(rtx, "data"), known)

        keys.barrier = Barrier(keyring, loader=newest)
        keys.audit_key = other["audit"]
        keys.hash_key = audit.hmac.new(other["audit"], b"vault/audit-hash/v1", "sha256").digest()
        keys.cookie_key = other.get("cookie")
        keys.master = master
        self._holder.hold(keys)
        if key_file is not None:
            resolve_staged(key_file, master)

    def _initialise(self, tx: Tx, master: bytes) -> None:
        now = self.clock()
        raw = {purpose: os.urandom(32) for purpose in ("data", "audit", "cookie")}
        for purpose, key in raw.items():
            repos.keys.put_wrapped_key(tx, purpose, 1, wrap_key(master, purpose, 1, key), now)
        if repos.state.get_state(tx) is None:
            repos.state.init_state(tx, vault_id=pysecrets.token_hex(8), created_at=now, owner=self.process_identity,
                                   rules_version=1, audit_seq=0, audit_mac=audit.GENESIS_MAC)
            # Scheduled rotation runs as system:scheduler, whose only right is this
            # visible, revocable rule (ROTATE everywhere for the rotator role),
            # recorded as the first row of the audit chain like any other grant.
            from ..rotation import ROTATOR_ROLE, SCHEDULER_PRINCIPAL

            rule_id = repos.rules.insert_rule(tx, subject_kind="role", subject=ROTATOR_ROLE, environment="*",
                                              pattern="*",
                                              levels="rotate", effect="allow", secret_id=None, created_at=now,
                                              created_by=self.process_identity, note="built-in: scheduled rotation")
            if repos.principals.get_principal(tx, SCHEDULER_PRINCIPAL) is None:
                repos.principals.insert_principal(tx, name=SCHEDULER_PRINCIPAL, kind="service",
                                                  display_name="rotation scheduler",
                                                  roles=f'["{ROTATOR_ROLE}"]', created_at=now, updated_at=now)
            row = audit.make_row(raw["audit"], seq=1, prev_mac=audit.GENESIS_MAC, ts=now,
                                 principal=self.process_identity, roles="", operation="rule_add",
                                 outcome="allowed", reason=f"rule {rule_id}: allow rotate to role {ROTATOR_ROLE} "
                                 f"on */* (built-in: scheduled rotation as {SCHEDULER_PRINCIPAL})")
            repos.audit.append_audit(tx, row, now // US_PER_DAY)
        if repos.principals.get_principal(tx, self.process_identity) is None:
            repos.principals.insert_principal(tx, name=self.process_identity, kind="service",
                                              display_name="vault owner",
                                              roles='["admin"]', created_at=now, updated_at=now)

    # -- the caller ------------------------------------------------------------------
    @contextmanager
    def security_context(self, user_id: str, ip_address: str | None = None, user_agent: str | None = None,
                         roles: tuple[str, ...] | list[str] | None = (), session_id: str | None = None,
                         forwarded_for: str | None = None, forwarded_trusted: bool = False
                         ) -> Iterator[SecurityContext]:
        """Act as ``user_id`` inside the block (per thread / per Streamlit session)."""
        ctx = make_context(user_id, ip_address, user_agent, roles, session_id, forwarded_for, forwarded_trusted)
        with use_context(ctx) as active:
            yield active

    # -- helpers ------------------------------------------------------------------------------
    _environment = staticmethod(environment_value)
