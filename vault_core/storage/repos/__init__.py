"""The repositories: one narrow module per table family, all in one style.

Each is module-level statements plus functions ``f(tx, ...)`` that return
their results (``storage/tx.py``). They move opaque bytes and plain metadata
only: no key or plaintext reaches storage. ``tests/test_storage_contract.py``
runs every one of them on SQLite and on PostgreSQL.
"""

from . import audit, devices, integrity, jobs, keys, leases, principals, rules, secrets, sso, state, users
from . import versions

__all__ = ["audit", "devices", "integrity", "jobs", "keys", "leases", "principals", "rules", "secrets", "sso",
           "state", "users", "versions"]
