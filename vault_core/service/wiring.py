"""How the Vault exposes its services: methods and attributes that live on a collaborator."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any


def delegate(service: str, method: Callable) -> Callable:
    """A method calling ``method`` on the service in ``self.<service>`` (with its signature and docstring)."""
    name = method.__name__

    @functools.wraps(method)
    def call(self, *args: Any, **kwargs: Any) -> Any:
        return getattr(getattr(self, service), name)(*args, **kwargs)

    return call


class Forwarded:
    """A read/write attribute kept on a collaborator: ``Forwarded("users", "bcrypt_rounds", "...")``."""

    def __init__(self, holder: str, name: str, doc: str):
        self.holder, self.name, self.__doc__ = holder, name, doc

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        return self if obj is None else getattr(getattr(obj, self.holder), self.name)

    def __set__(self, obj: Any, value: Any) -> None:
        setattr(getattr(obj, self.holder), self.name, value)
