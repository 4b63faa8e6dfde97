"""Principals, roles and rules, and the questions humans ask about them."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from ..access import ANY_ENV, Rule, parse_levels, rule_from_row
from ..errors import Conflict, NotFound, ValidationError
from ..types import AccessLevel
from ..storage import repos
from ..validate import canonical_name, canonical_pattern, canonical_principal, check_int, check_roles
from ..types import Clock
from .runner import Runner, environment_value

KINDS = ("user", "service")


class AccessService:
    """Manage who may do what. Every change needs ADMIN on its scope and is audited."""

    def __init__(self, runner: Runner, clock: Clock):
        self._runner, self._clock = runner, clock

    def _check_env(self, environment: Any) -> str:
        return ANY_ENV if environment in (None, ANY_ENV) else environment_value(environment)

    def add_principal(self, name: str, *, roles: Iterable[str] = (), kind: str = "user",
                      display_name: str = "", email: str = "") -> str:
        """Create a user or service identity; returns its canonical name. Needs the admin role.

        Raises ``Sealed``, ``AccessDenied`` (not admin), ``ValidationError``, ``Conflict`` (exists), ``StorageError``.
        """
        if kind not in KINDS:
            raise ValidationError(f"kind must be one of {', '.join(KINDS)}")
        return self.create_principal("principal_add", name, roles, kind=kind, display_name=display_name,
                                      email=email)

    def create_principal(self, operation: str, name: str, roles: Iterable[str], *, display_name: str,
                          email: str, **columns: Any) -> str:
        """Insert a new principal in an audited attempt (admin role); shared by users and services.

        Raises ``AccessDenied`` (not admin), ``ValidationError``, ``Conflict`` (exists), ``StorageError``.
        """
        principal = canonical_principal(name)
        role_list = check_roles(roles)
        for text in (display_name, email):
            if not isinstance(text, str) or len(text) > 256 or "\x00" in text:
                raise ValidationError("display_name and email must be short strings")
        with self._runner.attempt(operation) as att:
            att.name = principal
            att.require_role("admin")
            if repos.principals.get_principal(att.tx, principal) is not None:
                raise Conflict(f"principal {principal} already exists")
            now = self._clock()
            repos.principals.insert_principal(att.tx, name=principal, display_name=display_name, email=email,
                                              roles=json.dumps(role_list), created_at=now, updated_at=now, **columns)
            repos.state.bump_rules_version(att.tx)
            att.reason = f"roles={','.join(role_list)}"
        return principal

    def set_roles(self, name: str, roles: Iterable[str]) -> list[str]:
        """Replace a principal's roles (created as a user if unknown). Needs the admin role.

        Raises ``Sealed``, ``AccessDenied`` (not admin), ``ValidationError``, ``StorageError``.
        """
        principal = canonical_principal(name)
        role_list = check_roles(roles)
        with self._runner.attempt("roles_set") as att:
            att.name = principal
            att.require_role("admin")
            now = self._clock()
            row = repos.principals.get_principal(att.tx, principal)
            if row is None:
                repos.principals.insert_principal(att.tx, name=principal, kind="user", roles=json.dumps(role_list),
                                                  created_at=now, updated_at=now)
            else:
                # a role change ends older console sessions (their cookies stop working)
                repos.principals.update_principal(att.tx, principal, roles=json.dumps(role_list), updated_at=now,
                                                  session_epoch=row["session_epoch"] + 1)
            repos.state.bump_rules_version(att.tx)
            att.reason = f"roles={','.join(role_list)}"
        return role_list

    def get_principal(self, name: str) -> dict[str, Any] | None:
        """A principal's public record (never its password hash).

        Raises ``Sealed``, ``ValidationError``, ``NotFound``, ``StorageError``.
        """
        principal = canonical_principal(name)
        with self._runner.attempt("principal_get", durable=False, audited=False) as att:
            if principal != att.ctx.user_id:
                att.require_role("admin", "auditor")
            row = repos.principals.get_principal(att.tx, principal)
            return None if row is None else _public_principal(row)

    def list_principals(self) -> list[dict[str, Any]]:
        """Every principal's public record. Needs the admin or auditor role.

        Raises ``Sealed``, ``AccessDenied``, ``StorageError``.
        """
        with self._runner.attempt("principal_list", durable=False, audited=False) as att:
            att.require_role("admin", "auditor")
            return [_public_principal(r) for r in repos.principals.list_principals(att.tx)]

    def grant(self, subject: str, levels: Iterable[AccessLevel | str] | AccessLevel | str, *,
              environment: Any = ANY_ENV, pattern: str = "*", effect: str = "allow",
              subject_kind: str = "any", note: str = "") -> int:
        """Add a rule; returns its id. The caller must hold ADMIN over the whole scope it grants.

        Raises ``Sealed``, ``AccessDenied``, ``ValidationError``, ``StorageError``.
        """
        if subject_kind not in ("user", "role", "any"):
            raise ValidationError("subject_kind must be user, role or any")
        if effect not in ("allow", "deny"):
            raise ValidationError("effect must be allow or deny")
        if not isinstance(note, str) or len(note) > 500:
            raise ValidationError("note must be a string of at most 500 characters")
        subj = canonical_principal(subject)
        level_set = parse_levels(levels)
        env = self._check_env(environment)
        pat = canonical_pattern(pattern) if pattern != "*" else "*"
        with self._runner.attempt("rule_add") as att:
            att.environment, att.name = (None if env == ANY_ENV else env), pat
            if not att.rules.covers(att.ctx.user_id, att.roles, env, pat):
                from ..errors import AccessDenied

                raise AccessDenied(f"{att.ctx.user_id} does not hold ADMIN over {env}/{pat}, so cannot grant there")
            rule_id = repos.rules.insert_rule(att.tx, subject_kind=subject_kind, subject=subj, environment=env,
                                              pattern=pat,
                                              levels=",".join(sorted(lv.value for lv in level_set)), effect=effect,
                                              secret_id=None, created_at=self._clock(), created_by=att.ctx.user_id,
                                              note=note)
            repos.state.bump_rules_version(att.tx)
            att.reason = f"rule {rule_id}: {effect} {','.join(sorted(lv.value for lv in level_set))} " \
                         f"to {subject_kind} {subj}"
            return rule_id

    def revoke(self, rule_id: int) -> None:
        """Remove a rule. The caller must hold ADMIN over the rule's scope.

        Raises ``Sealed``, ``AccessDenied``, ``ValidationError``, ``NotFound``, ``StorageError``.
        """
        check_int(rule_id, "rule_id")
        with self._runner.attempt("rule_remove") as att:
            row = repos.rules.get_rule(att.tx, rule_id)
            if row is None:
                raise NotFound(f"no rule {rule_id}")
            rule = rule_from_row(row)
            att.environment = None if rule.environment == ANY_ENV else rule.environment
            att.name = rule.pattern
            if not att.rules.covers(att.ctx.user_id, att.roles, rule.environment, rule.pattern):
                from ..errors import AccessDenied

                raise AccessDenied(f"{att.ctx.user_id} does not hold ADMIN over {rule.environment}/{rule.pattern}")
            repos.rules.delete_rule(att.tx, rule_id)
            repos.state.bump_rules_version(att.tx)
            att.reason = rule.describe()

    def list_rules(self, *, subject: str | None = None, environment: Any = None,
                   effect: str | None = None) -> list[Rule]:
        """Rules (built-in first), filtered. Needs the admin or auditor role.

        Raises ``Sealed``, ``AccessDenied``, ``ValidationError``, ``StorageError``.
        """
        env = None if environment is None else self._check_env(environment)
        with self._runner.attempt("rule_list", durable=False, audited=False) as att:
            att.require_role("admin", "auditor")
            out = []
            for rule in att.rules.rules:
                if subject is not None and rule.subject != canonical_principal(subject):
                    continue
                if env is not None and rule.environment not in (env, ANY_ENV):
                    continue
                if effect is not None and rule.effect != effect:
                    continue
                out.append(rule)
            return out

    def effective_permissions(self, principal: str, environment: Any, name: str, *,
                              roles: Iterable[str] = ()) -> dict[str, Any]:
        """Which levels ``principal`` holds on environment/name, and which rule gave or denied each.

        Raises ``Sealed``, ``AccessDenied`` (someone else's, without admin/auditor), ``ValidationError``,
        ``StorageError``.
        """
        who = canonical_principal(principal)
        env = environment_value(environment)
        nm = canonical_name(name)
        extra = frozenset(check_roles(roles))
        with self._runner.attempt("rule_query", durable=False, audited=False) as att:
            if who != att.ctx.user_id:
                att.require_role("admin", "auditor")
            all_roles = att.rules.roles(who, extra)
            granted, allow, _denied, deny = att.rules.evaluate(who, all_roles, env, nm)
            return {
                "principal": who, "roles": sorted(all_roles), "environment": env, "name": nm,
                "levels": sorted(lv.value for lv in granted),
                "allowed_by": {lv.value: allow[lv].describe() for lv in allow},
                "denied_by": {lv.value: deny[lv].describe() for lv in deny},
            }

    def who_can(self, name: str, environment: Any, level: AccessLevel | str = AccessLevel.READ) -> list[dict]:
        """Every known principal and role holding ``level`` on environment/name, with the deciding rule.

        Raises ``Sealed``, ``AccessDenied``, ``ValidationError``, ``StorageError``.
        """
        env = environment_value(environment)
        nm = canonical_name(name)
        lv = AccessLevel.parse(level)
        with self._runner.attempt("rule_query", durable=False, audited=False) as att:
            att.require_role("admin", "auditor")
            out = []
            for who, roles in sorted(att.rules.roles_of.items()):
                decision = att.rules.check(who, roles, env, nm, lv)
                if decision.allowed:
                    out.append({"principal": who, "roles": sorted(roles), "reason": decision.reason})
            return out


def _public_principal(row) -> dict[str, Any]:
    return {"name": row["name"], "kind": row["kind"], "display_name": row["display_name"], "email": row["email"],
            "roles": json.loads(row["roles"]), "locked_until": row["locked_until"], "disabled": row["disabled"],
            "has_password": row["password_hash"] is not None, "created_at": row["created_at"]}
