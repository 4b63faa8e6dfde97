"""Zero-change adoption: an unmodified Streamlit app whose ``st.secrets`` (so every ``st.connection``)
is fed by the vault.

    # serve.py, next to the unmodified streamlit_app.py
    import streamlit as st
    from vault_core.integrations.app_secrets import vault_lifespan

    app = st.App("streamlit_app.py", lifespan=vault_lifespan(environment="production"))
    # streamlit run serve.py   (or: uvicorn serve:app)

The app's secrets are read as the process's service identity (``VAULT_PRINCIPAL``) and
copied into the real ``st.secrets`` at startup and again whenever a version changes
(checked every ``interval`` seconds with the same change signal as
``vault_core.streamlit.secrets``: on SQLite a few microseconds when nothing changed). A
deleted secret's key is removed; ``st.connection`` objects whose section changed are
reset by Streamlit itself. Secrets without a section (``api_key``) are refused: Streamlit
copies top-level strings and numbers into ``os.environ``; pass ``top_level=True`` to
accept that. What this mode gives up compared with the replacement: see the README.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

from ..errors import ValidationError
from ..streamlit import VaultSecrets

log = logging.getLogger(__name__)
STREAMLIT_VERSIONS = ">=1.67,<1.68"  # the internals replace_streamlit_secrets uses (pyproject pins it)


def replace_streamlit_secrets(mapping: Mapping[str, Any] | None) -> None:
    """Make ``st.secrets`` the secrets files' content plus ``mapping`` (replacing the last one),
    then tell every ``st.connection`` to check its section.

    The ONE function that touches Streamlit internals (``secrets_singleton``'s lock,
    ``_reset``, ``_parse``, ``_programmatic_secrets``, ``merge_programmatic_secrets`` and
    ``file_change_listener``; read in Streamlit 1.67's ``runtime/secrets.py``):
    ``merge_programmatic_secrets`` alone can add and replace top-level keys but never
    remove one. Raises ``TypeError`` for a value Streamlit does not accept.
    """
    from streamlit.errors import StreamlitSecretNotFoundError
    from streamlit.runtime.secrets import _validate_secrets_value, secrets_singleton as st_secrets

    data = dict(mapping or {})
    _validate_secrets_value(data)  # before anything changes
    with st_secrets._lock:  # readers wait (an RLock): they never see the store half-built
        st_secrets._reset()  # forgets the old merge and the os.environ copies it made
        st_secrets._programmatic_secrets = None
        try:
            st_secrets._parse()  # the secrets files, as Streamlit itself loads them
        except StreamlitSecretNotFoundError:
            pass  # no secrets file: the vault's keys are all there is
        if data:
            st_secrets.merge_programmatic_secrets(data)  # kept: a secrets-file change re-applies it
    st_secrets.file_change_listener.send("vault")


def _streamlit_value(value: Any) -> Any:
    """A vault value as a type ``st.secrets`` accepts (dates as ISO text), or None to leave out."""
    if isinstance(value, dict):
        return {k: v for k, v in ((k, _streamlit_value(v)) for k, v in value.items()) if v is not None}
    if isinstance(value, list):
        return [_streamlit_value(v) for v in value]
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, bytes):
        return None
    return value


class SecretsFeed:
    """Copies one environment's secrets into ``st.secrets`` and keeps them current."""

    def __init__(self, environment: Any = None, *, vault: Any = None, top_level: bool = False):
        """``environment`` defaults to ``VAULT_ENVIRONMENT``, ``vault`` to ``get_vault()``;
        ``top_level=True`` accepts secrets without a section (Streamlit puts them in os.environ).

        Raises ``ValidationError`` for an unknown environment."""
        self._source = VaultSecrets(environment, vault=vault, identity=None)  # the app's service identity
        self._top_level = top_level
        self._seen: dict[str, int] | None = None
        self._skipped: frozenset[str] = frozenset()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def refresh(self, *, strict: bool = False) -> bool:
        """Copy again if any version changed since the last copy; True if it copied.

        Secrets without a section are left out (logged by name), or with ``strict`` refused.
        Raises ``ValidationError`` (strict), ``AccessDenied`` or ``Sealed``."""
        with self._lock:
            versions = self._source.versions()
            if versions == self._seen:
                return False
            tree = self._source.to_dict()
            loose = frozenset(k for k, v in tree.items() if not isinstance(v, dict))
            if loose and not self._top_level:
                if strict:
                    raise ValidationError(
                        "these secrets have no section, and Streamlit would copy them into os.environ: "
                        + ", ".join(sorted(loose)[:20]) + " (rename them into a section, or pass top_level=True)")
                if loose != self._skipped:
                    log.warning("secrets without a section left out of st.secrets: %s", ", ".join(sorted(loose)))
                tree = {k: v for k, v in tree.items() if k not in loose}
            self._skipped = loose
            replace_streamlit_secrets(_streamlit_value(tree))
            self._seen = versions
            return True

    def start(self, interval: float = 1.0) -> None:
        """Check for changes every ``interval`` seconds in a daemon thread (errors are logged, not fatal)."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, args=(interval,), name="vault-secrets-feed",
                                        daemon=True)
        self._thread.start()

    def _run(self, interval: float) -> None:
        while not self._stop.wait(interval):
            try:
                self.refresh()
            except Exception as exc:  # keep serving the last copy; say what kind of failure, never more
                log.warning("vault secrets feed: refresh failed (%s)", type(exc).__name__)

    def stop(self) -> None:
        """Stop the thread (the secrets stay as last copied)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None


def vault_lifespan(environment: Any = None, *, vault: Any = None, top_level: bool = False, interval: float = 1.0,
                   then: Callable[[Any], Any] | None = None) -> Callable[[Any], Any]:
    """The ``lifespan=`` of an ``st.App`` whose ``st.secrets`` the vault feeds (module docstring).

    ``then``: your own lifespan, run inside this one. At startup, raises ``ValidationError``
    for secrets without a section (unless ``top_level``), ``AccessDenied`` or ``Sealed``."""
    feed = SecretsFeed(environment, vault=vault, top_level=top_level)

    @asynccontextmanager
    async def feed_lifespan(app: Any) -> AsyncIterator[dict[str, Any] | None]:
        feed.refresh(strict=True)
        feed.start(interval)
        try:
            if then is None:
                yield {"vault_secrets_feed": feed}
            else:
                async with then(app) as state:
                    yield {**(state or {}), "vault_secrets_feed": feed}
        finally:
            feed.stop()

    return feed_lifespan


def vault_app(script_path: Any, *, environment: Any = None, vault: Any = None, top_level: bool = False,
              interval: float = 1.0, lifespan: Callable[[Any], Any] | None = None, **app_kwargs: Any) -> Any:
    """``st.App(script_path, lifespan=vault_lifespan(...), **app_kwargs)``, for ``uvicorn serve:app``.

    (``streamlit run`` finds an ``st.App`` by reading the file for a literal
    ``app = st.App(...)``: there, write that call with ``lifespan=vault_lifespan(...)``.)
    Raises ``TypeError`` for ``secrets=`` (the vault provides them)."""
    import streamlit as st

    if "secrets" in app_kwargs:
        raise TypeError("vault_app() takes its secrets from the vault: do not pass secrets=")
    return st.App(script_path, lifespan=vault_lifespan(environment, vault=vault, top_level=top_level,
                                                       interval=interval, then=lifespan), **app_kwargs)
