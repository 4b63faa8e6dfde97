"""What a new vault starts with (its wrapped keys, its state, the built-in rotator rule and its owner), and the
row key handed to storage at every unlock (``check_rows``)."""

from __future__ import annotations

import os
import secrets as pysecrets

from .. import audit
from ..crypto.keyring import wrap_key
from ..crypto.rows import RowSeal
from ..rotation import ROTATOR_ROLE, SCHEDULER_PRINCIPAL
from ..storage import Storage, repos
from ..storage.tx import Tx
from ..types import US_PER_DAY


def initialise(tx: Tx, master: bytes, owner: str, now: int) -> None:
    """Create the data, audit and cookie keys (wrapped by ``master``), the state and the owner, in ``tx``.

    Scheduled rotation runs as ``system:scheduler``, whose only right is a visible, revocable
    rule (ROTATE everywhere for the rotator role), recorded as the first row of the audit chain
    like any other grant. Raises ``StorageError``.
    """
    raw = {purpose: os.urandom(32) for purpose in ("data", "audit", "cookie")}
    tx.seal = RowSeal(raw["audit"])  # every protected row written below carries its MAC from the start
    new = repos.state.get_state(tx) is None
    if new:
        repos.state.init_state(tx, vault_id=pysecrets.token_hex(8), created_at=now, owner=owner,
                               rules_version=1, audit_seq=0, audit_mac=audit.GENESIS_MAC)
    for purpose, key in raw.items():
        repos.keys.put_wrapped_key(tx, purpose, 1, wrap_key(master, purpose, 1, key), now)
    if new:
        rule_id = repos.rules.insert_rule(tx, subject_kind="role", subject=ROTATOR_ROLE, environment="*", pattern="*",
                                          levels="rotate", effect="allow", secret_id=None, created_at=now,
                                          created_by=owner, note="built-in: scheduled rotation")
        if repos.principals.get_principal(tx, SCHEDULER_PRINCIPAL) is None:
            repos.principals.insert_principal(tx, name=SCHEDULER_PRINCIPAL, kind="service",
                                              display_name="rotation scheduler",
                                              roles=f'["{ROTATOR_ROLE}"]', created_at=now, updated_at=now)
        row = audit.make_row(raw["audit"], seq=1, prev_mac=audit.GENESIS_MAC, ts=now, principal=owner, roles="",
                             operation="rule_add", outcome="allowed",
                             reason=f"rule {rule_id}: allow rotate to role {ROTATOR_ROLE} "
                                    f"on */* (built-in: scheduled rotation as {SCHEDULER_PRINCIPAL})")
        repos.audit.append_audit(tx, row, now // US_PER_DAY)
    if repos.principals.get_principal(tx, owner) is None:
        repos.principals.insert_principal(tx, name=owner, kind="service", display_name="vault owner",
                                          roles='["admin"]', created_at=now, updated_at=now)


def check_rows(storage: Storage, audit_key: bytes, owner: str, now: int) -> None:
    """Check the key-term records (read before the row key existed) and hand the row key to ``storage``.

    A vault this process just upgraded to row MACs gets them here, once, audited as ``integrity_init``;
    anywhere else a state row without its MAC is refused like an edited one. Raises ``IntegrityError``.
    """
    storage.seal = RowSeal(audit_key)
    try:
        with storage.transaction() as tx:
            tables = repos.integrity.seal_upgraded(tx, storage.upgraded_from)
            if tables:
                state = repos.state.get_state(tx)
                row = audit.make_row(audit_key, seq=state["audit_seq"] + 1, prev_mac=state["audit_mac"], ts=now,
                                     principal=owner, roles="", operation="integrity_init", outcome="allowed",
                                     reason=f"row MACs and table digests written after the upgrade from schema "
                                            f"{storage.upgraded_from}: {', '.join(tables)}")
                repos.audit.append_audit(tx, row, now // US_PER_DAY)
            repos.state.get_state(tx)
            repos.keys.check_keys(tx)
    except BaseException:
        storage.seal = None
        raise
