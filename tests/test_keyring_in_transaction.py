"""Issue 16: the barrier never opens a transaction of its own; key terms are loaded in the operation's one."""

from __future__ import annotations

from sqlalchemy import event

from vault_core import open_vault


def _begins(vault) -> list[int]:
    """Counts every transaction the vault's storage begins (SQLAlchemy's public ``begin`` event)."""
    seen: list[int] = []
    event.listen(vault.storage.engine, "begin", lambda conn: seen.append(1))
    return seen


def test_a_term_added_by_another_process_is_loaded_inside_the_reading_transaction(any_vault):
    url = any_vault.storage.url if any_vault.storage.backend == "postgresql" else None
    other = open_vault(any_vault.vault_dir, database_url=url, principal="owner")
    try:
        assert any_vault.get_secret("warm-up") is None  # this process holds term 1 only
        other.rotate_key_term()  # term 2, added by another process
        other.store_secret("fresh", "sealed-under-term-2")
        begins = _begins(any_vault)
        assert any_vault.get_secret("fresh") == "sealed-under-term-2"
        assert len(begins) == 1  # the read's own transaction, no second one for the keyring
        assert [t["term"] for t in any_vault.key_terms()] == [1, 2]
    finally:
        other.storage.dispose()
