"""Seed a vault with example secrets, rules, users and audit history (idempotent)."""

from __future__ import annotations

import secrets as pysecrets
from datetime import datetime, timedelta, timezone

from ..errors import AccessDenied, Conflict
from ..models import AccessLevel
from ..vault import Vault

ENVIRONMENTS = ("development", "staging", "production", "testing")
SECRETS = [  # name, type, description, tags, rotation days
    ("database_url", "database_url", "Primary PostgreSQL connection string", ["db", "core"], 90),
    ("api_key_stripe", "api_key", "Payments API key", ["payments"], 30),
    ("api_key_openai", "api_key", "LLM provider key", ["ml"], 60),
    ("app/session_secret", "encryption_key", "Signs web sessions", ["web", "core"], 180),
    ("smtp/password", "password", "Outgoing mail relay", ["mail"], None),
]
USERS = {"alice": ["operator"], "bob": ["auditor"], "carol": []}


def role_of(user: str) -> str:
    """How ``serve --demo`` describes a demo user: its roles, or what its rules give it."""
    roles = USERS.get(user)
    if roles is None:
        return "not a demo user"
    return ", ".join(roles) if roles else "no role (reads development app/* secrets by a rule)"


def _value(kind: str, env: str) -> str:
    token = pysecrets.token_urlsafe(24)
    if kind == "database_url":
        return f"postgresql://app:{token}@db.{env}.internal:5432/app"
    return token


def seed_demo(vault: Vault) -> dict[str, str]:
    """Create what is missing; returns one-time passwords of users created now (print them once)."""
    created: dict[str, str] = {}
    now = datetime.now(timezone.utc)
    for env in ENVIRONMENTS:
        for i, (name, kind, desc, tags, days) in enumerate(SECRETS):
            expires = now + timedelta(days=10 + 20 * i) if name.startswith("api_key") else None
            if vault.get_metadata(name, env) is not None:  # unaudited: a second run writes no failed rows
                continue
            try:
                vault.store_secret(name=name, value=_value(kind, env), secret_type=kind, environment=env,
                                   description=desc, tags=tags, rotation_interval_days=days,
                                   expires_at=expires, cas=0)
            except Conflict:  # another process created it just now
                continue
    existing = {p["name"] for p in vault.list_principals()}
    for user, roles in USERS.items():
        if user not in existing:
            password = pysecrets.token_urlsafe(12)
            vault.add_user(user, password, roles, display_name=user.title(), must_change_password=True)
            created[user] = password
    rules = vault.list_rules(subject="carol")
    if not rules:
        vault.grant("carol", [AccessLevel.READ], environment="development", pattern="app/*", subject_kind="user",
                    note="demo: carol reads development app secrets")
        vault.grant("operator", [AccessLevel.READ, AccessLevel.WRITE, AccessLevel.ROTATE], environment="*",
                    pattern="*", subject_kind="role", note="demo: operators manage secrets")
        vault.grant("operator", [AccessLevel.READ], environment="production", pattern="*", effect="deny",
                    subject_kind="role", note="demo: operators never read production values")
        _history(vault)
    return created


def _history(vault: Vault) -> None:
    """A little audit history: reads by an operator, a denial, a rotation."""
    with vault.security_context("alice", "10.0.0.21", "demo-seed", roles=["operator"]):
        vault.get_secret("database_url", "development")
        vault.rotate_secret(name="api_key_stripe", environment="staging")
        try:
            vault.get_secret("database_url", "production")
        except AccessDenied:
            pass
    with vault.security_context("carol", "10.0.0.33", "demo-seed"):
        vault.get_secret("app/session_secret", "development")
        try:
            vault.get_secret("smtp/password", "staging")
        except AccessDenied:
            pass
