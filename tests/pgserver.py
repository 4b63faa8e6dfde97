"""Throwaway PostgreSQL servers for tests (no pytest dependency).

``start_postgres(base_dir)`` runs initdb + pg_ctl from /usr/lib/postgresql/<newest>/bin;
``pg_from_env()`` wraps an existing server given by ``VAULT_TEST_PG_URL``.
"""

from __future__ import annotations

import glob
import os
import pwd
import socket
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
from psycopg import sql

ENV_VAR = "VAULT_TEST_PG_URL"
_LOG_TAIL_LINES = 40


def _find_bin_dir() -> Path:
    """Return the newest /usr/lib/postgresql/<ver>/bin that has initdb and pg_ctl."""
    dirs = [Path(p).parent for p in glob.glob("/usr/lib/postgresql/*/bin/initdb")]
    dirs = [d for d in dirs if (d / "pg_ctl").exists()]
    if not dirs:
        raise RuntimeError("PostgreSQL binaries not found in /usr/lib/postgresql/*/bin "
                           "(apt-get install -y postgresql-15)")
    return max(dirs, key=lambda d: [int(x) for x in d.parent.name.split(".") if x.isdigit()])


def _free_port() -> int:
    """Ask the kernel for a currently free TCP port on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _make_traversable(path: Path) -> None:
    """Add o+x to path and its parents we own, so the postgres user can reach path."""
    for p in [path, *path.parents]:
        st = p.stat()
        if st.st_uid == os.geteuid() and not st.st_mode & 0o001:
            os.chmod(p, (st.st_mode & 0o7777) | 0o001)


class PgTarget:
    """A server we can create databases on; subclasses supply the admin conninfo."""

    host = "127.0.0.1"
    port = 5432
    user = "postgres"
    password = ""

    def url(self, dbname: str) -> str:
        """SQLAlchemy URL (psycopg 3 driver) for database ``dbname``."""
        auth = self.user + (f":{self.password}" if self.password else "")
        return f"postgresql+psycopg://{auth}@{self.host}:{self.port}/{dbname}"

    def conninfo(self, dbname: str = "postgres") -> str:
        """libpq URL for psycopg.connect()."""
        return self.url(dbname).replace("postgresql+psycopg://", "postgresql://", 1)

    def create_database(self, name: str) -> None:
        """CREATE DATABASE name (autocommit)."""
        with psycopg.connect(self.conninfo(), autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))

    def drop_database(self, name: str) -> None:
        """DROP DATABASE IF EXISTS name WITH (FORCE)."""
        with psycopg.connect(self.conninfo(), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    def stop(self) -> None:
        """Release the server (no-op for external servers)."""


class EnvPg(PgTarget):
    """An external server from ``VAULT_TEST_PG_URL``; only creates/drops databases."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 5432
        self.user = parts.username or "postgres"
        self.password = parts.password or ""
        self._admin_db = parts.path.lstrip("/") or "postgres"

    def conninfo(self, dbname: str | None = None) -> str:
        return super().conninfo(dbname or self._admin_db)


class PgServer(PgTarget):
    """A private PostgreSQL cluster in ``base_dir`` listening on 127.0.0.1:port."""

    def __init__(self, base_dir: Path, bin_dir: Path, port: int) -> None:
        self.base_dir = base_dir
        self.data_dir = base_dir / "data"
        self.log_file = base_dir / "postgres.log"
        self.bin_dir = bin_dir
        self.port = port
        self.as_root = os.geteuid() == 0
        self.sock_dir = base_dir

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run a PostgreSQL binary (as the postgres user when we are root)."""
        cmd = [str(self.bin_dir / args[0]), *args[1:]]
        if self.as_root:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        env = {**os.environ, "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8"}
        res = subprocess.run(cmd, cwd=self.base_dir, env=env, capture_output=True, text=True,
                             stdin=subprocess.DEVNULL, timeout=120)
        if check and res.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed ({res.returncode}):\n{res.stdout}{res.stderr}"
                               f"\n--- server log tail ---\n{self.log_tail()}")
        return res

    @staticmethod
    def _chown(path: Path) -> None:
        """Give path to the postgres OS user."""
        try:
            pw = pwd.getpwnam("postgres")
        except KeyError:
            raise RuntimeError("running as root but no 'postgres' OS user exists") from None
        os.chown(path, pw.pw_uid, pw.pw_gid)

    def log_tail(self, lines: int = _LOG_TAIL_LINES) -> str:
        """Last lines of the server log (empty if none yet)."""
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def init(self) -> None:
        """initdb and write our settings into postgresql.conf."""
        self.base_dir.mkdir(parents=True, exist_ok=True)
        if self.as_root:
            self._chown(self.base_dir)
            os.chmod(self.base_dir, 0o700)
            _make_traversable(self.base_dir.parent)
        self._run("initdb", "-D", str(self.data_dir), "-U", "postgres", "--auth=trust",
                  "-E", "UTF8", "--locale=C", "--no-sync")
        sock_dir = self.base_dir
        if len(str(sock_dir)) > 80:  # unix socket paths are limited to ~107 bytes
            sock_dir = Path(tempfile.mkdtemp(prefix="pgsock-"))
            if self.as_root:
                self._chown(sock_dir)
        self.sock_dir = sock_dir
        self._write_conf()

    def _write_conf(self) -> None:
        """(Re)write the test settings, including the current port."""
        conf = self.data_dir / "postgresql.auto.conf"
        conf.write_text(
            f"port = {self.port}\nlisten_addresses = '127.0.0.1'\n"
            f"unix_socket_directories = '{self.sock_dir}'\nfsync = on\n"
            "synchronous_commit = on\nmax_connections = 100\n")
        if self.as_root:
            self._chown(conf)

    def start(self) -> None:
        """pg_ctl start -w; raises RuntimeError with the log tail on failure."""
        self._run("pg_ctl", "start", "-w", "-t", "60", "-D", str(self.data_dir), "-l", str(self.log_file))

    def is_running(self) -> bool:
        """True if pg_ctl status reports a running server."""
        return self._run("pg_ctl", "status", "-D", str(self.data_dir), check=False).returncode == 0

    def stop(self) -> None:
        """pg_ctl stop -m fast (no-op if not running)."""
        if self.is_running():
            self._run("pg_ctl", "stop", "-w", "-m", "fast", "-D", str(self.data_dir))

    def stop_immediate(self) -> None:
        """pg_ctl stop -m immediate: simulates a crash (no shutdown checkpoint)."""
        self._run("pg_ctl", "stop", "-w", "-m", "immediate", "-D", str(self.data_dir))

    def restart(self) -> None:
        """Stop (fast, if running) and start again on the same port and data."""
        self.stop()
        self.start()


def start_postgres(base_dir: Path, attempts: int = 3) -> PgServer:
    """initdb + start a PostgreSQL server in ``base_dir``; raise RuntimeError if it cannot start."""
    bin_dir = _find_bin_dir()
    server = PgServer(Path(base_dir).resolve(), bin_dir, _free_port())
    server.init()
    for attempt in range(attempts):
        try:
            server.start()
            return server
        except RuntimeError:
            if attempt == attempts - 1:
                raise
            server.port = _free_port()  # port may have been taken meanwhile
            server._write_conf()
    raise AssertionError("unreachable")


def pg_from_env() -> EnvPg | None:
    """An ``EnvPg`` for ``$VAULT_TEST_PG_URL`` if set, else None."""
    url = os.environ.get(ENV_VAR, "").strip()
    return EnvPg(url) if url else None
