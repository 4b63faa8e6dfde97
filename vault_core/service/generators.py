"""The generators (and their rotation hooks) this process knows by name: built-in ones plus registered ones.

A name is stored with each secret rotated by it (``secrets.generator``), so a
scheduled rotation finds the same generator later; every process that runs
the scheduler must register the same names. The registry holds only
callables, never values, and lives as long as its vault object.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from ..errors import ValidationError
from ..rotation import BUILTIN_GENERATORS, default_generator_name

Hook = Callable[[Any], Any]
_NAME = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")


class Registered(NamedTuple):
    """One registered generator and the hooks a rotation by it runs (``None``: no hook)."""

    generate: Callable[[], Any]
    apply: Hook | None = None
    test: Hook | None = None


def check_hooks(*hooks: Any) -> None:
    """Raise ``ValidationError`` unless every hook given is a callable."""
    if any(h is not None and not callable(h) for h in hooks):
        raise ValidationError("apply and test hooks must be callables taking the new value")


class GeneratorRegistry:
    """Generators by name: ``register`` adds one, ``resolve`` answers what a rotation runs."""

    def __init__(self, builtin: Mapping[str, Callable[[], Any]] = BUILTIN_GENERATORS):
        self._builtin = dict(builtin)
        self._registered: dict[str, Registered] = {}
        self._lock = threading.Lock()

    def register(self, name: str, generator: Callable[[], Any], *, apply: Hook | None = None,
                 test: Hook | None = None) -> None:
        """Make ``generator`` (and its optional hooks) findable by ``name``.

        Raises ``ValidationError`` (a bad name, a generator or hook that is not callable).
        """
        if not isinstance(name, str) or not _NAME.match(name) or not callable(generator):
            raise ValidationError("register_generator needs a name (letters, digits, _.:-) and a callable")
        check_hooks(apply, test)
        with self._lock:
            self._registered[name] = Registered(generator, apply, test)

    def names(self) -> list[str]:
        """Built-in and registered names, sorted. Raises nothing."""
        return sorted({*self._builtin, *self._registered})

    def knows(self, name: str | None) -> bool:
        """True when ``name`` is a built-in or registered generator. Raises nothing."""
        return bool(name) and (name in self._registered or name in self._builtin)

    def hooks(self, name: str | None) -> tuple[Hook | None, Hook | None]:
        """The (apply, test) hooks registered with ``name``; (None, None) when none. Raises nothing."""
        entry = self._registered.get(name or "")
        return (None, None) if entry is None else (entry.apply, entry.test)

    def resolve(self, spec: Any, stored: str | None, secret_type: str) -> tuple[Callable[[], Any], str | None]:
        """(generator, its name or None) for a rotation asked for ``spec``.

        ``spec`` is a callable (named if registered), a name, or None: then the
        secret's ``stored`` generator, else the default of its type.
        Raises ``ValidationError`` (not a callable or name; a name nobody registered here).
        """
        if callable(spec):
            named = next((n for n, r in self._registered.items() if r.generate is spec), None)
            return spec, named
        if spec is not None and not isinstance(spec, str):
            raise ValidationError("generator must be a callable or the name of a registered generator")
        name = spec or stored or default_generator_name(secret_type)
        entry = self._registered.get(name)
        generate = entry.generate if entry is not None else self._builtin.get(name)
        if generate is None:
            raise ValidationError(f"no generator named {name!r} is registered in this process")
        return generate, name

    def __repr__(self) -> str:
        return f"GeneratorRegistry({self.names()!r})"
