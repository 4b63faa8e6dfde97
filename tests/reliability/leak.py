"""Leak scan (design statement 11): a canary value goes through the vault, then is searched for.

Console users too (issue 17): a canary password, the TOTP secret an enrolment shows and its ten
recovery codes go through logins (right, wrong, two-step), password changes and refusals, and are
searched for in the same places.

The canary is stored, read, revealed, rotated (to a second canary), exported (audit), backed up and
pushed through failing calls; afterwards neither value may appear in a log record, an audit row or
export, an exception message, the CLI's output (no ``--reveal``), a backup file, or the raw bytes
of the database (SQLite: vault.db, -wal, -shm; PostgreSQL: every file of the server's data folder).
"""

from __future__ import annotations

import logging
import secrets
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from vault_core import VaultError

from .common import all_audit_rows, database_files, files_containing, open_test_vault, worker_env

ENV = "production"
NAME = "leak/canary"


@dataclass
class LeakFigures:
    places: int = 0
    bytes_scanned: int = 0
    exceptions: int = 0
    log_records: int = 0
    control_found: bool = False
    hits: list[str] = field(default_factory=list)


class _Collect(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record) + repr(record.__dict__))


def run_leak_scan(workdir: Path, url: str | None = None, pg_data_dir: Path | None = None) -> LeakFigures:
    canary, rotated = "CANARY-" + secrets.token_hex(12), "CANARY-ROT-" + secrets.token_hex(12)
    figures = LeakFigures()
    handler = _Collect()
    root, ours = logging.getLogger(), logging.getLogger("vault_core")  # ours may not propagate (logs.py)
    old_level, old_ours = root.level, ours.level
    root.addHandler(handler)
    ours.addHandler(handler)
    root.setLevel(logging.DEBUG)  # every library's debug output, SQLAlchemy's SQL and parameters included
    ours.setLevel(logging.DEBUG)
    logging.getLogger("sqlalchemy.engine").setLevel(logging.INFO)
    texts: list[str] = []
    try:
        vault = open_test_vault(workdir / "vault", url)
        _exercise(vault, canary, rotated, texts, figures)
        user_needles = _exercise_users(vault, texts, figures) + _exercise_sso(vault, texts, figures)
        texts += _cli_outputs(workdir / "vault", url)
        backup_files = _backup(vault, workdir / "backups", texts)
        texts += [repr(r) for r in all_audit_rows(vault)]
        live_files = {p.name: p.read_bytes() for p in database_files(workdir / "vault")}  # -wal before checkpoint
        vault.storage.dispose()
    finally:
        root.removeHandler(handler)
        ours.removeHandler(handler)
        root.setLevel(old_level)
        ours.setLevel(old_ours)
        logging.getLogger("sqlalchemy.engine").setLevel(logging.WARNING)
    texts += handler.lines
    needles = [canary, rotated, *user_needles]
    for i, text in enumerate(texts):
        figures.places += 1
        figures.bytes_scanned += len(text)
        figures.hits += [f"text #{i}: {text[:120]!r}" for n in needles if n in text]
    files = database_files(workdir / "vault") + backup_files
    if pg_data_dir is not None:
        with_checkpoint(url)
        files += [p for p in pg_data_dir.rglob("*") if p.is_file()]
    figures.places += len(files)
    figures.bytes_scanned += sum(p.stat().st_size for p in files if p.exists())
    figures.hits += files_containing(files, [n.encode() for n in needles])
    figures.hits += [f"{name} (while open)" for name, data in live_files.items() for n in needles
                     if n.encode() in data]
    figures.places += len(live_files)
    figures.log_records = len(handler.lines)
    # positive control: the same scan finds the canary where it is expected (a READ holder's copy)
    control = workdir / "control.txt"
    control.write_text(f"revealed: {canary}")
    figures.control_found = bool(files_containing([control], [canary.encode()]))
    control.unlink()
    return figures


def with_checkpoint(url: str | None) -> None:
    """Flush PostgreSQL's buffers to its data files, so a value in clear would be on disk to find."""
    if url:
        from sqlalchemy import create_engine, text

        engine = create_engine(url, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text("CHECKPOINT"))
        engine.dispose()


def _exercise(vault, canary: str, rotated: str, texts: list[str], figures: LeakFigures) -> None:
    def failing(call) -> None:
        try:
            call()
        except VaultError as exc:
            figures.exceptions += 1
            texts.extend([str(exc), repr(exc), repr(exc.args)])

    vault.store_secret(NAME, canary, environment=ENV, description="leak scan", tags=["leak"])
    assert vault.get_secret(NAME, ENV) == canary and vault.reveal_secret(NAME, ENV) == canary
    assert vault.get_secret(NAME, ENV, version=1) == canary
    failing(lambda: vault.store_secret(NAME, canary, environment=ENV, cas=0))        # Conflict
    failing(lambda: vault.update_secret(NAME, ENV, value=canary, cas=99))             # Conflict
    failing(lambda: vault.update_secret(NAME, ENV, value=canary + "\x00"))           # ValidationError
    failing(lambda: vault.store_secret("bad name!", canary, environment=ENV))        # ValidationError
    failing(lambda: vault.update_secret(NAME, ENV, value=canary * 5000))             # too large
    with vault.security_context("intruder", "10.9.8.7"):
        failing(lambda: vault.get_secret(NAME, ENV))                                 # AccessDenied
        failing(lambda: vault.update_secret(NAME, ENV, value=canary))
    vault.rotate_secret(name=NAME, environment=ENV, generator=lambda: rotated)
    assert vault.get_secret(NAME, ENV) == rotated
    failing(lambda: vault.rotate_secret(name=NAME, environment=ENV, generator=lambda: rotated + "\x00"))
    texts += [repr(vault.get_metadata(NAME, ENV)), repr(list(vault.list_secrets())), repr(vault),
              repr(vault.list_versions(NAME, ENV)), repr(vault.verify_audit_log()), repr(vault.status())]
    texts += ["".join(vault.export_audit("csv")), "".join(vault.export_audit("jsonl"))]


def _exercise_users(vault, texts: list[str], figures: LeakFigures) -> list[str]:
    """Passwords and two-factor through the vault; returns what must never be found (password, TOTP
    secret, recovery codes)."""
    import time

    import pyotp

    from vault_core.errors import SecondFactorRequired

    password, changed = "CANARY-PW-" + secrets.token_hex(12), "CANARY-PW2-" + secrets.token_hex(12)
    failing = _failing(texts, figures)

    vault.bcrypt_rounds = 4
    vault.add_user("leaker", password, ["operator"], must_change_password=False)
    failing(lambda: vault.add_user("leaker2", password[:8]))                          # too short
    failing(lambda: vault.verify_login("leaker", password + "x", "10.1.1.1"))         # wrong
    failing(lambda: vault.verify_login("leaker", password * 8, "10.1.1.2"))          # longer than bcrypt
    with vault.security_context("leaker", "10.1.1.3", roles=["operator"]):
        failing(lambda: vault.set_password("leaker", changed, current_password=password + "x"))
        vault.set_password("leaker", changed, current_password=password)
        shown = vault.enrol_two_factor("leaker")
        failing(lambda: vault.confirm_two_factor("leaker", "12345"))
        codes = vault.confirm_two_factor("leaker", pyotp.TOTP(shown["secret"]).now())
        texts.append(repr(vault.two_factor_status("leaker")))
    try:
        vault.verify_login("leaker", changed, "10.1.1.4")
    except SecondFactorRequired as step:
        texts.extend([str(step), repr(step)])
        failing(lambda: vault.complete_login("leaker", step.ticket, "000000", "10.1.1.4"))
        vault.complete_login("leaker", step.ticket, pyotp.TOTP(shown["secret"]).at(time.time() + 30), "10.1.1.4")
        vault.complete_login("leaker", step.ticket, codes[0], "10.1.1.4")
        failing(lambda: vault.complete_login("leaker", step.ticket, codes[0], "10.1.1.4"))  # spent
    texts += [repr(vault.list_principals()), repr(vault.get_audit_log(limit=500))]
    return [password, changed, shown["secret"], *codes]


def _failing(texts: list[str], figures: LeakFigures):
    """A runner of calls expected to fail, keeping every text of their exceptions for the scan."""
    def failing(call) -> None:
        try:
            call()
        except VaultError as exc:
            figures.exceptions += 1
            texts.extend([str(exc), repr(exc), repr(exc.args), repr(vars(exc))])
    return failing


def _exercise_sso(vault, texts: list[str], figures: LeakFigures) -> list[str]:
    """Single sign-on (issue 22): a client secret kept in the vault, logins whose claims carry an ID token
    and its nonce, refusals; returns what must never be found (the client secret, the ID token)."""
    import time

    from vault_core.console.sso import COOKIE_SECRET, auth_secrets, client_secret_name

    client_secret, id_token = "CANARY-CS-" + secrets.token_hex(12), "CANARY-IDT-" + secrets.token_hex(12)
    issuer = "https://idp.example/"
    vault.set_sso_provider("corp", issuer=issuer, client_id="console",
                           server_metadata_url=issuer + ".well-known/openid-configuration")
    vault.map_sso_group("corp", "readers", ["viewer"])
    vault.add_principal("sso-reader")
    vault.link_sso_identity("corp", "sub-1", "sso-reader")
    vault.store_secret(name=client_secret_name("corp"), value=client_secret, environment="production")
    vault.store_secret(name=COOKIE_SECRET, value="cookie-" + secrets.token_hex(16), environment="production")
    assert auth_secrets(vault, "http://localhost/oauth2callback", "production")["auth"]["corp"][
        "client_secret"] == client_secret  # handed to Streamlit in memory: never printed, logged or stored plain

    def claims(**more):
        return {"iss": issuer, "sub": "sub-1", "groups": ["readers"], "iat": int(time.time()), "nonce": id_token,
                "id_token": id_token, **more}

    failing = _failing(texts, figures)
    vault.logout(vault.sso_login("corp", claims(), "10.1.1.9"))
    failing(lambda: vault.sso_login("corp", claims(groups=["nobody"], iat=int(time.time()) + 1), "10.1.1.9"))
    failing(lambda: vault.sso_login("corp", claims(iat=1), "10.1.1.9"))
    texts += [repr(vault.list_sso_providers()), repr(vault.sso_group_mappings())]
    return [client_secret, id_token]


def _cli_outputs(vault_dir: Path, url: str | None) -> list[str]:
    env = {**worker_env(), "VAULT_PATH": str(vault_dir), "VAULT_PRINCIPAL": "owner"}
    if url:
        env["VAULT_DATABASE_URL"] = url
    out = []
    for args in (["--log-level", "DEBUG", "get", NAME, "--env", ENV], ["list", "--env", ENV], ["audit", "tail"],
                 ["--log-level", "DEBUG", "--json", "users", "list"],
                 ["--log-level", "DEBUG", "--json", "status"], ["--log-level", "DEBUG", "rotate", NAME, "--env", ENV]):
        proc = subprocess.run([sys.executable, "-m", "vault_core.cli", *args], capture_output=True, text=True,
                              env=env, timeout=120, stdin=subprocess.DEVNULL)
        out += [proc.stdout, proc.stderr]
    return out


def _backup(vault, folder: Path, texts: list[str]) -> list[Path]:
    if not hasattr(vault, "backup"):
        return []
    texts.append(repr(vault.backup(folder)))
    return [p for p in folder.rglob("*") if p.is_file()]
