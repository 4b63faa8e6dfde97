"""The audit devices repository and the audit repo's chain-order reads, on SQLite and on PostgreSQL
(the storage contract's ``storage`` fixture)."""

from __future__ import annotations

from tests.test_storage_contract import NOW, storage  # noqa: F401  (fixture)
from vault_core.storage import repos


def _device(tx, name="siem", seq=0, required=True):
    repos.devices.add_device(tx, name=name, kind="socket", format="ocsf", config='{"host":"127.0.0.1","port":1}',
                             required=required, max_lag_s=5, delivered_seq=seq, created_at=NOW, created_by="o")


def test_the_cursor_moves_only_from_where_it_was_and_failures_keep_their_start(storage):
    with storage.transaction() as tx:
        _device(tx)
        _device(tx, "file", required=False)
        assert repos.devices.advance(tx, "siem", 0, 5, NOW + 1) is True
        assert repos.devices.advance(tx, "siem", 0, 9, NOW + 2) is False  # someone else moved it first
        repos.devices.mark_failing(tx, "siem", NOW + 3, "ConnectionRefusedError")
        repos.devices.mark_failing(tx, "siem", NOW + 4, "again")
        row = repos.devices.get_device(tx, "siem")
        assert (row["delivered_seq"], row["failing_since"], row["last_error"]) == (5, NOW + 3, "again")
        assert [r["name"] for r in repos.devices.required_cursors(tx)] == ["siem"]
        assert repos.devices.advance(tx, "siem", 5, 6, NOW + 5)
        assert repos.devices.get_device(tx, "siem")["failing_since"] is None
        assert [d["name"] for d in repos.devices.list_devices(tx)] == ["file", "siem"]
        assert repos.devices.remove_device(tx, "file") and not repos.devices.remove_device(tx, "file")


def test_audit_rows_read_in_chain_order_after_a_seq(storage):
    base = dict(principal="p", roles="", operation="read", outcome="allowed", reason="", forwarded_trusted=False)
    with storage.transaction() as tx:
        for seq in range(1, 8):
            repos.audit.append_audit(tx, dict(base, seq=seq, ts=NOW - seq, prev_mac=bytes(32),
                                              mac=bytes([seq]) * 32, principal="a" if seq % 2 else "b"),
                                     NOW // 86_400_000_000)
        rows = repos.audit.rows_after(tx, 3, 2)
        assert [r["seq"] for r in rows] == [4, 5] and rows[0]["forwarded_trusted"] is False
        found = repos.audit.query_audit_oldest_first(tx, filters={"principal": "a"}, after=1, limit=10)
        assert [r["seq"] for r in found] == [3, 5, 7]  # chain order, even where ts runs backwards
