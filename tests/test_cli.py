"""`vault-console` (issue 8): every command through a subprocess, bad input and exit codes."""

from __future__ import annotations

import json
import io
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from vault_core import open_vault
from vault_core.crypto.masterkey import read_key_file
from vault_core.types import US_PER_DAY, Clock, now_us

CANARY = "canary-Cl1-v4lue-never-in-argv"
COMMANDS = ("init", "status", "serve", "put", "get", "list", "delete", "undelete", "purge", "rotate", "rotate-due", "run", "import-toml", "export",
            "audit", "backup", "restore", "export-key", "health", "metrics", "users", "rekey")


def _env(path: Path, extra: dict | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VAULT_")}
    env.update({"VAULT_PATH": str(path), "VAULT_PRINCIPAL": "ops"}, **(extra or {}))
    return env


def vc(path: Path, *args: str, stdin: str | bytes | None = None, extra: dict | None = None):
    """Run ``python -m vault_core.cli`` as the principal ``ops`` on the vault at ``path``."""
    return subprocess.run([sys.executable, "-m", "vault_core.cli", *args], env=_env(path, extra),
                          input=stdin.encode() if isinstance(stdin, str) else stdin,
                          capture_output=True, timeout=120)


def out(result) -> str:
    return result.stdout.decode()


def err(result) -> str:
    return result.stderr.decode()


def store(path: Path, *items: tuple[str, str, str], url: str | None = None) -> None:
    """Set-up done in-process (fast): (name, value, environment) as the owner ``ops``."""
    v = open_vault(path, principal="ops", database_url=url)
    for name, value, env in items:
        v.store_secret(name, value, environment=env)
    v.storage.dispose()


@pytest.fixture
def vpath(tmp_path) -> Path:
    path = tmp_path / "v"
    store(path)
    return path


def test_init_creates_private_files_and_status_reports(tmp_path):
    vpath = tmp_path / "v"
    r = vc(vpath, "--json", "init")
    assert r.returncode == 0, err(r)
    assert json.loads(out(r))["owner"] == "ops"
    assert stat.S_IMODE(vpath.stat().st_mode) == 0o700
    assert stat.S_IMODE((vpath / "master.key").stat().st_mode) == 0o600
    assert stat.S_IMODE((vpath / "vault.db").stat().st_mode) == 0o600
    store(vpath, ("db.url", "x", "staging"))
    r = vc(vpath, "status", "--json")  # options work after the command too
    status = json.loads(out(r))
    assert r.returncode == 0 and status["sealed"] is False and status["backend"] == "sqlite"
    assert status["key_terms"][0]["term"] == 1 and status["by_environment"] == {"staging": 1}


def test_put_reads_stdin_get_reveals_only_on_request(vpath):
    r = vc(vpath, "--log-level", "DEBUG", "put", "db.password", "--env", "production", "--type", "password",
           "--tag", "team-a", stdin=CANARY + "\n")
    assert r.returncode == 0, err(r)
    assert re.search(r"^version +1$", out(r), re.M) and CANARY not in out(r) + err(r)
    for line in err(r).splitlines():  # logs are JSON lines without the value
        assert json.loads(line)["logger"].startswith("vault_core")
    meta = vc(vpath, "--json", "get", "db.password", "--env", "production")
    assert meta.returncode == 0 and CANARY not in out(meta)
    assert json.loads(out(meta))["tags"] == ["team-a"]
    shown = vc(vpath, "get", "db.password", "--env", "production", "--reveal")
    assert shown.returncode == 0 and out(shown) == CANARY + "\n"  # the trailing newline of stdin was dropped
    listed = vc(vpath, "--json", "list")
    assert [row["name"] for row in json.loads(out(listed))] == ["db.password"] and CANARY not in out(listed)
    v = open_vault(vpath, principal="ops")
    reveals = v.get_audit_log(operation="reveal", limit=5)
    assert [(r["principal"], r["secret_name"]) for r in reveals] == [("ops", "db.password")]
    v.storage.dispose()


def test_bad_input_gets_specific_exit_codes_without_echo(vpath):
    assert vc(vpath, "put", "x", stdin="").returncode == 2  # no value
    bad = vc(vpath, "put", "bad name!", stdin=CANARY)
    assert bad.returncode == 2 and "secret name" in err(bad) and CANARY not in err(bad)
    assert vc(vpath, "get", "missing").returncode == 5
    assert vc(vpath, "put", "--cas", "abc", "x", stdin="v").returncode == 2  # argparse
    store(vpath, ("only", "v", "development"))
    conflict = vc(vpath, "put", "only", "--cas", "0", stdin="w")
    assert conflict.returncode == 6
    denied = vc(vpath, "--principal", "mallory", "get", "only", "--reveal")
    assert denied.returncode == 3 and "mallory" in err(denied)
    assert vc(vpath, "restore", "nothing.db").returncode == 2  # --yes is required
    assert vc(vpath, "export-key").returncode == 2  # --out or --print is required
    v = open_vault(vpath, principal="ops")
    assert v.get_audit_log(principal="mallory", limit=1)[0]["outcome"] == "denied"
    assert v.get_secret("only", "development") == "v"
    v.storage.dispose()


def test_every_command_has_help():
    script = ("import sys\nfrom vault_core.cli import main\n"
              f"for cmd in {COMMANDS!r} + ('audit tail', 'audit verify', 'audit export'):\n"
              "    try:\n        main(cmd.split() + ['--help'])\n    except SystemExit as e:\n"
              "        assert e.code == 0, cmd\n    print('=== ' + cmd)\n")
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    for cmd in COMMANDS:
        assert f"=== {cmd}\n" in r.stdout
    top = subprocess.run([sys.executable, "-m", "vault_core.cli", "--help"], capture_output=True, text=True)
    assert top.returncode == 0 and "Exit codes" in top.stdout and all(c in top.stdout for c in COMMANDS)


def test_run_injects_secrets_into_the_child_only(vpath):
    store(vpath, ("db.password", CANARY, "development"), ("stripe/api-key", "sk_test", "development"),
          ("other.env", "no", "production"))
    probe = "import os; print(os.environ.get('DB_PASSWORD'), os.environ.get('STRIPE_API_KEY'), os.environ.get('OTHER_ENV'))"
    r = vc(vpath, "run", "--", sys.executable, "-c", probe)
    assert r.returncode == 0, err(r)
    assert out(r).split() == [CANARY, "sk_test", "None"]  # one environment only
    assert vc(vpath, "run", "--", sys.executable, "-c", "raise SystemExit(3)").returncode == 3
    assert vc(vpath, "run", "--", "no-such-program-xyz").returncode == 127
    # in-process: the CLI's own environment is never modified
    code = ("import os, sys\nfrom vault_core.cli import main\nbefore = dict(os.environ)\n"
            "rc = main(['run', '--', sys.executable, '-c', 'pass'])\n"
            "assert rc == 0 and dict(os.environ) == before and 'DB_PASSWORD' not in os.environ\nprint('ok')\n")
    r = subprocess.run([sys.executable, "-c", code], env=_env(vpath), capture_output=True, text=True, timeout=120)
    assert r.stdout.strip() == "ok", r.stderr


def test_rotate_and_rotate_due(vpath):
    store(vpath, ("svc.token", "old", "development"))
    r = vc(vpath, "--json", "rotate", "svc.token", "--generator", "token")
    assert r.returncode == 0 and json.loads(out(r))["version"] == 2
    assert vc(vpath, "rotate", "missing").returncode == 5
    two_days_ago = Clock(lambda: now_us() - 2 * US_PER_DAY)  # stored then, its 1-day rotation is a day overdue
    v = open_vault(vpath, principal="ops", clock=two_days_ago)
    assert v.get_secret("svc.token", "development") not in (None, "old")
    v.store_secret("db.password", "due", environment="production", secret_type="password", rotation_interval_days=1)
    v.storage.dispose()
    due = vc(vpath, "--json", "rotate-due")
    assert due.returncode == 0, err(due)
    report = json.loads(out(due))
    assert report["rotated"] == 1 and report["failed"] == 0 and "due" not in out(due).split('"')
    v = open_vault(vpath, principal="ops")
    assert v.get_secret("db.password", "production") != "due"
    v.storage.dispose()
    again = vc(vpath, "--json", "rotate-due")
    assert again.returncode == 0 and json.loads(out(again))["rotated"] == 0  # nothing due any more


def test_audit_tail_verify_export(vpath, tmp_path):
    store(vpath, ("a", "v", "development"))
    tail = vc(vpath, "--json", "audit", "tail", "-n", "2", "--operation", "store")
    rows = json.loads(out(tail))
    assert tail.returncode == 0 and [(r["operation"], r["principal"]) for r in rows] == [("store", "ops")]
    cp = tmp_path / "cp.json"
    ok = vc(vpath, "audit", "verify", "--save-checkpoint", str(cp))
    assert ok.returncode == 0 and re.search(r"^ok +yes$", out(ok), re.M) and json.loads(cp.read_text())["seq"] > 0
    assert "] 100%" in err(ok) and " rows" in err(ok)  # the progress bar, on stderr
    assert vc(vpath, "audit", "verify", "--checkpoint", str(cp)).returncode == 0  # checkpoint path works
    target = tmp_path / "audit.csv"
    exp = vc(vpath, "audit", "export", "--format", "csv", "--out", str(target))
    assert exp.returncode == 0 and stat.S_IMODE(target.stat().st_mode) == 0o600
    assert target.read_text().splitlines()[0].startswith("seq,timestamp")
    jsonl = vc(vpath, "audit", "export", "--format", "jsonl", "--outcome", "allowed")
    assert all(json.loads(line)["outcome"] == "allowed" for line in out(jsonl).splitlines())
    assert vc(vpath, "--principal", "mallory", "audit", "tail").returncode == 3


def test_backup_restore_and_export_key(vpath, tmp_path):
    store(vpath, ("keep", "before", "development"))
    b = vc(vpath, "--json", "backup", "--dir", str(tmp_path / "b"), "--keep", "3")
    assert b.returncode == 0, err(b)
    backup_file = json.loads(out(b))["path"]
    store(vpath, ("keep", "after", "development"))
    listed = json.loads(out(vc(vpath, "--json", "backup", "--list", "--dir", str(tmp_path / "b"))))
    assert [x["path"] for x in listed] == [backup_file]
    r = vc(vpath, "--json", "restore", backup_file, "--yes")
    assert r.returncode == 0, err(r)
    corrupt = Path(backup_file)
    corrupt.write_bytes(corrupt.read_bytes()[:-100])
    assert vc(vpath, "restore", backup_file, "--yes").returncode == 8
    v = open_vault(vpath, principal="ops")
    assert v.get_secret("keep", "development") == "before"  # restored, and the corrupt restore changed nothing
    assert [r["outcome"] for r in v.get_audit_log(operation="restore", limit=2)] == ["failed", "allowed"]
    v.storage.dispose()
    key_file = tmp_path / "exported.key"
    k = vc(vpath, "export-key", "--out", str(key_file))
    assert k.returncode == 0 and stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert read_key_file(key_file) == read_key_file(vpath / "master.key")
    printed = vc(vpath, "export-key", "--print")
    assert printed.returncode == 0 and len(out(printed).strip()) == 44
    assert vc(vpath, "--principal", "mallory", "export-key", "--print").returncode == 3


def test_backup_and_restore_on_postgresql(tmp_path, pg_url):
    path = tmp_path / "v"
    extra = {"VAULT_DATABASE_URL": pg_url}
    store(path, ("pg.secret", "one", "development"), url=pg_url)
    b = vc(path, "--json", "backup", extra=extra)
    assert b.returncode == 0, err(b)
    backup_file = json.loads(out(b))["path"]
    assert backup_file.endswith(".jsonl") and Path(backup_file).parent == path / "backups"
    store(path, ("pg.secret", "two", "development"), url=pg_url)
    assert vc(path, "restore", backup_file, "--yes", extra=extra).returncode == 0
    v = open_vault(path, principal="ops", database_url=pg_url)
    assert v.get_secret("pg.secret", "development") == "one" and v.verify_audit_log().ok
    v.storage.dispose()


def test_import_toml_and_export(vpath, tmp_path):
    src = tmp_path / "secrets.toml"
    src.write_text('api_key = "k-123"\n[db]\npassword = "pw"\nport = 5432\n')
    r = vc(vpath, "--json", "import-toml", str(src), "--env", "staging")
    assert r.returncode == 0, err(r)
    bad = tmp_path / "bad.toml"
    bad.write_text("this is = = not toml")
    assert vc(vpath, "import-toml", str(bad)).returncode == 2
    exp = vc(vpath, "export", "--env", "staging", "--format", "env")
    assert exp.returncode == 0 and "DB_PASSWORD='pw'" in out(exp) and "WARNING" in err(exp)
    target = tmp_path / "out.toml"
    assert vc(vpath, "export", "--env", "staging", "--out", str(target)).returncode == 0
    assert stat.S_IMODE(target.stat().st_mode) == 0o600 and "port = 5432" in target.read_text()


def test_users_commands(vpath):
    add = vc(vpath, "--json", "users", "add", "alice", "viewer", stdin="correct horse battery staple\n")
    assert add.returncode == 0, err(add)
    assert json.loads(out(add))["roles"] == ["viewer"] and "staple" not in out(add) + err(add)
    assert vc(vpath, "users", "passwd", "alice", stdin="another long passphrase\n").returncode == 0
    assert vc(vpath, "users", "lock", "alice").returncode == 0
    assert vc(vpath, "users", "unlock", "alice").returncode == 0
    roles = vc(vpath, "--json", "users", "roles", "alice", "auditor", "viewer")
    assert roles.returncode == 0 and json.loads(out(roles))["roles"] == ["auditor", "viewer"]
    assert "alice" in out(vc(vpath, "users", "list"))
    assert vc(vpath, "users", "lock", "nobody").returncode == 5
    assert vc(vpath, "--principal", "alice", "users", "lock", "ops").returncode == 3
    v = open_vault(vpath, principal="ops")
    ops = [r["operation"] for r in v.get_audit_log(principal="ops", limit=20)]
    assert {"user_add", "password_set", "user_lock", "user_unlock", "roles_set"} <= set(ops)
    v.storage.dispose()


def test_rekey_command(vpath):
    store(vpath, *[(f"s{i}", f"value-{i}", "development") for i in range(5)])
    r = vc(vpath, "--json", "rekey", "--batch", "2")
    assert r.returncode == 0, err(r)
    job = json.loads(out(r))
    assert job["new_term"] == 2 and job["done"] == 5 and job["retired"] == [1]
    assert "[" + "#" * 30 + "] 5/5" in err(r)  # the progress bar reached the end
    old_key = (vpath / "master.key").read_bytes()
    m = vc(vpath, "rekey", "--resume", "--master-key")
    assert m.returncode == 0, err(m)
    assert (vpath / "master.key").read_bytes() != old_key
    v = open_vault(vpath, principal="ops", create=False)
    assert [v.get_secret(f"s{i}", "development") for i in range(5)] == [f"value-{i}" for i in range(5)]
    assert max(t["term"] for t in v.key_terms() if t["active"]) == 2
    v.storage.dispose()
    assert vc(vpath, "--principal", "mallory", "rekey").returncode == 3


TIME = r"\d{4}-\d\d-\d\d \d\d:\d\d UTC"  # the console's format (console/fmt.py), in UTC


def no_reprs(text: str) -> None:
    """Human output: no Python reprs (dicts, None, True/False), no ISO 8601 or epoch times."""
    assert not re.search(r"[{}\[\]']|\bNone\b|\bTrue\b|\bFalse\b|\d{4}-\d\d-\d\dT|\b1\d{15}\b", text), text


def columns(line: str) -> list[int]:
    """Where each column of an aligned table line starts."""
    return [m.start() for m in re.finditer(r"(?:^|(?<=  ))\S", line)]


def test_listings_are_aligned_tables_for_people_and_json_for_machines(vpath):
    store(vpath, ("db.password", "v1", "production"), ("a.much.longer.secret.name", "v2", "development"))
    text = out(vc(vpath, "list"))
    no_reprs(text)
    header, *rows = text.splitlines()
    assert header.split() == ["environment", "name", "type", "version", "updated", "at", "next", "rotation", "at"]
    assert len(rows) == 2 and all(columns(r)[:4] == columns(header)[:4] for r in rows)  # aligned under the header
    assert all(re.search(TIME, r) for r in rows)
    machine = json.loads(out(vc(vpath, "list", "--json")))
    assert {r["name"] for r in machine} == {"db.password", "a.much.longer.secret.name"}
    assert all(r["next_rotation_at"] is None and "T" in r["updated_at"] for r in machine)  # ISO 8601, null
    shown = out(vc(vpath, "get", "db.password", "--env", "production"))
    no_reprs(shown)
    assert re.search(rf"^created at +{TIME}$", shown, re.M) and re.search(r"^tags *$", shown, re.M)


def test_status_and_health_are_sentences_of_fields_not_reprs(vpath):
    store(vpath, ("db.password", "v1", "production"))
    for command in ("status", "health"):
        r = vc(vpath, command)
        text = out(r)
        no_reprs(text)
        assert re.search(r"^by environment:\n  production +1$", text, re.M), text
        assert re.search(rf"^  1 +{TIME} ", text, re.M), text  # the key terms as a table
        assert isinstance(json.loads(out(vc(vpath, command, "--json")))["by_environment"], dict)
    assert re.search(r"^  term +created at +age +encryptions$", out(vc(vpath, "health")), re.M)


def test_delete_undelete_and_purge(vpath):
    store(vpath, ("db.password", CANARY, "production"))
    gone = vc(vpath, "delete", "db.password", "--env", "production")
    assert gone.returncode == 0 and "production/db.password" in out(gone) and CANARY not in out(gone)
    assert out(vc(vpath, "list")).strip() == "(none)"
    assert "db.password" in out(vc(vpath, "list", "--deleted"))
    assert vc(vpath, "delete", "db.password", "--env", "production").returncode == 5  # already deleted
    back = vc(vpath, "--json", "undelete", "db.password", "--env", "production")
    assert back.returncode == 0 and json.loads(out(back)) == {"restored": "production/db.password"}
    assert vc(vpath, "undelete", "db.password", "--env", "production").returncode == 5  # not deleted
    refused = vc(vpath, "purge", "db.password", "--env", "production")  # no terminal, no --yes
    assert refused.returncode == 2 and "--yes" in err(refused)
    assert vc(vpath, "--principal", "mallory", "purge", "db.password", "--env", "production",
              "--yes").returncode == 3
    done = vc(vpath, "purge", "db.password", "--env", "production", "--yes")
    assert done.returncode == 0 and "purged" in out(done)
    v = open_vault(vpath, principal="ops")
    assert v.get_metadata("db.password", "production") is None
    done_ops = [r["operation"] for r in v.get_audit_log(name="db.password", limit=50) if r["outcome"] == "allowed"]
    assert done_ops[0] == "purge" and {"delete", "restore"} <= set(done_ops)
    v.storage.dispose()


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("answer, purged", [("y\n", True), ("\n", False), ("no\n", False)])
def test_purge_asks_on_a_terminal(vpath, monkeypatch, capsys, answer, purged):
    from vault_core.cli import main

    store(vpath, ("db.password", "v", "production"))
    monkeypatch.setenv("VAULT_PATH", str(vpath))
    monkeypatch.setattr(sys, "stdin", Terminal(answer))
    code = main(["--principal", "ops", "purge", "db.password", "--env", "production"])
    assert "Purge production/db.password and every version? This cannot be undone. [y/N]" in capsys.readouterr().out
    assert code == (0 if purged else 2)
    v = open_vault(vpath, principal="ops")
    assert (v.get_metadata("db.password", "production") is None) == purged
    v.storage.dispose()
