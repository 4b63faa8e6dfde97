"""Import of secrets.toml into the vault, export to TOML and .env."""

from __future__ import annotations

import datetime as dt
import os
import stat
import tomllib

import pytest

from vault_core import AccessDenied, ValidationError
from vault_core.migration import (
    EXPORT_WARNING,
    decode_typed,
    dotenv_quote,
    export_dotenv,
    export_toml,
    import_toml,
    write_private,
)

CANARY = "canary-Mg7-secret"
TOML = f'''
api_key = "{CANARY}"
empty = ""
unicode = "pässwörd ✓"
quotes = "it's \\"quoted\\"\\nsecond line\\ttab \\\\ back"
port = 5432
negative = -17
ratio = 0.125
big = 1e300
debug = true
off = false
when = 1979-05-27T07:32:00Z
local_when = 1979-05-27T07:32:00
day = 1979-05-27
clock = 07:32:00
hosts = ["a.example", "b.example"]
matrix = [[1, 2], ["x", {{ nested = true }}]]

[db]
user = "app"
password = "{CANARY}-db"

[db.replica]
host = "replica.local"

[[servers]]
name = "alpha"
ports = [1, 2]

[[servers]]
name = "beta"
'''


def _count_stores(vault) -> int:
    return len([r for r in vault.get_audit_log(limit=1000) if r["operation"] in ("store", "update")])


def test_round_trip_import_export_parse_equal(any_vault):
    report = import_toml(any_vault, TOML, "staging")
    assert report.unchanged == [] and report.updated == [] and "db.replica.host" in report.created
    exported = export_toml(any_vault, "staging")
    assert tomllib.loads(exported) == tomllib.loads(TOML)
    assert exported.startswith("# " + EXPORT_WARNING)
    # Non-strings are stored as TOML text, tagged with their type.
    meta = any_vault.get_metadata("port", "staging")
    assert any_vault.get_secret("port", "staging") == "5432" and "toml:integer" in meta.tags
    assert any_vault.get_secret("db.password", "staging") == f"{CANARY}-db"
    assert any_vault.get_metadata("api_key", "staging").tags == ()
    assert any_vault.get_secret("api_key", "development") is None  # nothing leaks to other environments


def test_import_from_a_secrets_toml_file(vault, tmp_path):
    path = tmp_path / ".streamlit" / "secrets.toml"
    path.parent.mkdir()
    path.write_text(TOML)
    assert len(import_toml(vault, path, "development").created) == len(
        import_toml(vault, str(path), "development").unchanged)


def test_dry_run_reports_without_writing(vault):
    import_toml(vault, 'a = "1"\nb = 2\n[s]\nc = "x"', "development")
    stores = _count_stores(vault)
    report = import_toml(vault, 'a = "1"\nb = 3\nnew = true\n[s]\nc = "x"', "development", dry_run=True)
    assert report.dry_run and report.changes == {"a": "unchanged", "b": "update", "new": "create",
                                                  "s.c": "unchanged"}
    assert "would create 1, update 1, leave 2 unchanged" in report.summary()
    assert _count_stores(vault) == stores
    assert vault.get_secret("b", "development") == "2" and vault.get_metadata("new", "development") is None
    assert CANARY not in repr(report) and "3" not in str(report.to_dict()["changes"])


def test_reimport_updates_only_changes_and_keeps_metadata(vault):
    import_toml(vault, 'token = "one"\nn = 1', "development")
    vault.update_secret("token", "development", description="kept by re-import", tags=["team:web"])
    report = import_toml(vault, 'token = "two"\nn = 1', "development")
    assert report.changes == {"token": "update", "n": "unchanged"}
    meta = vault.get_metadata("token", "development")
    assert vault.get_secret("token", "development") == "two" and meta.current_version == 2
    assert meta.description == "kept by re-import" and meta.tags == ("team:web",)
    # Same text, other type: an update of the tag (and a new version).
    assert import_toml(vault, 'n = "1"', "development").changes == {"n": "update"}
    assert vault.get_metadata("n", "development").tags == ()


def test_bad_keys_are_refused_before_anything_is_written(vault):
    with pytest.raises(ValidationError) as info:
        import_toml(vault, f'ok = "{CANARY}"\n"bad key" = "{CANARY}"\n"x/../y" = "v"', "development")
    assert "bad key" in str(info.value) and CANARY not in str(info.value)
    assert vault.get_metadata("ok", "development") is None
    with pytest.raises(ValidationError, match="collide"):
        import_toml(vault, 'KEY = "a"\nkey = "b"', "development")
    with pytest.raises(ValidationError, match="not valid TOML") as info:
        import_toml(vault, f'x = "{CANARY}', "development")
    assert CANARY not in str(info.value)


def test_uppercase_keys_fold_to_canonical_names(vault):
    import_toml(vault, 'OPENAI_API_KEY = "k"\n[Database]\nURL = "u"', "development")
    assert vault.get_secret("openai_api_key", "development") == "k"
    assert tomllib.loads(export_toml(vault, "development")) == {"openai_api_key": "k", "database": {"url": "u"}}


def test_import_needs_write_and_is_audited_as_the_caller(vault):
    vault.add_principal("ci")
    vault.grant("ci", ["write"], environment="testing")
    with vault.security_context("ci"):
        report = import_toml(vault, 'a = "1"', "testing")
        assert report.created == ["a"]
        assert import_toml(vault, 'a = "1"', "testing").updated == ["a"]  # write-only: cannot compare
        with pytest.raises(AccessDenied):
            import_toml(vault, 'a = "1"', "production")
    rows = vault.get_audit_log(limit=20, principal="ci")
    assert {r["operation"] for r in rows} >= {"store", "update"}


def test_export_dotenv_names_quotes_and_warning(vault):
    vault.store_secret("db.password", "p'w\"d\n$HOME", environment="development")
    vault.store_secret("api-key", "plain value", environment="development")
    vault.store_secret("blob", b"\x00\x01binary", environment="development")
    import_toml(vault, "port = 5432\nflags = [1, 2]", "production")
    text = export_dotenv(vault, "development")
    assert text.startswith("# " + EXPORT_WARNING)
    lines = [line for line in text.splitlines() if not line.startswith("#")]
    assert lines == ["API_KEY='plain value'", "BLOB='AAFiaW5hcnk='", 'DB_PASSWORD="p\'w\\"d\\n$HOME"']
    assert "Base64-encoded binary values: blob" in text
    assert export_dotenv(vault, "production").splitlines()[-2:] == ["FLAGS='[1, 2]'", "PORT='5432'"]
    vault.store_secret("db_password", "x", environment="development")
    with pytest.raises(ValidationError, match="DB_PASSWORD"):
        export_dotenv(vault, "development")


def test_dotenv_quoting():
    assert dotenv_quote("abc $X") == "'abc $X'"
    assert dotenv_quote("a\\b") == '"a\\\\b"'
    assert dotenv_quote("line1\r\nline2\t") == '"line1\\r\\nline2\\t"'


def test_export_is_audited_and_only_what_the_caller_may_read(vault):
    import_toml(vault, 'public = "p"\n[private]\nkey = "k"', "development")
    vault.add_principal("dev")
    vault.grant("dev", ["read"], environment="development", pattern="public")
    vault.grant("dev", ["write"], environment="development", pattern="private.*")
    with vault.security_context("dev"):
        assert tomllib.loads(export_toml(vault, "development")) == {"public": "p"}
    rows = vault.get_audit_log(limit=20, principal="dev")
    assert [r["operation"] for r in rows[:2]] == ["export", "read"] and rows[1]["secret_name"] == "public"
    assert "toml export of 1 secrets" in rows[0]["details"]


def test_leaf_and_section_with_one_name_survive_a_round_trip(vault):
    vault.store_secret("db", "leaf", environment="development")
    vault.store_secret("db.password", "nested", environment="development")
    parsed = tomllib.loads(export_toml(vault, "development"))
    assert parsed == {"db": "leaf", "db.password": "nested"}
    import_toml(vault, export_toml(vault, "development"), "testing")
    assert vault.get_secret("db.password", "testing") == "nested" and vault.get_secret("db", "testing") == "leaf"


def test_a_quoted_dotted_key_becomes_a_nested_name(vault):
    # Names are dotted paths, so {"a.b" = 1} and [a] b = 1 are the same secret "a.b".
    import_toml(vault, '[db]\n"dotted.key" = "kept"', "development")
    assert vault.get_secret("db.dotted.key", "development") == "kept"
    assert tomllib.loads(export_toml(vault, "development")) == {"db": {"dotted": {"key": "kept"}}}


def test_decode_typed_never_fails_on_a_hand_set_tag():
    assert decode_typed("not toml [", ("toml:integer",)) == "not toml ["
    assert decode_typed("42", ("toml:integer",)) == 42 and decode_typed("42", ()) == "42"
    assert decode_typed("1979-05-27", ("toml:date",)) == dt.date(1979, 5, 27)


def test_write_private_creates_0600_and_replaces_a_readable_file(tmp_path):
    target = tmp_path / "export.env"
    target.write_text("old")
    os.chmod(target, 0o644)
    write_private(target, "SECRET='x'\n")
    assert stat.S_IMODE(target.stat().st_mode) == 0o600 and target.read_text() == "SECRET='x'\n"
    fresh = write_private(tmp_path / "new.toml", "a = 1\n")
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export.env", "new.toml"]  # no temp file left
