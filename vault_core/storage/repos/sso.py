"""Single sign-on rows (``sso_providers``, ``sso_identities``, ``sso_group_roles``): all MACed and checked on
read (``integrity``), so an edit in the database file cannot link a stranger's subject to an admin or
grant a group a role. No client secret is stored here (it is a vault secret).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import and_, insert, select

from ..schema import sso_group_roles, sso_identities, sso_providers
from ..tx import Tx
from . import integrity

_P, _I, _G = sso_providers.c, sso_identities.c, sso_group_roles.c


def get_provider(tx: Tx, name: str) -> Mapping[str, Any] | None:
    """One provider's settings, or None. Raises ``IntegrityError``, ``Sealed``."""
    row = tx.one(select(sso_providers).where(_P.name == name))
    return None if row is None else integrity.check(tx, "sso_providers", [row])[0]


def list_providers(tx: Tx) -> list[Mapping[str, Any]]:
    """Every provider, by name. Raises ``IntegrityError``, ``Sealed``."""
    return list(integrity.check(tx, "sso_providers", tx.all(select(sso_providers).order_by(_P.name)), whole=True))


def put_provider(tx: Tx, name: str, **values: Any) -> None:
    """Insert or replace a provider's settings (sealed). Raises ``Sealed``."""
    integrity.delete(tx, "sso_providers", _P.name == name)
    tx.run(insert(sso_providers).values(name=name, **values))
    integrity.reseal(tx, "sso_providers", _P.name == name)


def delete_provider(tx: Tx, name: str) -> int:
    """Remove a provider; returns how many rows went. Raises ``Sealed``."""
    return integrity.delete(tx, "sso_providers", _P.name == name)


def get_identity(tx: Tx, issuer: str, subject: str) -> Mapping[str, Any] | None:
    """The principal linked to (issuer, subject), or None. Raises ``IntegrityError``, ``Sealed``."""
    row = tx.one(select(sso_identities).where(and_(_I.issuer == issuer, _I.subject == subject)))
    return None if row is None else integrity.check(tx, "sso_identities", [row])[0]


def identities_of_issuer(tx: Tx, issuer: str) -> list[Mapping[str, Any]]:
    """Every identity linked under ``issuer``. Raises ``IntegrityError``, ``Sealed``."""
    rows = tx.all(select(sso_identities).where(_I.issuer == issuer).order_by(_I.subject))
    return list(integrity.check(tx, "sso_identities", rows))


def list_identities(tx: Tx) -> list[Mapping[str, Any]]:
    """Every linked identity. Raises ``IntegrityError``, ``Sealed``."""
    rows = tx.all(select(sso_identities).order_by(_I.issuer, _I.subject))
    return list(integrity.check(tx, "sso_identities", rows, whole=True))


def put_identity(tx: Tx, issuer: str, subject: str, **values: Any) -> None:
    """Link (issuer, subject) to a principal, replacing any link (sealed). Raises ``Sealed``."""
    _replace(tx, sso_identities, and_(_I.issuer == issuer, _I.subject == subject),
             dict(issuer=issuer, subject=subject, **values))


def delete_identity(tx: Tx, issuer: str, subject: str) -> int:
    """Unlink (issuer, subject). Raises ``Sealed``."""
    return integrity.delete(tx, "sso_identities", and_(_I.issuer == issuer, _I.subject == subject))


def group_roles(tx: Tx, issuer: str) -> dict[str, str]:
    """``issuer``'s group → roles (JSON text) mapping. Raises ``IntegrityError``, ``Sealed``."""
    rows = tx.all(select(sso_group_roles).where(_G.issuer == issuer))
    return {r["group_name"]: r["roles"] for r in integrity.check(tx, "sso_group_roles", rows)}


def list_group_roles(tx: Tx) -> list[Mapping[str, Any]]:
    """Every group mapping. Raises ``IntegrityError``, ``Sealed``."""
    rows = tx.all(select(sso_group_roles).order_by(_G.issuer, _G.group_name))
    return list(integrity.check(tx, "sso_group_roles", rows, whole=True))


def put_group_roles(tx: Tx, issuer: str, group: str, **values: Any) -> None:
    """Map ``group`` of ``issuer`` to roles, replacing any mapping (sealed). Raises ``Sealed``."""
    _replace(tx, sso_group_roles, and_(_G.issuer == issuer, _G.group_name == group),
             dict(issuer=issuer, group_name=group, **values))


def _replace(tx: Tx, table: Any, where: Any, values: dict[str, Any]) -> None:
    """The row of ``table`` matching ``where`` replaced by ``values``, its MAC and the digest moved."""
    integrity.delete(tx, table.name, where)
    tx.run(insert(table).values(**values))
    integrity.reseal(tx, table.name, where)


def delete_group_roles(tx: Tx, issuer: str, group: str) -> int:
    """Remove a group mapping. Raises ``Sealed``."""
    return integrity.delete(tx, "sso_group_roles", and_(_G.issuer == issuer, _G.group_name == group))
