"""Tables of the vault (SQLAlchemy Core). Storage holds ciphertext only.

Times are integers: microseconds since the Unix epoch, UTC. They index and
compare the same way on SQLite and PostgreSQL.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)

metadata = MetaData()

# One row: the vault's identity, the rules version and the audit chain head.
vault_state = Table(
    "vault_state", metadata,
    Column("id", Integer, primary_key=True),
    Column("vault_id", String(64), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("owner", String(256), nullable=False),
    Column("rules_version", BigInteger, nullable=False, default=0),
    Column("audit_seq", BigInteger, nullable=False, default=0),
    Column("audit_mac", LargeBinary, nullable=False),
    # table -> digest of its row MACs (JSON), and a MAC over this whole row, audit head included
    # (crypto/rows.py): rows edited, re-inserted or rolled back in the file are refused
    Column("row_digests", Text),
    Column("state_mac", LargeBinary),
    # moved by every change's transaction (never by a read): the caches' change stamp
    # (storage/change_signal.py); a hint outside state_mac, so it is never trusted for more
    Column("change_seq", BigInteger, nullable=False, default=0, server_default="0"),
)

# Keys wrapped by the master key: data key terms, the audit MAC key, the cookie key.
wrapped_keys = Table(
    "wrapped_keys", metadata,
    Column("purpose", String(32), primary_key=True),
    Column("term", Integer, primary_key=True),
    Column("wrapped", LargeBinary, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("encryptions", BigInteger, nullable=False, default=0),
    Column("retired_at", BigInteger),
    Column("mac", LargeBinary),  # crypto/rows.py
)

secrets = Table(
    "secrets", metadata,
    Column("id", String(32), primary_key=True),
    Column("environment", String(16), nullable=False),
    Column("name", String(256), nullable=False),
    Column("secret_type", String(32), nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("tags", Text, nullable=False, default="[]"),
    Column("salt", LargeBinary(16), nullable=False),
    Column("current_version", Integer, nullable=False),
    Column("previous_version", Integer),
    Column("max_versions", Integer, nullable=False, default=20),
    Column("created_at", BigInteger, nullable=False),
    Column("created_by", String(256), nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Column("updated_by", String(256), nullable=False),
    Column("expires_at", BigInteger),
    Column("rotation_interval_days", Integer),
    Column("next_rotation_at", BigInteger),
    Column("last_rotated_at", BigInteger),
    Column("deleted_at", BigInteger),
    Column("generator", String(128)),
    Column("mac", LargeBinary),  # crypto/rows.py
    UniqueConstraint("environment", "name", name="uq_secrets_env_name"),
)
Index("ix_secrets_name", secrets.c.name)
# deleted_at rides along so health's due/overdue/expiring counts are index-only range scans
Index("ix_secrets_next_rotation", secrets.c.next_rotation_at, secrets.c.deleted_at)
Index("ix_secrets_expires", secrets.c.expires_at, secrets.c.deleted_at)

secret_versions = Table(
    "secret_versions", metadata,
    Column("secret_id", String(32), ForeignKey("secrets.id", ondelete="CASCADE"), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("ciphertext", LargeBinary, nullable=False),
    Column("key_term", Integer, nullable=False),
    Column("state", String(16), nullable=False),  # current, previous, pending, old
    Column("created_at", BigInteger, nullable=False),
    Column("created_by", String(256), nullable=False),
)
Index("ix_versions_term", secret_versions.c.key_term)

principals = Table(
    "principals", metadata,
    Column("name", String(256), primary_key=True),
    Column("kind", String(16), nullable=False),  # user, service
    Column("display_name", String(256), nullable=False, default=""),
    Column("email", String(256), nullable=False, default=""),
    Column("roles", Text, nullable=False, default="[]"),
    Column("password_hash", String(256)),
    Column("must_change_password", Boolean, nullable=False, default=False),
    Column("locked_until", BigInteger),
    Column("disabled", Boolean, nullable=False, default=False),
    Column("session_epoch", Integer, nullable=False, default=0),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Column("mac", LargeBinary),  # crypto/rows.py
)

access_rules = Table(
    "access_rules", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("subject_kind", String(8), nullable=False),  # user, role, any
    Column("subject", String(256), nullable=False),
    Column("environment", String(16), nullable=False),  # an environment or "*"
    Column("pattern", String(256), nullable=False),
    Column("levels", String(64), nullable=False),  # comma separated
    Column("effect", String(8), nullable=False),  # allow, deny
    Column("secret_id", String(32)),  # set for rules made from a secret's access_policy
    Column("created_at", BigInteger, nullable=False),
    Column("created_by", String(256), nullable=False),
    Column("note", String(512), nullable=False, default=""),
    Column("mac", LargeBinary),  # crypto/rows.py
)
Index("ix_rules_subject", access_rules.c.subject_kind, access_rules.c.subject)

audit_log = Table(
    "audit_log", metadata,
    # INTEGER on SQLite so seq is the rowid (indexes then end with it for free).
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False),
    Column("ts", BigInteger, nullable=False),
    Column("principal", String(256), nullable=False),
    Column("roles", String(512), nullable=False, default=""),
    Column("client_ip", String(64)),
    Column("forwarded_for", String(512)),
    Column("forwarded_trusted", Boolean, nullable=False, default=False),
    Column("user_agent", String(600)),
    Column("session_id", String(128)),
    Column("operation", String(32), nullable=False),
    Column("environment", String(16)),
    Column("secret_id", String(32)),
    Column("secret_name", String(300)),
    Column("version", Integer),
    Column("outcome", String(8), nullable=False),  # allowed, denied, failed
    Column("reason", String(512), nullable=False, default=""),
    # keyed HMAC of a value written by this operation (never the value): the audit-hash lookup
    Column("value_hash", String(64)),
    Column("prev_mac", LargeBinary, nullable=False),
    Column("mac", LargeBinary, nullable=False),
)
Index("ix_audit_ts", audit_log.c.ts, audit_log.c.seq)
Index("ix_audit_principal_ts", audit_log.c.principal, audit_log.c.ts, audit_log.c.seq)
Index("ix_audit_secret_ts", audit_log.c.secret_id, audit_log.c.ts, audit_log.c.seq)
Index("ix_audit_operation_ts", audit_log.c.operation, audit_log.c.ts, audit_log.c.seq)
Index("ix_audit_value_hash", audit_log.c.value_hash, sqlite_where=audit_log.c.value_hash.is_not(None),
      postgresql_where=audit_log.c.value_hash.is_not(None))

# Live secrets per (environment, type), changed in the same transaction as the secret: health never scans.
secret_counts = Table(
    "secret_counts", metadata,
    Column("environment", String(16), primary_key=True),
    Column("secret_type", String(32), primary_key=True),
    Column("n", BigInteger, nullable=False),
)

# Per-day counters kept with each audit row, so charts never scan the log.
audit_daily = Table(
    "audit_daily", metadata,
    Column("day", Integer, primary_key=True),  # days since the epoch, UTC
    Column("operation", String(32), primary_key=True),
    Column("outcome", String(8), primary_key=True),
    Column("count", BigInteger, nullable=False),
)

# Console sessions recorded server-side (logout and lock invalidate cookies).
sessions = Table(
    "sessions", metadata,
    Column("id", String(64), primary_key=True),  # SHA-256 of the session token
    Column("principal", String(256), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Column("revoked_at", BigInteger),
    Column("epoch", Integer, nullable=False, default=0),
    Column("client_ip", String(64)),
    Column("user_agent", String(600)),
    Column("mac", LargeBinary),  # crypto/rows.py
)
Index("ix_sessions_principal", sessions.c.principal)

# Login attempts: a row is written (pending) before a password is checked and stays as a failure
# unless the check succeeds, so parallel guesses are counted before any of them is checked.
login_failures = Table(
    "login_failures", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("principal", String(256), nullable=False),
    Column("ts", BigInteger, nullable=False),
    Column("source", String(64), nullable=False, server_default=""),  # client address (IPv6: its /64)
    Column("pending", Boolean, nullable=False, server_default=false()),
)
Index("ix_login_failures_principal_ts", login_failures.c.principal, login_failures.c.ts)
Index("ix_login_failures_source", login_failures.c.principal, login_failures.c.source, login_failures.c.ts)

# TOTP two-factor enrolment of a console user: the secret sealed under the barrier (bound to the user),
# pending until confirmed with a first code; the newest accepted time step makes each code single-use.
two_factor = Table(
    "two_factor", metadata,
    Column("principal", String(256), primary_key=True),
    Column("salt", LargeBinary(16), nullable=False),
    Column("secret", LargeBinary, nullable=False),  # sealer.seal_bound("totp", principal, ...)
    Column("key_term", Integer, nullable=False),  # the data key term of ``secret`` (re-encryption)
    Column("created_at", BigInteger, nullable=False),
    Column("confirmed_at", BigInteger),  # None: pending
    Column("last_step", BigInteger),
    Column("mac", LargeBinary),  # crypto/rows.py
)

# One-time recovery codes, as keyed hashes (the codes themselves are shown once and never stored).
recovery_codes = Table(
    "recovery_codes", metadata,
    Column("principal", String(256), primary_key=True),
    Column("code_hash", String(64), primary_key=True),
    Column("used_at", BigInteger),
)

# Roles whose users must use two-factor (a row for ``admin`` overrides its default).
two_factor_roles = Table(
    "two_factor_roles", metadata,
    Column("role", String(256), primary_key=True),
    Column("required", Boolean, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Column("updated_by", String(256), nullable=False),
    Column("mac", LargeBinary),  # crypto/rows.py
)

# Single sign-on (console/sso.py): providers, (issuer, subject) -> principal, (issuer, group) -> roles.
# No secret here: a provider's client secret is a vault secret read by the console's service identity.
sso_providers = Table(
    "sso_providers", metadata,
    Column("name", String(64), primary_key=True),
    Column("issuer", String(512), nullable=False),
    Column("client_id", String(256), nullable=False),
    Column("server_metadata_url", String(1024), nullable=False),
    Column("allow_create", Boolean, nullable=False),
    Column("trust_idp_mfa", Boolean, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Column("updated_by", String(256), nullable=False),
    Column("mac", LargeBinary),  # crypto/rows.py
)

sso_identities = Table(
    "sso_identities", metadata,
    Column("issuer", String(512), primary_key=True),
    Column("subject", String(256), primary_key=True),
    Column("principal", String(256), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("created_by", String(256), nullable=False),
    Column("last_iat", BigInteger, nullable=False),  # the newest ID token accepted: an older one is a replay
    Column("mac", LargeBinary),  # crypto/rows.py
)

sso_group_roles = Table(
    "sso_group_roles", metadata,
    Column("issuer", String(512), primary_key=True),
    Column("group_name", String(256), primary_key=True),
    Column("roles", Text, nullable=False),  # JSON list of vault roles
    Column("updated_at", BigInteger, nullable=False),
    Column("updated_by", String(256), nullable=False),
    Column("mac", LargeBinary),  # crypto/rows.py
)

# Leases decide which process runs a singleton job (the rotation scheduler).
leases = Table(
    "leases", metadata,
    Column("name", String(64), primary_key=True),
    Column("holder", String(128), nullable=False),
    Column("expires_at", BigInteger, nullable=False),
)

# Progress of a resumable master-key / key-term rotation.
rekey_jobs = Table(
    "rekey_jobs", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("target_term", Integer, nullable=False),
    Column("started_at", BigInteger, nullable=False),
    Column("finished_at", BigInteger),
    Column("done", BigInteger, nullable=False, default=0),
    Column("total", BigInteger, nullable=False, default=0),
)

# Machine identities (AppRole): a service principal's login settings, its secret ids and its tokens.
# Secret ids and tokens are random 256-bit values; only their SHA-256 is stored.
machine_roles = Table(
    "machine_roles", metadata,
    Column("principal", String(256), primary_key=True),
    Column("role_id", String(64), nullable=False, unique=True),
    Column("token_ttl", Integer, nullable=False),  # seconds
    Column("token_max_ttl", Integer, nullable=False),  # seconds, from the login on
    Column("bound_cidrs", Text, nullable=False, default=""),  # comma-separated; "" = any source
    Column("secret_id_uses", Integer, nullable=False, default=0),  # logins per secret id; 0 = unlimited
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Column("mac", LargeBinary),  # crypto/rows.py
)

machine_secret_ids = Table(
    "machine_secret_ids", metadata,
    Column("id", String(64), primary_key=True),  # SHA-256 of the secret id
    Column("accessor", String(32), nullable=False, unique=True),
    Column("principal", String(256), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("uses_left", Integer),  # None: unlimited
    Column("revoked_at", BigInteger),
    Column("mac", LargeBinary),  # crypto/rows.py
)
Index("ix_machine_secret_ids_principal", machine_secret_ids.c.principal)

machine_tokens = Table(
    "machine_tokens", metadata,
    Column("id", String(64), primary_key=True),  # SHA-256 of the token
    Column("accessor", String(32), nullable=False, unique=True),
    Column("principal", String(256), nullable=False),
    Column("epoch", Integer, nullable=False),  # the principal's session_epoch at login (a lock ends it)
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Column("max_expires_at", BigInteger, nullable=False),
    Column("revoked_at", BigInteger),
    Column("client_ip", String(64)),
    Column("mac", LargeBinary),  # crypto/rows.py
)
Index("ix_machine_tokens_principal", machine_tokens.c.principal)

# Audit devices (issue 23): where the audit stream goes, and the durable cursor of each.
# ``delivered_seq`` is the last audit row the device accepted: delivery resumes after it,
# in any process (only the holder of the ``audit-delivery`` lease sends).
audit_devices = Table(
    "audit_devices", metadata,
    Column("name", String(64), primary_key=True),
    Column("kind", String(16), nullable=False),        # file | syslog | socket
    Column("format", String(16), nullable=False),      # native | ocsf | ecs
    Column("config", Text, nullable=False),            # JSON: path/rotation or address/protocol
    Column("required", Boolean, nullable=False, server_default=false()),
    Column("max_lag_s", Integer, nullable=False, default=30),
    Column("delivered_seq", BigInteger, nullable=False, default=0),
    Column("created_at", BigInteger, nullable=False),
    Column("created_by", String(256), nullable=False),
    Column("delivered_at", BigInteger),                # last time it accepted rows
    Column("failing_since", BigInteger),               # first failure since its last success
    Column("last_error", String(300)),
    Column("mac", LargeBinary),  # crypto/rows.py (delivered_at, failing_since and last_error left out)
)
