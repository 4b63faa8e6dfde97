"""The tamper-evident audit log: chained rows, verification, audit hashes, export.

Each row's MAC is HMAC-SHA256(audit key, canonical row content || previous
MAC); the audit key is a random key wrapped by the master key, so it
survives master-key changes. Values never enter a row: to ask "did this
value pass through the vault", compare ``audit_hash(value)`` instead.
"""

from __future__ import annotations

import csv
import hmac
import io
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .types import to_datetime
from .validate import printable

GENESIS_MAC = bytes(32)
_FIELDS = ("seq", "ts", "principal", "roles", "client_ip", "forwarded_for", "forwarded_trusted",
           "user_agent", "session_id", "operation", "environment", "secret_id", "secret_name",
           "version", "outcome", "reason", "value_hash")
EXPORT_FIELDS = ("seq", "timestamp", *_FIELDS[2:], "mac")
# JSON Lines (exports and streams) also carry what a MAC covers exactly: the time in microseconds and the
# previous row's MAC, so each line can be checked on its own (``vault_core.audit_offline``).
JSONL_FIELDS = (*EXPORT_FIELDS, "ts", "prev_mac")
_CSV_DANGEROUS = ("=", "+", "-", "@", "\t", "\r")


_CANONICAL = json.JSONEncoder(separators=(",", ":"), ensure_ascii=True)


def row_mac(key: bytes, row: Mapping[str, Any], prev_mac: bytes) -> bytes:
    """The MAC of one row: its canonical JSON content chained to the previous MAC."""
    content = _CANONICAL.encode([row.get(f) for f in _FIELDS])
    return hmac.digest(key, content.encode() + b"|" + bytes(prev_mac), "sha256")


def make_row(key: bytes, *, seq: int, prev_mac: bytes, **fields: Any) -> dict[str, Any]:
    """A complete audit row (with prev_mac and mac) ready for storage."""
    row = {f: fields.get(f) for f in _FIELDS if f != "seq"}
    row["seq"] = seq
    row["forwarded_trusted"] = bool(row["forwarded_trusted"])
    row["roles"] = row["roles"] or ""
    row["reason"] = printable(row["reason"] or "", 500)
    if row["secret_name"] is not None:
        row["secret_name"] = printable(row["secret_name"], 300)
    row["prev_mac"] = bytes(prev_mac)
    row["mac"] = row_mac(key, row, prev_mac)
    return row


@dataclass(frozen=True)
class VerifyReport:
    """Result of checking the chain. ``first_bad_seq`` names the first row that fails."""

    ok: bool
    rows_checked: int
    head_seq: int
    head_mac: str
    first_bad_seq: int | None = None
    problem: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


RAW_COLUMNS = (*_FIELDS, "prev_mac", "mac")  # a raw row: the stored columns in this order (the table's)
_TRUSTED = _FIELDS.index("forwarded_trusted")
_PREV, _MAC = len(_FIELDS), len(_FIELDS) + 1


def verify_rows(key: bytes, rows: Iterator[Mapping[str, Any]], *, state_seq: int, state_mac: bytes,
                checkpoint: Mapping[str, Any] | None = None) -> VerifyReport:
    """Walk rows (mappings) in sequence order; see ``verify_raw``."""
    batches = ((tuple(r.get(c) for c in RAW_COLUMNS),) for r in rows)
    return verify_raw(key, batches, state_seq=state_seq, state_mac=state_mac, checkpoint=checkpoint)


def verify_raw(key: bytes, batches: Iterator[Sequence[Sequence[Any]]], *, state_seq: int, state_mac: bytes,
               checkpoint: Mapping[str, Any] | None = None,
               progress: Callable[[int, int], Any] | None = None) -> VerifyReport:
    """Walk raw rows (tuples in ``RAW_COLUMNS`` order, in batches) in sequence order; report the first
    edited, missing, inserted or reordered row, or a cut-off tail.

    The MAC of each row is recomputed exactly as ``row_mac`` does, straight from the driver's tuples
    (no mapping per row: a million rows are dominated by per-row overhead). ``progress(done, total)``
    is called after each batch, ``total`` being the head's row count."""
    expected_seq, prev = 1, GENESIS_MAC
    cp_seq = int(checkpoint["seq"]) if checkpoint else None
    encode, digest, same = _CANONICAL.encode, hmac.digest, hmac.compare_digest
    for rows in batches:
        for r in rows:
            seq = r[0]
            if seq != expected_seq:
                kind = "missing (deleted)" if seq > expected_seq else "out of order"
                return _bad(expected_seq - 1, expected_seq, prev, f"row {expected_seq} is {kind}; found row {seq}")
            if bytes(r[_PREV]) != prev:
                return _bad(seq - 1, seq, prev, f"row {seq} does not chain to row {seq - 1} (inserted or reordered)")
            values = list(r[:_PREV])
            values[_TRUSTED] = bool(values[_TRUSTED])  # SQLite hands back 0/1
            mac = bytes(r[_MAC])
            if not same(digest(key, encode(values).encode() + b"|" + prev, "sha256"), mac):
                return _bad(seq - 1, seq, prev, f"row {seq} was edited (its MAC does not match)")
            if cp_seq == seq and bytes.fromhex(checkpoint["mac"]) != mac:
                return _bad(seq - 1, seq, prev, f"row {seq} differs from the saved checkpoint")
            prev = mac
            expected_seq += 1
        if progress is not None:
            progress(expected_seq - 1, state_seq)
    last = expected_seq - 1
    if last != state_seq or prev != bytes(state_mac):
        return _bad(last, last + 1, prev,
                    f"the chain ends at row {last} but the recorded head is row {state_seq} (rows cut off)")
    if cp_seq is not None and last < cp_seq:
        return _bad(last, last + 1, prev, f"the log ends at row {last}, before the checkpoint at row {cp_seq}")
    return VerifyReport(True, last, last, prev.hex())


def _bad(checked: int, seq: int, prev: bytes, problem: str) -> VerifyReport:
    return VerifyReport(False, checked, seq - 1, prev.hex(), seq, problem)


def public_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """A row as the API returns it: seed field names plus every recorded field."""
    out = {f: row[f] for f in _FIELDS}
    out["timestamp"] = to_datetime(row["ts"])
    out["user_id"] = row["principal"]
    out["success"] = row["outcome"] == "allowed"
    out["details"] = row["reason"]
    out["mac"] = bytes(row["mac"]).hex()
    out["prev_mac"] = bytes(row["prev_mac"]).hex()
    return out


def chain_fields(row: Mapping[str, Any]) -> dict[str, Any]:
    """What the row's MAC covers (every recorded field, ``ts`` in microseconds) plus ``prev_mac`` and ``mac``
    as hex: carried in OCSF and ECS events so a line received downstream can be verified offline."""
    out = {f: row.get(f) for f in _FIELDS}
    out["forwarded_trusted"] = bool(out["forwarded_trusted"])
    out["prev_mac"] = _hex(row.get("prev_mac"))
    out["mac"] = _hex(row.get("mac"))
    return out


def _hex(value: Any) -> str:
    return bytes(value).hex() if isinstance(value, (bytes, bytearray, memoryview)) else str(value or "")


def _csv_cell(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(_CSV_DANGEROUS):
        return "'" + value  # neutralise formula injection in spreadsheets
    return value


def export_csv(rows: Iterator[Mapping[str, Any]]) -> Iterator[str]:
    """Stream rows as CSV text chunks, header first, dangerous cells neutralised."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(EXPORT_FIELDS)
    for row in rows:
        writer.writerow([_csv_cell(_export_value(row, f)) for f in EXPORT_FIELDS])
        if buf.tell() > 64_000:
            yield buf.getvalue()
            buf.seek(0)
            buf.truncate()
    yield buf.getvalue()


def native_event(row: Mapping[str, Any]) -> dict[str, Any]:
    """One row as a native JSON Lines object (``JSONL_FIELDS``)."""
    return {f: _export_value(row, f) for f in JSONL_FIELDS}


def export_jsonl(rows: Iterator[Mapping[str, Any]]) -> Iterator[str]:
    """Stream rows as JSON Lines (``JSONL_FIELDS``), in the order given."""
    for row in rows:
        yield json.dumps(native_event(row), ensure_ascii=False) + "\n"


def _export_value(row: Mapping[str, Any], field: str) -> Any:
    if field == "timestamp":
        ts = row.get("timestamp") or to_datetime(row["ts"])
        return ts.isoformat() if ts else None
    value = row.get(field)
    if isinstance(value, (bytes, memoryview)):
        return bytes(value).hex()
    return value


def audit_cursor(row: Mapping[str, Any]) -> str:
    """The cursor that continues after ``row`` (a dict from ``get_audit_log``)."""
    return f"{row['ts']}:{row['seq']}"
