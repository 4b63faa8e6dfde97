"""``st.connection("db", type=VaultSQLConnection)``: Streamlit's SQL connection, configured by the vault.

    import streamlit as st
    from vault_core.integrations.connection import VaultSQLConnection

    conn = st.connection("db", type=VaultSQLConnection)      # connections.db.* from the vault
    df = conn.query("SELECT * FROM pets", ttl=60)

The settings are the secrets ``connections.<name>.*`` of ``VAULT_ENVIRONMENT`` (or
``environment=``), with Streamlit's own keys (``url`` or ``dialect``/``host``/``username``/
``port``/``database``/``query``, ``create_engine_kwargs``); ``/`` works as ``.``
(``connections/db/password``). Keyword arguments of ``st.connection`` win, as in Streamlit.

The password is never part of the engine's URL: SQLAlchemy's ``do_connect`` event reads
``connections.<name>.password`` from the vault for every NEW database connection (an
audited read), so after a rotation the pool's next connection logs in with the new value
and no restart is needed. During a staged rotation (``rotate_secret(..., apply=, test=)``)
the database may already expect the PENDING value before it is promoted: a login refused
with the current value is retried once with PENDING (and with a freshly read current).
A change to any other setting builds a new engine at the next use.

``VaultSQLConnection`` is one engine per process, read as the app's service identity
(the process identity, whoever is logged in). ``VaultSessionSQLConnection`` is one engine
per Streamlit session, read as that session's console user (``st.session_state
["vault_identity"]``): per-user database credentials; without a logged-in user it refuses.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any, Literal

from streamlit.connections import SQLConnection
from streamlit.runtime.secrets import AttrDict

from ..context import SecurityContext, current_context, use_context
from ..errors import AccessDenied
from .toml_meta import section_paths
from ..streamlit import VaultSecrets, current_identity
from ..vault import get_vault

PASSWORD = "password"


def _plain(value: Any) -> Any:
    return value.to_dict() if hasattr(value, "to_dict") else value


class VaultSQLConnection(SQLConnection):
    """A ``SQLConnection`` whose settings and per-connection password come from the vault."""

    def __init__(self, connection_name: str, *, environment: str | None = None, **kwargs: Any) -> None:
        """Called by ``st.connection(name, type=VaultSQLConnection, environment=None, **kwargs)``.

        Raises ``AccessDenied`` when the identity may not read the settings, ``Sealed`` when
        the vault is sealed, and Streamlit's errors for missing settings."""
        # Everything our methods use is set first: BaseConnection turns a missing attribute
        # into a lookup on the engine, which would recurse here.
        self._connection_name = connection_name
        self._raw_instance = None
        self._swap = threading.Lock()  # one thread replaces a changed engine
        self._settings_of: tuple[Any, frozenset[tuple[str, int]]] = (None, frozenset())
        self._vault_environment = environment
        self._identity = self._identity_now()
        self._reader = VaultSecrets(environment, identity=self._identity)
        self._settings_seen = self._settings_versions()
        super().__init__(connection_name, **kwargs)

    # -- who reads ---------------------------------------------------------------------
    def _identity_now(self) -> SecurityContext | None:
        """The identity to read as: the process (None), the app's service identity."""
        return None

    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        if current_context() is self._identity:
            return fn(*args, **kwargs)
        with use_context(self._identity):  # type: ignore[arg-type]  # None: the process identity
            return fn(*args, **kwargs)

    # -- settings --------------------------------------------------------------------------
    def _prefix(self) -> str:
        return f"connections.{self._connection_name}."

    def _settings_versions(self) -> frozenset[tuple[str, int]]:
        """(path, version) of every setting but the password: a change means a new engine.

        Computed again only when the vault's listing changed (the same object otherwise)."""
        versions = self._reader.versions()
        seen_for, settings = self._settings_of
        if versions is not seen_for:
            prefix = self._prefix()
            settings = frozenset((p, versions[n]) for p, n in section_paths(versions).items()
                                 if p.startswith(prefix) and p != prefix + PASSWORD)
            self._settings_of = (versions, settings)
        return settings

    @property
    def _secrets(self) -> AttrDict:
        """``connections.<name>`` from the vault, without the password (read per DB connection)."""
        try:
            section = self._reader["connections"][self._connection_name]
        except (KeyError, AttributeError):
            return AttrDict({})
        if not isinstance(section, Mapping):
            return AttrDict({})
        return AttrDict({k: _plain(section[k]) for k in section if k != PASSWORD})

    @property
    def _instance(self) -> Any:
        """The engine; rebuilt when a setting other than the password changed in the vault."""
        seen = self._settings_versions()
        if seen != self._settings_seen:
            with self._swap:
                if seen != self._settings_seen:
                    self._settings_seen = seen
                    self.reset()
        return super()._instance

    def _on_secrets_changed(self, _sender: Any) -> None:
        """Streamlit's "st.secrets changed" signal: not ours to follow (our settings come from the
        vault and are checked at every use), so a stale connection never reads on a signal."""

    def reset(self) -> None:
        """Drop the engine (its pooled connections are closed); the next use builds a new one."""
        engine = self._raw_instance
        super().reset()
        if engine is not None:
            engine.dispose()

    def close(self) -> None:
        """Close the pooled connections (Streamlit calls this when the cached connection is released)."""
        self.reset()

    # -- the password, per new database connection --------------------------------------------
    def _password_name(self) -> str | None:
        return section_paths(self._reader.versions()).get(self._prefix() + PASSWORD)

    def _password(self, label: str | None = None) -> str | None:
        name = self._password_name()
        if name is None:
            return None
        value = self._call(get_vault().get_secret, name, self._reader.environment, label=label)
        return value.decode() if isinstance(value, bytes) else value

    def _connect(self, autocommit: bool = False, **kwargs: Any) -> Any:
        from sqlalchemy import event

        engine = super()._connect(autocommit=autocommit, **kwargs)
        event.listen(engine, "do_connect", self._on_connect)
        return engine

    def _on_connect(self, dialect: Any, _record: Any, cargs: Any, cparams: dict[str, Any]) -> Any:
        """SQLAlchemy ``do_connect``: log in with the vault's password (a copy of the params:
        the engine never keeps it)."""
        current = self._password()
        if current is None:
            return None  # no password in the vault: connect as configured
        try:
            return dialect.connect(*cargs, **dict(cparams, password=current))
        except dialect.loaded_dbapi.Error as refused:
            # A staged rotation may have changed the database before promoting PENDING,
            # or promoted it since our read: try those once each, then give up.
            for label in ("pending", None):
                candidate = self._password(label)
                if candidate is None or candidate == current:
                    continue
                try:
                    return dialect.connect(*cargs, **dict(cparams, password=candidate))
                except dialect.loaded_dbapi.Error:
                    continue
            raise refused


class VaultSessionSQLConnection(VaultSQLConnection):
    """One engine per Streamlit session, read as that session's console user."""

    @classmethod
    def scope(cls) -> Literal["global", "session"]:
        return "session"

    def _identity_now(self) -> SecurityContext | None:
        ctx = current_identity()
        if ctx is None:
            raise AccessDenied("a session-scoped vault connection needs a logged-in user")
        return ctx

    @property
    def _instance(self) -> Any:
        """The engine of this session's user; a different user (after a new login) gets a new one."""
        from streamlit.runtime.scriptrunner_utils.script_run_context import get_script_run_ctx

        if get_script_run_ctx(suppress_warning=True) is not None:
            ctx = self._identity_now()
            if (ctx.user_id, ctx.roles) != (self._identity.user_id, self._identity.roles):  # type: ignore[union-attr]
                self._identity = ctx
                self._reader = VaultSecrets(self._vault_environment, identity=ctx)
                self._settings_seen = self._settings_versions()
                self.reset()
        return super()._instance
