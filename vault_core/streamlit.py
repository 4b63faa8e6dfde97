"""``from vault_core.streamlit import secrets``: ``st.secrets``, served by the vault.

    from vault_core.streamlit import secrets
    secrets["api_key_openai"]          # item access
    secrets.db.password                # the secret named ``db.password``
    secrets.for_environment("staging").get("jwt_secret")

Behaves like ``st.secrets`` (a read-only mapping; sections as attribute dicts;
``KeyError``/``AttributeError`` naming the key; ``to_dict``), and is safer:

* values come from ``get_vault()`` (or, when ``VAULT_ADDR`` is set, the remote vault of
  ``vault_core.integrations.remote``, as its token's principal) for ``VAULT_ENVIRONMENT``
  (or ``for_environment``),
  read as the caller: an active ``vault.security_context``, else the console user of
  this Streamlit session (``set_identity_provider`` or ``st.session_state["vault_identity"]``),
  else the process identity;
* a denied read raises ``AccessDenied`` (a ``PermissionError``) and is audited; every
  value actually read from the vault is a ``read`` audit row;
* ``repr`` shows names only; nothing is exported to ``os.environ``; nothing is logged;
* values are cached per identity and session (never shared) with their version; each
  access first checks that nothing changed (the change signal of
  ``storage/change_signal.py``: on SQLite the vault's change counter, read only when
  ``PRAGMA data_version`` moved; on PostgreSQL LISTEN/NOTIFY; else a version query), so a
  rotation or a revoked grant is seen on the next access, and other reads do not reload it.

Attribute access never looks up a name starting with ``_`` (tools probe such attributes:
pytest, IPython, copy); ``secrets["_name"]`` still does. Keys are canonical names: lookups fold case (``secrets.DB_URL`` finds ``db_url``);
``/`` separates sections as ``.`` does (``secrets.smtp.password`` finds ``smtp/password``;
where both spellings exist, the dotted one wins); ``in``, ``len`` and iteration show what
the caller may READ, without reading values.
"""

from __future__ import annotations

import copy
import os
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from functools import lru_cache
from types import MappingProxyType
from typing import Any, NamedTuple, NoReturn

from .context import SecurityContext, current_context, make_context, use_context
from .environments import Environment
from .errors import Sealed, ValidationError
from .integrations.toml_meta import dotted, section_paths
from .migration import decode_typed, nest
from .names import canonical_name, printable
from .storage.change_signal import change_signal
from .types import Listing

SESSION_KEY = "vault_identity"
_RELOOK: Any = object()  # "look the path up again in the new listing"
CALLER = "caller"  # VaultSecrets(identity=CALLER): whoever is calling (the default)
MAX_VIEWS = 256  # identities x environments cached per mapping; the oldest is dropped first
_HINT = ("Did you forget to store it in the {env} environment of the vault "
         "(`vault-console import-toml`, or the admin console)?")


class Identity(NamedTuple):
    """Who a Streamlit session acts as (what the console puts in ``st.session_state``)."""

    user_id: str
    roles: tuple[str, ...] = ()
    session_id: str | None = None
    ip_address: str | None = None


_provider: Callable[[], Any] | None = None


def set_identity_provider(fn: Callable[[], Identity | tuple | Mapping | None] | None) -> None:
    """Use ``fn()`` (called on each access inside a Streamlit session) instead of
    ``st.session_state["vault_identity"]``; ``None`` restores the default."""
    global _provider
    _provider = fn


@lru_cache(maxsize=4096)
def _context(user_id: str, roles: tuple[str, ...], session_id: str | None, ip: str | None) -> SecurityContext:
    return make_context(user_id, ip, None, roles, session_id)


def _to_context(raw: Any, st_session: str | None) -> SecurityContext:
    if isinstance(raw, Mapping):
        raw = Identity(raw["user_id"], tuple(raw.get("roles") or ()), raw.get("session_id"), raw.get("ip_address"))
    elif not isinstance(raw, Identity):
        raw = Identity(*raw)
    # Without a session id of its own, the Streamlit session's keeps two tabs' caches apart.
    return _context(raw.user_id, tuple(raw.roles or ()), raw.session_id or st_session, raw.ip_address)


def current_identity() -> SecurityContext | None:
    """The caller for this access: the active security context, else this Streamlit
    session's console user, else None (the vault's process identity)."""
    ctx = current_context()
    if ctx is not None:
        return ctx
    if "streamlit" not in sys.modules:  # no Streamlit, no session: skip the import
        return None
    from streamlit.runtime.scriptrunner_utils.script_run_context import get_script_run_ctx

    run_ctx = get_script_run_ctx(suppress_warning=True)
    if run_ctx is None:
        return None
    if _provider is not None:
        raw = _provider()
    else:
        import streamlit as st

        raw = st.session_state.get(SESSION_KEY)
    return None if raw is None else _to_context(raw, run_ctx.session_id)


# -- per-identity cache ------------------------------------------------------------------
class _View:
    """What one identity may read in one environment: listing and cached values."""

    __slots__ = ("vault", "environment", "ctx", "lock", "stamp", "pending", "token", "checked", "listing", "paths",
                 "sections", "values", "versions")

    def __init__(self, vault: Any, environment: str, ctx: SecurityContext | None):
        self.vault, self.environment, self.ctx = vault, environment, ctx
        self.lock = threading.RLock()
        self.stamp: Any = object()  # never equal: the first access lists
        self.pending: Any = None  # a newer stamp seen and not listed yet (``_View.listed`` lists it)
        self.token: Listing | None = None  # the snapshot the listing stands at: the next one lists what changed
        self.checked = 0.0
        self.listing: dict[str, tuple[int, tuple[str, ...]]] = {}
        self.paths: dict[str, str] = {}  # dotted path ("smtp.password") -> stored name ("smtp/password")
        self.versions: Mapping[str, int] = MappingProxyType({})
        self.sections: frozenset[str] = frozenset()
        self.values: dict[str, tuple[int, Any]] = {}

    def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run a vault call as this view's identity (None: the process identity)."""
        if current_context() is self.ctx:
            return fn(*args)
        with use_context(self.ctx):  # type: ignore[arg-type]  # None clears an outer context
            return fn(*args)

    @property
    def lists_changes(self) -> bool:
        """Whether the vault lists only what changed (an in-process vault; a remote one lists versions)."""
        return hasattr(self.vault, "read_listed")

    def listed(self) -> "_View":
        """This view, its listing brought up to a stamp seen since (``pending``)."""
        if self.pending is not None:
            self.refresh(self.pending)
        return self

    def refresh(self, stamp: Any) -> None:
        with self.lock:
            if self.lists_changes:
                self.apply(self.call(self.vault.listing, self.environment, self.token), stamp)
            else:
                self.apply(Listing(self.call(self.vault.secret_versions, self.environment), True, (0, b"", 0)),
                           stamp)

    def apply(self, listing: Listing, stamp: Any) -> None:
        """Take ``listing`` (all names, or what changed) as of ``stamp`` (taken before it was read). A delta
        that adds or removes no name keeps the paths; one that moves no version keeps ``versions``."""
        with self.lock:
            renamed = listing.complete
            if listing.complete:
                new = dict(listing.entries)
            else:
                new = dict(self.listing)
                for name, entry in listing.entries.items():
                    if entry is None:
                        renamed |= new.pop(name, None) is not None
                    else:
                        renamed |= name not in new
                        new[name] = entry
            self.token = Listing({}, listing.complete, listing.token)
            old, self.listing = self.listing, new
            if renamed:
                self.paths = section_paths(new)
                self.sections = frozenset(".".join(p[:i]) for p in (k.split(".") for k in self.paths)
                                          for i in range(1, len(p)))
            if renamed or any(old.get(n, (None,))[0] != e[0] for n, e in listing.entries.items() if e is not None):
                self.versions = MappingProxyType({n: entry[0] for n, entry in new.items()})
                self.values = {n: v for n, v in self.values.items() if new.get(n, (None,))[0] == v[0]}
            self.stamp, self.checked = stamp, time.monotonic()
            if self.pending is stamp or self.pending == stamp:
                self.pending = None


def _missing(key: Any, env: str, attr: bool) -> Exception:
    shown = printable(key, 100)
    if attr:
        return AttributeError(f'secrets has no attribute "{shown}". ' + _HINT.format(env=env))
    return KeyError(f'secrets has no key "{shown}". ' + _HINT.format(env=env))


def _typed_copy(value: Any) -> Any:
    return copy.deepcopy(value) if isinstance(value, (list, dict)) else value


class _ReadOnly:
    __slots__ = ()

    def __setitem__(self, key: Any, value: Any) -> NoReturn:
        raise TypeError("Secrets does not support item assignment.")

    def __delitem__(self, key: Any) -> NoReturn:
        raise TypeError("Secrets does not support item deletion.")

    def __setattr__(self, key: str, value: Any) -> NoReturn:
        raise TypeError("Secrets does not support attribute assignment.")

    def __delattr__(self, key: str) -> NoReturn:
        raise TypeError("Secrets does not support attribute deletion.")


class VaultSecrets(_ReadOnly, Mapping[str, Any]):
    """A read-only mapping of the secrets of one environment (see the module docstring)."""

    __slots__ = ("_vault", "_environment", "_max_age", "_identity", "_views", "_lock", "_children")

    def __init__(self, environment: Environment | str | None = None, *, vault: Any = None,
                 max_age: float = 0.0, identity: SecurityContext | str | None = CALLER):
        """``vault`` defaults to ``get_vault()``, ``environment`` to ``VAULT_ENVIRONMENT``;
        ``max_age``: where the database has no change signal (PostgreSQL), how many seconds
        a version check is trusted (0: check on every access, so a rotation is seen at once);
        ``identity``: ``CALLER`` (whoever calls: see ``current_identity``), ``None`` (always
        the process identity: an app's service identity) or a fixed ``SecurityContext``.

        Raises ``ValidationError`` for an unknown environment or identity."""
        env = None if environment is None else Environment.parse(environment).value
        if not (identity is None or identity == CALLER or isinstance(identity, SecurityContext)):
            raise ValidationError("identity must be CALLER, None (the process) or a SecurityContext")
        for slot, value in (("_vault", vault), ("_environment", env), ("_max_age", max_age),
                            ("_identity", identity), ("_views", OrderedDict()), ("_lock", threading.Lock()),
                            ("_children", {})):
            object.__setattr__(self, slot, value)

    # -- plumbing -------------------------------------------------------------------
    def for_environment(self, environment: Environment | str) -> "VaultSecrets":
        """The same vault's secrets of another environment (one cached mapping per environment)."""
        env = Environment.parse(environment).value
        with self._lock:
            child = self._children.get(env)
            if child is None:
                child = self._children[env] = VaultSecrets(env, vault=self._vault, max_age=self._max_age,
                                                           identity=self._identity)
            return child

    def clear_cache(self) -> None:
        """Forget every cached value and listing (e.g. at logout); the next access re-reads."""
        with self._lock:
            self._views.clear()
            children = list(self._children.values())
        for child in children:
            child.clear_cache()

    @property
    def environment(self) -> str:
        return self._environment or _env_from(os.environ.get("VAULT_ENVIRONMENT"))

    def _view(self, lazy: bool = False) -> _View:
        """The caller's view, checked to be current (raises Sealed / AccessDenied); ``lazy``: a change seen
        is only noted (``_View.pending``), for a read by name to bring the listing along with its value."""
        if self._vault is not None:
            vault = self._vault
        else:
            from .integrations.remote import connect
            from .vault import get_vault

            vault = connect() or get_vault()  # VAULT_ADDR: the HTTP API, no key or database here
        if vault.sealed:
            raise Sealed("the vault is sealed: unlock it with its master key or passphrase")
        env = self.environment
        ctx = current_identity() if self._identity is CALLER else self._identity
        key = (id(vault), env, None if ctx is None else (ctx.user_id, ctx.roles, ctx.session_id, ctx.ip_address))
        view = self._views.get(key)
        if view is None or view.vault is not vault:
            with self._lock:
                view = self._views[key] = _View(vault, env, ctx)
                while len(self._views) > MAX_VIEWS:
                    self._views.popitem(last=False)
        sig = change_signal(vault.storage) if vault.storage is not None else None  # remote: poll versions
        stamp = sig.stamp() if sig is not None else None  # taken before the listing: no lost change
        if stamp is None:
            if not self._max_age or time.monotonic() - view.checked > self._max_age or view.stamp is not None:
                view.refresh(None)
        elif stamp != view.stamp:
            view.pending = stamp
            if not lazy:
                view.refresh(stamp)
        return view

    def _value(self, view: _View, name: str, key: Any, attr: bool) -> Any:
        """The typed value of the stored secret ``name`` (cached per version)."""
        entry = view.listing[name]
        cached = view.values.get(name)
        if cached is not None and cached[0] == entry[0]:
            return _typed_copy(cached[1])
        with view.lock:  # one fetch per identity and name, however many threads ask
            cached = view.values.get(name)
            if cached is not None and cached[0] == entry[0]:
                return _typed_copy(cached[1])
            raw = view.call(view.vault.get_secret, name, view.environment)
            if raw is None:  # deleted since the listing
                view.stamp = object()
                raise _missing(key, view.environment, attr)
            value = decode_typed(raw, entry[1])
            view.values[name] = (entry[0], value)
            return _typed_copy(value)

    def _changed(self, view: _View, name: str, path: str, key: Any, attr: bool) -> Any:
        """The value of the listed secret ``name`` (at ``path``) after a change, read with the listing: one
        vault call. ``_RELOOK`` when the new listing puts another secret (or none) at ``path``."""
        with view.lock:
            stamp = view.pending
            if stamp is None:  # another thread listed meanwhile
                return _RELOOK
            raw, listing = view.call(view.vault.read_listed, name, view.environment, view.token)
            view.apply(listing, stamp)
            if raw is None or view.paths.get(path) != name:  # deleted, or the dotted spelling of the path came to win
                return _RELOOK
            version, tags = view.listing[name]
            value = decode_typed(raw, tags)
            view.values[name] = (version, value)
            return _typed_copy(value)

    def _lookup(self, key: Any, prefix: str, attr: bool) -> Any:
        view = self._view(lazy=True)
        name = _canonical(prefix + key) if isinstance(key, str) and len(key) <= 300 else None
        if name is None:
            raise _missing(key, view.environment, attr)
        path = dotted(name)
        stored = view.paths.get(path)
        if view.pending is not None:
            if stored is not None and view.lists_changes:
                found = self._changed(view, stored, path, key, attr)
                if found is not _RELOOK:
                    return found
            elif stored is None and path in view.sections:  # the lookup of a name in it brings the listing
                return SecretsSection(self, path + ".")
            view.listed()
            stored = view.paths.get(path)
        if stored is not None:
            return self._value(view, stored, key, attr)
        if path in view.sections:
            return SecretsSection(self, path + ".")
        # Not readable by this caller, or missing: ask the vault, so that a denial is
        # raised (AccessDenied) and audited rather than passed off as a missing key.
        raw = view.call(view.vault.get_secret, name, view.environment)
        if raw is None:
            raise _missing(key, view.environment, attr)
        view.refresh(object())  # it exists and is readable: the listing was stale
        return self._value(view, name, key, attr) if name in view.listing else raw

    def _names(self, prefix: str = "") -> list[str]:
        """The next path segments under ``prefix`` that the caller may read, sorted."""
        out: dict[str, None] = {}
        for path in sorted(self._view().paths):
            if path.startswith(prefix):
                out.setdefault(path[len(prefix):].split(".", 1)[0], None)
        return list(out)

    def _dict(self, prefix: str = "") -> dict[str, Any]:
        view = self._view()
        return nest({p[len(prefix):]: self._value(view, n, n, False)
                     for p, n in sorted(view.paths.items()) if p.startswith(prefix)})

    def versions(self) -> Mapping[str, int]:
        """``{name: current version}`` of what the caller may READ (read-only; no value read, nothing audited).

        Cheap when nothing changed (the same change signal as every access), and then the
        very same object as last time: callers that mirror these secrets elsewhere compare
        it to know when to copy again. Raises ``Sealed`` or ``AccessDenied``."""
        return self._view().versions

    # -- the mapping -----------------------------------------------------------------------
    def __getitem__(self, key: str) -> Any:
        return self._lookup(key, "", False)

    def __getattr__(self, key: str) -> Any:
        if key.startswith("_"):  # probes by tools (copy, pickle, pytest, IPython), not secrets: use [...]
            raise AttributeError(key)
        return self._lookup(key, "", True)

    def __contains__(self, key: object) -> bool:
        """True when the caller may READ ``key`` (a secret or a section); reads no value."""
        name = _canonical(key) if isinstance(key, str) and len(key) <= 300 else None
        if name is None:
            return False
        view = self._view()
        path = dotted(name)
        return path in view.paths or path in view.sections

    def __iter__(self) -> Iterator[str]:
        return iter(self._names())

    def __len__(self) -> int:
        return len(self._names())

    def to_dict(self) -> dict[str, Any]:
        """Every readable secret as a nested dict (each uncached value is an audited read)."""
        return self._dict()

    def __repr__(self) -> str:
        try:
            names: Any = sorted(self._view().listing)
        except Exception as exc:  # repr must not fail, nor say more than the error's kind
            names = f"<unavailable: {type(exc).__name__}>"
        return f"VaultSecrets(environment={self.environment!r}, names={names!r})"

    __str__ = __repr__


class SecretsSection(_ReadOnly, Mapping[str, Any]):
    """A nested section (``secrets.db``): the secrets named ``db.*``, read on access."""

    __slots__ = ("_root", "_prefix")

    def __init__(self, root: VaultSecrets, prefix: str):
        object.__setattr__(self, "_root", root)
        object.__setattr__(self, "_prefix", prefix)

    def __getitem__(self, key: str) -> Any:
        return self._root._lookup(key, self._prefix, False)

    def __getattr__(self, key: str) -> Any:
        if key.startswith("_"):
            raise AttributeError(key)
        return self._root._lookup(key, self._prefix, True)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and (self._prefix + key) in self._root

    def __iter__(self) -> Iterator[str]:
        return iter(self._root._names(self._prefix))

    def __len__(self) -> int:
        return len(self._root._names(self._prefix))

    def to_dict(self) -> dict[str, Any]:
        return self._root._dict(self._prefix)

    def __repr__(self) -> str:
        try:
            keys: Any = self._root._names(self._prefix)
        except Exception as exc:
            keys = f"<unavailable: {type(exc).__name__}>"
        return f"SecretsSection({self._prefix[:-1]!r}, keys={keys!r})"

    __str__ = __repr__


@lru_cache(maxsize=4096)
def _canonical(key: str) -> str | None:
    """The canonical name of a lookup key (memoised: this is on the cached-read path)."""
    try:
        return canonical_name(key)
    except ValidationError:
        return None


@lru_cache(maxsize=64)
def _env_from(raw: str | None) -> str:
    return Environment.parse(raw or "development").value


secrets = VaultSecrets()
"""The process-wide mapping (per-identity caches inside): use it like ``st.secrets``."""
