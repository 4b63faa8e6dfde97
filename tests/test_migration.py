"""Import of secrets.toml into the vault, export to TOML and .env."""

from __future__ import annotations

import datetime as dt
import io
import os
import stat
import tomllib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vault_core import AccessDenied, ValidationError, open_vault
from vault_core.migration import (
    EXPORT_WARNING,
    decode_typed,
    dotenv_quote,
    export_docker_env,
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
    assert dotenv_quote("line1\r\nline2\t") == '"line1\\r\\nline2\t"'
    assert dotenv_quote("${HOME}") == '"$${:-}{HOME}"'  # single quotes would not stop the expansion
    assert dotenv_quote("it's ${HOME}") == '"it\'s $${:-}{HOME}"'


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


# -- .env files read back exactly (issue 19) ----------------------------------------------------
HARD_VALUES = ["it's ${HOME}", "${HOME}", "$HOME", "$${HOME}", "${:-}", "${X:-default}", "a $ b $", "$",
               'say "hi"', "back\\slash\\n", "two\nlines\n", "crlf\r\nend", "lone\rcr", "tab\there",
               " padded ", "# not a comment", "x # y", "'single'", "=", "", "pässwörd ✓",
               "-----BEGIN KEY-----\nAAAA\nBBBB\n-----END KEY-----\n"]


def test_python_dotenv_reads_every_value_back_exactly(vault, tmp_path, monkeypatch):
    from dotenv import dotenv_values

    monkeypatch.setenv("HOME", "/should/not/appear")
    monkeypatch.setenv("X", "should-not-appear")
    for i, value in enumerate(HARD_VALUES):
        vault.store_secret(f"v{i:02d}", value, environment="development")
    path = write_private(tmp_path / "app.env", export_dotenv(vault, "development"))
    parsed = dotenv_values(path)  # python-dotenv's defaults: interpolation on, universal newlines
    assert parsed == {f"V{i:02d}": v for i, v in enumerate(HARD_VALUES)}


@settings(max_examples=300, deadline=None)
@given(st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00")))
def test_dotenv_quote_round_trips_any_text(text):
    from dotenv import dotenv_values

    assert dotenv_values(stream=io.StringIO(f"K={dotenv_quote(text)}\n")) == {"K": text}


def docker_env_file(text: str) -> dict[str, str]:
    """``docker run --env-file``'s documented rules: one VAR=VAL per line, lines starting with # are
    comments, blank lines skipped, leading whitespace of a line dropped, and the value is everything
    after the first ``=`` up to the end of the line: no quotes, escapes or expansion."""
    out: dict[str, str] = {}
    for line in text.split("\n"):
        line = line.removesuffix("\r").lstrip()  # Go's bufio.ScanLines drops a trailing \r
        if not line or line.startswith("#"):
            continue
        name, _, value = line.partition("=")
        assert name and not any(c.isspace() for c in name), line
        out[name] = value
    return out


def test_docker_env_file_takes_values_verbatim(vault):
    one_line = [v for v in HARD_VALUES if "\n" not in v and "\r" not in v]
    for i, value in enumerate(one_line):
        vault.store_secret(f"v{i:02d}", value, environment="staging")
    text = export_docker_env(vault, "staging")
    assert text.startswith("# " + EXPORT_WARNING)
    assert docker_env_file(text) == {f"V{i:02d}": v for i, v in enumerate(one_line)}
    assert 'V00=it\'s ${HOME}' in text.splitlines()  # no quoting at all


def test_docker_env_file_refuses_line_breaks_without_echo(vault):
    vault.store_secret("ok", "fine", environment="staging")
    vault.store_secret("cert.pem", "-----BEGIN-----\nsecret-body-Zq1\n", environment="staging")
    with pytest.raises(ValidationError) as refused:
        export_docker_env(vault, "staging")
    assert "cert.pem" in str(refused.value) and "secret-body" not in str(refused.value)
    vault.update_secret("cert.pem", "staging", value="cr\rinside")
    with pytest.raises(ValidationError, match="line break"):
        export_docker_env(vault, "staging")


# -- metadata, "/" paths and the identity round trip (issue 19) ---------------------------------------
META_TOML = '''
motd = """first line
second "line" \\\\ $HOME
"""
port = 5432

[db]
password = "s3cr3t"
url = "postgresql://app@db/app"

[__vault__."db.password"]
type = "password"
tags = ["team:payments", "pci"]
description = "Main database password"

[__vault__.db.url]
type = "database_url"
'''


def _state(vault, env):
    out = {}
    for name in vault.secret_versions(env):
        meta = vault.get_metadata(name, env)
        out[name] = (vault.get_secret(name, env), meta.secret_type, meta.tags, meta.description)
    return out


def test_inline_metadata_sets_type_tags_and_description(vault):
    report = import_toml(vault, META_TOML, "production")
    assert report.created == ["db.password", "db.url", "motd", "port"]
    meta = vault.get_metadata("db.password", "production")
    assert (meta.secret_type, meta.tags, meta.description) == (
        "password", ("team:payments", "pci"), "Main database password")
    url = vault.get_metadata("db.url", "production")
    assert url.secret_type == "database_url" and url.description == "imported from secrets.toml"
    assert vault.get_secret("motd", "production") == 'first line\nsecond "line" \\ $HOME\n'
    assert import_toml(vault, META_TOML, "production").unchanged == ["db.password", "db.url", "motd", "port"]
    assert "__vault__" not in str(vault.secret_versions("production"))


def test_a_sidecar_sets_metadata_and_wins_over_inline(vault, tmp_path):
    sidecar = tmp_path / "secrets.meta.toml"
    sidecar.write_text('["db.password"]\ndescription = "from the sidecar"\ntags = ["ops"]\n')
    import_toml(vault, META_TOML, "production", metadata=sidecar)
    meta = vault.get_metadata("db.password", "production")
    assert (meta.secret_type, meta.tags, meta.description) == ("password", ("ops",), "from the sidecar")
    report = import_toml(vault, META_TOML, "production", metadata={"db.password": {"description": "changed"}})
    assert report.updated == ["db.password"]
    meta = vault.get_metadata("db.password", "production")
    assert meta.description == "changed" and meta.tags == ("team:payments", "pci")  # the inline table's tags
    assert meta.current_version == 2  # an import's change is one new version (value and metadata together)


@pytest.mark.parametrize("bad, match", [
    ('a = "1"\n[__vault__.a]\ntype = "nope"', "type must be one of"),
    ('a = "1"\n[__vault__.a]\ncolour = "red"', "unknown fields colour"),
    ('a = "1"\n[__vault__.b]\ntype = "token"', "not in the file: b"),
    ('a = "1"\n[__vault__.a]\ntags = "x"', "tags must be a list"),
    ('a = "1"\n[__vault__.a]\ntags = ["toml:integer"]', "importer's own"),
    ('a = "!!"\n[__vault__.a]\nencoding = "base64"', "not valid base64"),
    ('a = "1"\n__vault__ = 3', "expected a table"),
    ('"x.y" = "1"\n"x/y" = "2"', "one section path"),
])
def test_bad_metadata_is_refused_before_any_write(vault, bad, match):
    with pytest.raises(ValidationError, match=match):
        import_toml(vault, bad, "development")
    assert not vault.secret_versions("development")


def test_import_export_import_is_the_identity(vault, tmp_path):
    import_toml(vault, TOML.replace("[db]", "[db2]").replace("[db.replica]", "[db2.replica]"), "staging")
    import_toml(vault, META_TOML, "staging")
    vault.store_secret("keys.signing", b"\x00\xffbinary\n", environment="staging", secret_type="encryption_key")
    first = export_toml(vault, "staging", metadata=True)
    other = open_vault(tmp_path / "other", principal="owner")
    try:
        import_toml(other, first, "staging")
        assert _state(other, "staging") == _state(vault, "staging")  # values, types, tags, descriptions
        assert export_toml(other, "staging", metadata=True) == first  # and the file itself
        assert import_toml(other, first, "staging").created == []  # a second import changes nothing
    finally:
        other.storage.dispose()


def test_slash_and_dot_are_one_path_in_import_and_export(vault):
    vault.store_secret("smtp/password", "old", environment="development")
    vault.store_secret("smtp/host", "mail.local", environment="development")
    assert tomllib.loads(export_toml(vault, "development")) == {"smtp": {"host": "mail.local", "password": "old"}}
    report = import_toml(vault, '[smtp]\npassword = "new"\nhost = "mail.local"', "development")
    assert report.changes == {"smtp/host": "unchanged", "smtp/password": "update"}  # updated, not doubled
    assert sorted(vault.secret_versions("development")) == ["smtp/host", "smtp/password"]
    assert vault.get_secret("smtp/password", "development") == "new"
    vault.store_secret("smtp.password", "twin", environment="development")
    with pytest.raises(ValidationError, match="smtp.password and smtp/password"):
        export_toml(vault, "development")
    with pytest.raises(ValidationError, match="one section path"):
        export_dotenv(vault, "development")


def test_cli_import_with_a_sidecar_and_export_with_metadata_and_for_docker(tmp_path, capsys, monkeypatch):
    from vault_core.cli import main

    monkeypatch.setenv("VAULT_PRINCIPAL", "ops")
    vpath = str(tmp_path / "vault")
    (tmp_path / "secrets.toml").write_text('[db]\npassword = "pw $X"\n')
    (tmp_path / "meta.toml").write_text('["db.password"]\ntype = "password"\ntags = ["ops"]\n')
    assert main(["init", "--path", vpath]) == 0
    assert main(["import-toml", str(tmp_path / "secrets.toml"), "--env", "staging", "--path", vpath,
                 "--meta", str(tmp_path / "meta.toml")]) == 0
    capsys.readouterr()
    assert main(["export", "--env", "staging", "--path", vpath, "--with-meta"]) == 0
    exported = tomllib.loads(capsys.readouterr().out)
    assert exported["__vault__"]["db.password"] == {"type": "password", "tags": ["ops"],
                                                    "description": "imported from secrets.toml"}
    assert main(["export", "--env", "staging", "--path", vpath, "--format", "docker-env"]) == 0
    assert "DB_PASSWORD=pw $X\n" in capsys.readouterr().out
