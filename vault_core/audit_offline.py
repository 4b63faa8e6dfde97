"""Verify an exported or streamed audit file (native, OCSF or ECS JSON Lines) without the database.

Each line carries what its MAC covers (native: its own fields plus ``ts`` and ``prev_mac``; OCSF:
``unmapped.vault_row``; ECS: ``labels.vault_row``). A line passes when

1. the event, rebuilt from that content, equals the line (so an edit anywhere in the line is caught,
   not only in the copy the MAC covers; the product version is left out of the comparison);
2. ``HMAC(audit key, content | prev_mac)`` equals its ``mac`` (the audit key: only the vault has it);
3. it chains to the line before it (``seq`` one more, ``prev_mac`` = the previous ``mac``), and a
   file that starts at row 1 starts from the genesis MAC.

A checkpoint (``Vault.audit_checkpoint()``: the seq and MAC of the chain head, saved outside the vault
when the export was taken) must appear in the file with that MAC: this catches a file cut off before it.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from . import audit, audit_formats


@dataclass(frozen=True)
class FileReport:
    """Result of checking a file; ``line`` (1-based) names the first line that fails."""

    ok: bool
    lines_checked: int
    first_seq: int | None
    last_seq: int | None
    line: int | None = None
    problem: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _content(event: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """(format, the chained row) of one parsed line. Raises ``ValueError`` for a line of no known format."""
    if "class_uid" in event:
        return "ocsf", dict(event["unmapped"]["vault_row"])
    if "ecs" in event:
        return "ecs", json.loads(event["labels"]["vault_row"])
    if "seq" in event and "prev_mac" in event:
        return "native", {k: v for k, v in event.items() if k != "timestamp"}
    raise ValueError("not a vault audit event")


def _render(fmt: str, row: dict[str, Any]) -> dict[str, Any]:
    if fmt == "native":
        return audit.native_event(row)
    return audit_formats.to_ocsf(row) if fmt == "ocsf" else audit_formats.to_ecs(row)


def _without_version(fmt: str, event: dict[str, Any]) -> dict[str, Any]:
    """The event without the product version (a file written by another release still verifies)."""
    if fmt != "native":
        event = json.loads(json.dumps(event))
        (event.get("metadata", {}).get("product", {}) if fmt == "ocsf" else event.get("service", {})).pop(
            "version", None)
    return event


def verify_lines(key: bytes, lines: Iterable[str], checkpoint: Mapping[str, Any] | None = None, *,
                 allow_gaps: bool = False) -> FileReport:
    """Check every line (see the module docstring); ``allow_gaps`` accepts a filtered export's missing rows.

    Raises nothing for a bad file: the report names the line.
    """
    prev_seq = prev_mac = first = None
    cp_seq = int(checkpoint["seq"]) if checkpoint else None
    cp_seen = False
    number = checked = 0
    for number, text in enumerate(lines, 1):
        if not text.strip():
            continue

        def bad(problem: str) -> FileReport:
            return FileReport(False, checked, first, prev_seq, number, f"line {number}: {problem}")

        try:
            event = json.loads(text)
            fmt, row = _content(event)
            seq, mac, link = int(row["seq"]), bytes.fromhex(row["mac"]), bytes.fromhex(row["prev_mac"])
            rebuilt = _render(fmt, row)
        except (ValueError, KeyError, TypeError, AttributeError):
            return bad("not a vault audit event (unreadable or incomplete)")
        if _without_version(fmt, rebuilt) != _without_version(fmt, event):
            return bad(f"row {seq} was edited (the event differs from the row its MAC covers)")
        if not hmac.compare_digest(audit.row_mac(key, row, link), mac):
            return bad(f"row {seq} was edited (its MAC does not match)")
        if prev_seq is None:
            if seq == 1 and link != audit.GENESIS_MAC:
                return bad("row 1 does not start the chain")
            first = seq
        elif seq <= prev_seq:
            return bad(f"row {seq} is out of order (after row {prev_seq})")
        elif seq != prev_seq + 1 and not allow_gaps:
            return bad(f"rows {prev_seq + 1}..{seq - 1} are missing before row {seq}")
        elif seq == prev_seq + 1 and link != prev_mac:
            return bad(f"row {seq} does not chain to row {prev_seq} (inserted or replaced)")
        if cp_seq == seq:
            if mac.hex() != checkpoint["mac"]:
                return bad(f"row {seq} differs from the checkpoint")
            cp_seen = True
        prev_seq, prev_mac = seq, mac
        checked += 1
    if cp_seq is not None and not cp_seen:
        return FileReport(False, checked, first, prev_seq, number + 1,
                          f"the checkpoint's row {cp_seq} is not in the file (it ends at row {prev_seq}: cut off?)")
    return FileReport(True, checked, first, prev_seq)
