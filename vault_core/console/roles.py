"""Which console page each role may use (the router registers only these; pages check again).

=========  ==============================================================
role       pages
=========  ==============================================================
admin      every page: Secrets, Rotation, Access, Users, Audit, Health
auditor    Audit, Health, Secrets (metadata only: no reveal, no changes)
operator   Secrets, Rotation
(none)     Secrets (only the secrets the user holds a rule on)
=========  ==============================================================

Everyone logged in also has the Account page (password, sessions, logout).
A page's data is still guarded by the vault: the page list is convenience,
the vault's rules are the enforcement.
"""

from __future__ import annotations

from collections.abc import Iterable

PAGES: dict[str, tuple[str, str, frozenset[str] | None]] = {
    # key: (script, title, roles allowed; None = every logged-in user)
    "secrets": ("pages/secrets.py", "Secrets", None),
    "rotation": ("pages/rotation.py", "Rotation", frozenset({"admin", "operator"})),
    "access": ("pages/access.py", "Access", frozenset({"admin"})),
    "users": ("pages/users.py", "Users", frozenset({"admin"})),
    "audit": ("pages/audit.py", "Audit", frozenset({"admin", "auditor"})),
    "health": ("pages/health.py", "Health", frozenset({"admin", "auditor"})),
    "account": ("pages/account.py", "Account", None),
}
ICONS = {"secrets": ":material/key:", "rotation": ":material/autorenew:", "access": ":material/shield:",
         "users": ":material/group:", "audit": ":material/receipt_long:", "health": ":material/monitoring:",
         "account": ":material/person:"}


def may_use(page: str, roles: Iterable[str]) -> bool:
    """True if a user with ``roles`` may open ``page``."""
    allowed = PAGES[page][2]
    return allowed is None or bool(allowed & set(roles))


def pages_for(roles: Iterable[str]) -> list[str]:
    """The page keys a user with ``roles`` may use, in menu order."""
    role_set = set(roles)
    return [key for key in PAGES if may_use(key, role_set)]


def read_only_secrets(roles: Iterable[str]) -> bool:
    """Auditors without another role see secrets' metadata only."""
    role_set = set(roles)
    return "auditor" in role_set and not role_set & {"admin", "operator"}
