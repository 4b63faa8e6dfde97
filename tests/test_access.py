"""Access control: deny by default, levels, environments, deny wins, scope of admins, name variants."""

from __future__ import annotations

import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vault_core import AccessDenied, AccessLevel, NotFound, ValidationError, open_vault
from vault_core.access import CompiledRules, Rule

ENV, OTHER = "production", "staging"

# operation name -> (callable(vault, secret_id), level it needs: None = any level)
OPS = {
    "read": (lambda v, sid: v.get_secret("app.db", ENV), AccessLevel.READ),
    "reveal": (lambda v, sid: v.reveal_secret("app.db", ENV), AccessLevel.READ),
    "read_version": (lambda v, sid: v.get_secret("app.db", ENV, version=1), AccessLevel.READ),
    "store_new": (lambda v, sid: v.store_secret("app.new", "n", environment=ENV), AccessLevel.WRITE),
    "store_existing": (lambda v, sid: v.store_secret("app.db", "w", environment=ENV), AccessLevel.WRITE),
    "update_value": (lambda v, sid: v.update_secret("app.db", ENV, value="u"), AccessLevel.WRITE),
    "update_metadata": (lambda v, sid: v.update_secret("app.db", ENV, description="d"), AccessLevel.WRITE),
    "rotate": (lambda v, sid: v.rotate_secret(name="app.db", environment=ENV), AccessLevel.ROTATE),
    "rotate_by_id": (lambda v, sid: v.rotate_secret(sid), AccessLevel.ROTATE),
    "delete": (lambda v, sid: v.delete_secret("app.db", ENV), AccessLevel.ADMIN),
    "purge": (lambda v, sid: v.purge_secret("app.db", ENV), AccessLevel.ADMIN),
    "metadata": (lambda v, sid: v.get_metadata("app.db", ENV), None),
    "versions": (lambda v, sid: v.list_versions("app.db", ENV), None),
    "policy": (lambda v, sid: v.store_secret("app.db", "p", environment=ENV, access_policy={"x": ["read"]}),
               AccessLevel.ADMIN),
}
GRANTS = ["read", "write", "rotate", "admin", "none", "deny"]


def _expected(grant: str, needed: AccessLevel | None, same_env: bool) -> bool:
    if not same_env or grant in ("none", "deny"):
        return False
    if needed is None or grant == "admin":
        return True
    return AccessLevel(grant) == needed


@pytest.mark.parametrize("same_env", [True, False], ids=["same-env", "other-env"])
@pytest.mark.parametrize("grant", GRANTS)
@pytest.mark.parametrize("op", list(OPS))
def test_matrix(tmp_path, grant, op, same_env):
    vault = open_vault(tmp_path / "v", principal="owner")
    sid = vault.store_secret("app.db", "secret-value", environment=ENV)
    env = ENV if same_env else OTHER
    if grant == "deny":
        vault.grant("bob", ["admin"], environment=env, pattern="app.*")
        vault.grant("bob", list(AccessLevel), environment=env, pattern="app.*", effect="deny")
    elif grant != "none":
        vault.grant("bob", [grant], environment=env, pattern="app.*")
    call, needed = OPS[op]
    seq_before = vault.audit_checkpoint()["seq"]
    with vault.security_context("bob", "10.1.1.1"):
        if _expected(grant, needed, same_env):
            call(vault, sid)
        else:
            with pytest.raises(AccessDenied):
                call(vault, sid)
    rows = vault.get_audit_log(principal="bob", limit=5)
    if not _expected(grant, needed, same_env):
        assert rows and rows[0]["outcome"] == "denied" and rows[0]["seq"] > seq_before
        assert vault.get_secret("app.db", ENV) == "secret-value"  # nothing changed
    vault.storage.dispose()


def test_denied_whether_or_not_secret_exists(vault):
    with vault.security_context("mallory"):
        with pytest.raises(AccessDenied) as a:
            vault.get_secret("exists.not", ENV)
    vault.store_secret("exists.yes", "v", environment=ENV)
    with vault.security_context("mallory"):
        with pytest.raises(AccessDenied) as b:
            vault.get_secret("exists.yes", ENV)
    assert str(a.value).replace("exists.not", "X") == str(b.value).replace("exists.yes", "X")


def test_write_only_principal_cannot_read(vault):
    vault.grant("ci", ["write"], environment=ENV, pattern="deploy.*")
    with vault.security_context("ci"):
        vault.store_secret("deploy.token", "t1", environment=ENV)
        vault.update_secret("deploy.token", ENV, value="t2")
        with pytest.raises(AccessDenied):
            vault.get_secret("deploy.token", ENV)
    assert vault.get_secret("deploy.token", ENV) == "t2"


@pytest.mark.parametrize("variant", ["PROD.Secret", "  prod.secret ", "ｐｒｏｄ.secret", "prod.SECRET"])
def test_name_variants_cannot_reach_around_a_deny(vault, variant):
    vault.store_secret("prod.secret", "v", environment=ENV)
    vault.set_roles("eve", ["readers"])
    vault.grant("readers", ["read"], subject_kind="role")
    vault.grant("eve", ["read"], pattern="prod.secret", effect="deny", subject_kind="user")
    with vault.security_context("eve"):
        with pytest.raises(AccessDenied):
            vault.get_secret(variant, ENV)


def test_path_tricks_are_refused_not_normalised_around_rules(vault):
    vault.grant("eve", ["read"], pattern="public.*")
    with vault.security_context("eve"):
        for trick in ("public.x/../secret", "public.x//y", "public..x"):
            with pytest.raises(ValidationError):
                vault.get_secret(trick, ENV)


def test_listing_and_metadata_show_only_what_the_caller_holds(vault):
    for name in ("a.one", "a.two", "b.one"):
        vault.store_secret(name, "value-" + name, environment=ENV, description="desc")
    vault.grant("carol", ["rotate"], environment=ENV, pattern="a.*")
    with vault.security_context("carol"):
        assert [m.name for m in vault.list_secrets()] == ["a.one", "a.two"]
        assert vault.get_metadata("a.one", ENV).description == "desc"
        with pytest.raises(AccessDenied):
            vault.get_metadata("b.one", ENV)
        listed = repr(vault.list_secrets()) + repr(vault.list_versions("a.one", ENV))
        assert "value-" not in listed


def test_scoped_admin_cannot_grant_outside_scope_and_is_audited(vault):
    vault.grant("dana", ["admin"], environment=OTHER, pattern="team.*")
    with vault.security_context("dana"):
        rid = vault.grant("erin", ["read"], environment=OTHER, pattern="team.db")  # inside: fine
        for kwargs in ({"environment": ENV, "pattern": "team.db"}, {"environment": "*", "pattern": "team.*"},
                       {"environment": OTHER, "pattern": "*"}, {"environment": OTHER, "pattern": "other.*"}):
            with pytest.raises(AccessDenied):
                vault.grant("dana", ["admin"], **kwargs)
        with pytest.raises(AccessDenied):
            vault.set_roles("dana", ["admin"])
        vault.revoke(rid)
    denied = vault.get_audit_log(principal="dana", outcome="denied", limit=10)
    assert {r["operation"] for r in denied} == {"rule_add", "roles_set"} and len(denied) == 5


def test_admin_role_sees_everything_but_an_explicit_deny_wins(vault):
    vault.store_secret("x.y", "v", environment=ENV)
    vault.set_roles("root2", ["admin"])
    vault.grant("root2", ["read"], pattern="x.*", effect="deny", subject_kind="user")
    with vault.security_context("root2"):
        vault.rotate_secret(name="x.y", environment=ENV)
        with pytest.raises(AccessDenied):
            vault.get_secret("x.y", ENV)


def test_revoke_takes_effect_in_another_vault_instance(any_vault, tmp_path):
    """Another replica (own engine and compiled-rules cache) sees a change on its next call."""
    any_vault.store_secret("shared", "v", environment=ENV)
    rid = any_vault.grant("svc", ["read"], environment=ENV, pattern="shared")
    url = any_vault.storage.url if any_vault.storage.backend == "postgresql" else None
    replica = open_vault(any_vault.vault_dir, database_url=url, principal="owner")
    with replica.security_context("svc"):
        assert replica.get_secret("shared", ENV) == "v"
    any_vault.revoke(rid)
    with replica.security_context("svc"):
        with pytest.raises(AccessDenied):
            replica.get_secret("shared", ENV)
    replica.storage.dispose()


def test_effective_permissions_and_who_can(vault):
    vault.set_roles("frank", ["ops"])
    r1 = vault.grant("ops", ["read", "rotate"], environment=ENV, pattern="db.*", subject_kind="role")
    vault.grant("frank", ["rotate"], environment=ENV, pattern="db.main", effect="deny", subject_kind="user")
    eff = vault.effective_permissions("frank", ENV, "db.main")
    assert eff["levels"] == ["read"]
    assert f"rule {r1}" in eff["allowed_by"]["read"] and "deny" in eff["denied_by"]["rotate"]
    assert vault.effective_permissions("frank", OTHER, "db.main")["levels"] == []
    who = {w["principal"] for w in vault.who_can("db.main", ENV, "read")}
    assert who == {"owner", "frank"}


def test_strict_mode_refuses_calls_outside_a_context(tmp_path):
    v = open_vault(tmp_path / "v", strict=True, principal="owner")
    with pytest.raises(AccessDenied, match="strict mode"):
        v.get_secret("x")
    with v.security_context("owner"):
        v.store_secret("x", "1")
        assert v.get_secret("x") == "1"


def test_contexts_nest_and_are_per_thread(vault):
    from vault_core import current_context

    seen = {}
    with vault.security_context("outer", "1.1.1.1"):
        with vault.security_context("inner"):
            assert current_context().user_id == "inner"

            def other():
                seen["thread"] = current_context()

            t = threading.Thread(target=other)
            t.start()
            t.join()
        assert current_context().user_id == "outer"
    assert current_context() is None and seen["thread"] is None


def test_principals_and_roles_are_audited(vault):
    vault.add_principal("svc.payments", roles=["payments"], kind="service")
    vault.set_roles("svc.payments", ["payments", "ops"])
    ops = [(r["operation"], r["reason"]) for r in vault.get_audit_log(limit=2)]
    assert ops == [("roles_set", "roles=ops,payments"), ("principal_add", "roles=payments")]
    with pytest.raises(NotFound):
        vault.revoke(9999)


# -- properties of rule evaluation ---------------------------------------------------------------

LEVELS = st.sampled_from(list(AccessLevel))
rule_st = st.builds(
    lambda i, subj, env, pat, levels, effect: Rule(i, "user", subj, env, pat, frozenset(levels), effect),
    st.integers(1, 10_000), st.sampled_from(["u", "v"]), st.sampled_from(["*", "production", "staging"]),
    st.sampled_from(["*", "db.*", "db.main", "web.*"]), st.sets(LEVELS, min_size=1), st.sampled_from(["allow", "deny"]),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(rule_st, max_size=12), LEVELS, st.sampled_from(["production", "staging"]),
       st.sampled_from(["db.main", "db.other", "web.x"]))
def test_rule_properties(rules, level, env, name):
    compiled = CompiledRules(1, rules, {})
    decision = compiled.check("u", frozenset(), env, name, level)
    mine = [r for r in rules if r.subject == "u" and r.matches(env, name)]
    denies = [r for r in mine if r.effect == "deny" and level in r.levels]
    allows = [r for r in mine if r.effect == "allow" and (level in r.levels or AccessLevel.ADMIN in r.levels)]
    if not mine:
        assert not decision.allowed  # no rule -> denied
    if denies:
        assert not decision.allowed  # a deny anywhere on the path -> denied
    assert decision.allowed == (bool(allows) and not denies)  # allows compose by union


def test_revoke_in_one_process_denies_the_other_on_its_next_call(tmp_path, pg_url):
    """Two processes on one PostgreSQL database: no stale compiled rules survive a revoke."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    vault = open_vault(tmp_path / "v", database_url=pg_url, principal="owner")
    vault.store_secret("shared", "v", environment=ENV)
    rid = vault.grant("svc", ["read"], environment=ENV, pattern="shared")
    go = tmp_path / "go"
    worker = Path(__file__).parent / "workers" / "replica_reader.py"
    proc = subprocess.Popen([sys.executable, str(worker), str(tmp_path / "v"), pg_url, str(go)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)})
    assert proc.stdout.readline().strip() == "ok"  # the replica has compiled and cached the rules
    vault.revoke(rid)
    go.touch()
    out, err = proc.communicate(timeout=120)
    assert out.strip() == "denied", err
    vault.storage.dispose()
