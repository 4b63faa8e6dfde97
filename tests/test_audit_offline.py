"""Offline verification of exported and streamed audit files (issue 23), and oldest-first exports."""

from __future__ import annotations

import csv
import io
import json

import pytest

from vault_core import AccessDenied


@pytest.fixture
def logged(vault):
    for i in range(6):
        vault.store_secret(f"s{i}", f"value-{i}", environment="production")
    vault.get_secret("s1", "production")
    with vault.security_context("mallory", "198.51.100.7"):
        with pytest.raises(AccessDenied):
            vault.get_secret("s1", "production")
    return vault


def _seqs(lines, fmt):
    key = {"jsonl": lambda e: e["seq"], "ocsf": lambda e: e["unmapped"]["seq"], "ecs": lambda e: int(e["labels"]["seq"])}
    return [key[fmt](json.loads(line)) for line in lines]


@pytest.mark.parametrize("fmt", ["jsonl", "ocsf", "ecs"])
def test_exports_are_oldest_first(logged, fmt):
    lines = "".join(logged.export_audit(fmt)).splitlines()
    assert _seqs(lines, fmt) == sorted(_seqs(lines, fmt)) and len(lines) >= 9


def test_csv_export_is_oldest_first_and_the_view_can_go_either_way(logged):
    rows = list(csv.DictReader(io.StringIO("".join(logged.export_audit("csv")))))
    assert [int(r["seq"]) for r in rows] == sorted(int(r["seq"]) for r in rows)
    newest = logged.get_audit_log(limit=4)
    assert [r["seq"] for r in newest] == sorted((r["seq"] for r in newest), reverse=True)
    page1 = logged.get_audit_log(limit=4, oldest_first=True)
    from vault_core.audit import audit_cursor

    page2 = logged.get_audit_log(limit=4, oldest_first=True, cursor=audit_cursor(page1[-1]))
    assert [r["seq"] for r in page1 + page2] == list(range(1, 9))


@pytest.mark.parametrize("fmt", ["jsonl", "ocsf", "ecs"])
def test_an_exported_file_verifies_offline_and_an_edited_line_fails_naming_it(logged, fmt):
    checkpoint = logged.audit_checkpoint()
    lines = "".join(logged.export_audit(fmt)).splitlines(keepends=True)
    report = logged.verify_audit_file(lines, checkpoint)
    assert report.ok and report.lines_checked == len(lines) >= checkpoint["seq"], report
    edited = list(lines)
    edited[2] = edited[2].replace('"owner"', '"someone-else"')  # who did it, in the mapped fields
    assert edited[2] != lines[2]
    report = logged.verify_audit_file(edited, checkpoint)
    assert not report.ok and report.line == 3 and report.problem.startswith("line 3: row 3 was edited"), report
    # the copy the MAC covers, edited consistently with the rest of the line, fails on the MAC
    event = json.loads(lines[4])
    row = {k: v for k, v in event.items() if k != "timestamp"} if fmt == "jsonl" else (event["unmapped"]["vault_row"] if fmt == "ocsf"
                                        else json.loads(event["labels"]["vault_row"]))
    from vault_core import audit_offline

    forged = dict(row, reason="nothing happened")
    rebuilt = audit_offline._render("native" if fmt == "jsonl" else fmt, forged)
    report = logged.verify_audit_file(lines[:4] + [json.dumps(rebuilt) + "\n"] + lines[5:], checkpoint)
    assert not report.ok and report.line == 5 and "MAC does not match" in report.problem


def test_deleted_reordered_and_cut_off_lines_fail(logged):
    checkpoint = logged.audit_checkpoint()
    lines = "".join(logged.export_audit("ocsf")).splitlines(keepends=True)
    gone = logged.verify_audit_file(lines[:3] + lines[4:], checkpoint)
    assert not gone.ok and gone.line == 4 and "missing" in gone.problem
    swapped = logged.verify_audit_file(lines[:3] + [lines[4], lines[3]] + lines[5:], checkpoint)
    assert not swapped.ok and swapped.line == 4
    cut = logged.verify_audit_file(lines[:-2], checkpoint)
    assert not cut.ok and "checkpoint" in cut.problem
    assert logged.verify_audit_file(lines[5:], None).ok  # a file may start mid-chain (a stream)
    assert not logged.verify_audit_file(["not json\n"]).ok
    filtered = "".join(logged.export_audit("jsonl", principal="owner")).splitlines(keepends=True)
    assert not logged.verify_audit_file(filtered).ok and logged.verify_audit_file(filtered, allow_gaps=True).ok


def test_a_streamed_file_verifies_and_only_auditors_may_verify(logged, tmp_path):
    log = tmp_path / "stream.jsonl"
    logged.add_audit_device("f", "file", path=str(log), format="ecs", backfill=True)
    logged.deliver_audit()
    assert logged.verify_audit_file(log.read_text().splitlines(), logged.audit_checkpoint()).ok
    with logged.security_context("mallory"):
        with pytest.raises(AccessDenied):
            logged.verify_audit_file([])
    outcomes = [r["outcome"] for r in logged.get_audit_log(operation="audit_verify_file", limit=2)]
    assert outcomes == ["denied", "allowed"]


def test_cli_verifies_a_file_and_names_the_edited_line(tmp_path):
    from tests.test_cli import err, out, store, vc

    path = tmp_path / "v"
    store(path, ("a", "1", "development"), ("b", "2", "development"))
    export, checkpoint = tmp_path / "audit.ocsf.jsonl", tmp_path / "cp.json"
    assert vc(path, "audit", "verify", "--save-checkpoint", str(checkpoint)).returncode == 0
    assert vc(path, "audit", "export", "--format", "ocsf", "--out", str(export)).returncode == 0
    ok = vc(path, "--json", "audit", "verify", "--file", str(export), "--checkpoint", str(checkpoint))
    assert ok.returncode == 0, err(ok)
    assert json.loads(out(ok))["ok"] is True
    lines = export.read_text().splitlines(keepends=True)
    lines[1] = lines[1].replace('"allowed"', '"denied"', 1)
    export.write_text("".join(lines))
    bad = vc(path, "audit", "verify", "--file", str(export), "--checkpoint", str(checkpoint))
    assert bad.returncode == 8 and "line 2: row 2 was edited" in out(bad)
