"""Who is calling: the security context (contextvars) and the process identity.

Each thread and each Streamlit session (a thread per script run) sees only
its own context; nested contexts restore the outer one on exit.
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from .validate import canonical_principal, check_roles, printable

MAX_USER_AGENT = 512


@dataclass(frozen=True)
class SecurityContext:
    """The caller of a vault operation, as recorded in the audit log."""

    user_id: str
    ip_address: str | None = None
    user_agent: str | None = None
    roles: tuple[str, ...] = ()
    session_id: str | None = None
    forwarded_for: str | None = None
    forwarded_trusted: bool = False
    is_process: bool = False

    @property
    def roles_text(self) -> str:
        return ",".join(self.roles)


_current: ContextVar[SecurityContext | None] = ContextVar("vault_security_context", default=None)


def current_context() -> SecurityContext | None:
    """The innermost context of this thread or task, or None."""
    return _current.get()


def make_context(
    user_id: str,
    ip_address: str | None = None,
    user_agent: str | None = None,
    roles: tuple[str, ...] | list[str] | None = (),
    session_id: str | None = None,
    forwarded_for: str | None = None,
    forwarded_trusted: bool = False,
) -> SecurityContext:
    """Validate and normalise the parts of a context (headers are untrusted text)."""
    return SecurityContext(
        user_id=canonical_principal(user_id),
        ip_address=printable(ip_address, 64) if ip_address else None,
        user_agent=printable(user_agent, MAX_USER_AGENT) if user_agent else None,
        roles=tuple(check_roles(() if roles is None else roles)),
        session_id=printable(session_id, 128) if session_id else None,
        forwarded_for=printable(forwarded_for, 512) if forwarded_for else None,
        forwarded_trusted=bool(forwarded_trusted),
    )


@contextmanager
def use_context(ctx: SecurityContext) -> Iterator[SecurityContext]:
    token = _current.set(ctx)
    try:
        yield ctx
    finally:
        _current.reset(token)


def process_principal(environ=os.environ) -> str:
    """The identity of this process: ``VAULT_PRINCIPAL``, else ``local:<os user>``."""
    name = environ.get("VAULT_PRINCIPAL")
    if name:
        return canonical_principal(name)
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    return canonical_principal(f"local:{user}")
