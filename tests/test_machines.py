"""Machine identities (issue 21): AppRole secret ids and tokens, stored hashed, bound, counted, audited."""

from __future__ import annotations

import json

import pytest

from vault_core import open_vault
from vault_core.cli import main as cli
from vault_core.errors import AccessDenied, AccountLocked, LoginFailed, NotFound, ValidationError
from vault_core.types import US


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def vault(request, tmp_path):
    url = request.getfixturevalue("pg_url") if request.param == "postgres" else None
    v = open_vault(tmp_path / "vault", database_url=url, principal="owner")
    yield v
    v.storage.dispose()


def _stored_text(vault) -> str:
    """Every row of the machine tables and the audit log, as text (what a database reader sees)."""
    from sqlalchemy import select

    from vault_core.storage.schema import audit_log, machine_roles, machine_secret_ids, machine_tokens

    with vault.storage.engine.connect() as conn:
        return "\n".join(repr(tuple(row)) for table in (machine_roles, machine_secret_ids, machine_tokens, audit_log)
                         for row in conn.execute(select(table)))


def test_secret_ids_and_tokens_are_stored_as_hashes_only(vault):
    m = vault.machines
    role_id = m.create_machine("web")
    secret_id = m.new_secret_id("web")
    token = m.login(role_id, secret_id, "10.0.0.1").token
    dump = _stored_text(vault)
    assert secret_id not in dump and token not in dump and role_id in dump


def test_rotation_revokes_older_secret_ids_but_not_tokens(vault):
    m = vault.machines
    role_id = m.create_machine("web")
    old = m.new_secret_id("web")
    token = m.login(role_id, old, "10.0.0.1").token
    new = m.new_secret_id("web", revoke_others=True)
    with pytest.raises(LoginFailed):
        m.login(role_id, old, "10.0.0.2")
    assert m.login(role_id, new, "10.0.0.3").token and m.check_token(token) is not None


def test_cidr_binding_and_use_count(vault):
    m = vault.machines
    role_id = m.create_machine("web", bound_cidrs="10.1.0.0/16", secret_id_uses=2)
    secret_id = m.new_secret_id("web")
    with pytest.raises(LoginFailed):
        m.login(role_id, secret_id, "192.168.1.1")
    m.login(role_id, secret_id, "10.1.2.3")
    m.login(role_id, secret_id, "10.1.2.4")
    with pytest.raises(LoginFailed):  # two uses, spent
        m.login(role_id, secret_id, "10.1.2.5")
    reasons = [r["details"] for r in vault.get_audit_log(limit=20) if r["operation"] == "approle_login"]
    assert any("outside the bound CIDRs" in r for r in reasons) and any("no uses left" in r for r in reasons)
    with pytest.raises(ValidationError):
        m.create_machine("bad", bound_cidrs="not-a-net")


def test_ttl_expiry_renewal_up_to_max_and_lock(vault):
    m = vault.machines
    role_id = m.create_machine("web", token_ttl=60, token_max_ttl=100)
    issued = m.login(role_id, m.new_secret_id("web"), "10.0.0.1")
    now = vault.clock()
    vault.clock = lambda: now + 50 * US
    with vault.security_context("web"):
        renewed = m.renew(issued.token, 3600)
    assert renewed.expires_at == issued.info.max_expires_at  # never past the max TTL
    vault.clock = lambda: now + 101 * US
    assert m.check_token(issued.token) is None
    vault.clock = lambda: now
    assert m.check_token(issued.token) is not None
    vault.lock_user("web")  # a lock (and any role change) ends the machine's tokens
    assert m.check_token(issued.token) is None


def test_managing_machines_needs_admin_and_login_is_throttled(vault):
    m = vault.machines
    role_id = m.create_machine("web")
    vault.add_principal("bob")
    with vault.security_context("bob"), pytest.raises(AccessDenied):
        m.new_secret_id("web")
    with pytest.raises(NotFound):
        m.new_secret_id("nobody")
    good = m.new_secret_id("web")
    for _ in range(2):
        with pytest.raises(LoginFailed):
            m.login(role_id, "g" * 43, "10.9.9.9")
    with pytest.raises(AccountLocked):  # refused before any check, even with the right secret id
        m.login(role_id, good, "10.9.9.9")
    assert m.login(role_id, good, "10.9.9.10").token  # another source is not slowed down


def test_deleting_a_machine_ends_its_tokens(vault):
    m = vault.machines
    role_id = m.create_machine("web")
    token = m.login(role_id, m.new_secret_id("web"), "10.0.0.1").token
    m.delete_machine("web")
    assert m.check_token(token) is None and m.list_machines() == []


def test_cli_machines_prints_the_secret_id_once_and_audits_every_step(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("VAULT_PRINCIPAL", "owner")
    monkeypatch.delenv("VAULT_DATABASE_URL", raising=False)
    vault = open_vault(tmp_path / "cli-vault", principal="owner")
    path = str(vault.vault_dir)
    assert cli(["--path", path, "--json", "machines", "create", "api", "--ttl", "120", "--max-ttl", "600"]) == 0
    created = json.loads(capsys.readouterr().out)
    assert vault.machines.login(created["role_id"], created["secret_id"], "10.0.0.1").token
    assert cli(["--path", path, "--json", "machines", "list"]) == 0
    listed = capsys.readouterr().out
    assert created["secret_id"] not in listed and json.loads(listed)[0]["token_ttl"] == 120
    assert cli(["--path", path, "machines", "secret-id", "api", "--rotate"]) == 0
    assert cli(["--path", path, "machines", "revoke-tokens", "api"]) == 0
    assert cli(["--path", path, "machines", "update", "api", "--ttl", "9999"]) == 2  # above the max TTL
    ops = [r["operation"] for r in vault.get_audit_log(limit=20)]
    for op in ("machine_create", "machine_secret_issue", "machine_secret_rotate", "machine_tokens_revoke"):
        assert op in ops
    vault.storage.dispose()
