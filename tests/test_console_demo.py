"""`serve --demo` data is idempotent: a second seeding writes nothing, not even failed audit rows (issue 18)."""

from __future__ import annotations

from vault_core import open_vault
from vault_core.console.demo import USERS, role_of, seed_demo


def test_a_second_seeding_writes_no_audit_rows_and_no_failures(tmp_path):
    vault = open_vault(tmp_path / "v", principal="owner")
    vault.bcrypt_rounds = 4
    assert set(seed_demo(vault)) == set(USERS)
    before = vault.get_audit_log(limit=1000)
    assert seed_demo(vault) == {}
    after = vault.get_audit_log(limit=1000)
    assert len(after) == len(before)
    assert not [r for r in after if r["outcome"] == "failed"]
    vault.storage.dispose()


def test_each_demo_user_has_a_described_role():
    assert role_of("alice") == "operator" and role_of("bob") == "auditor"
    assert role_of("carol").startswith("no role")
