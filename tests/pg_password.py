"""A PostgreSQL role that must log in with its password (the shared test server trusts everyone else).

    from tests.pg_password import pg_password_server, pg_app_role  # noqa: F401  (fixtures)

``pg_hba.conf`` gets one line, first: members of ``vault_pw_login`` connecting over TCP need
SCRAM-SHA-256. Roles made by ``pg_app_role`` are such members; everything else is unchanged.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
import pytest
from psycopg import sql

from tests.pgserver import PgServer, PgTarget, start_postgres

GROUP = "vault_pw_login"
HBA_LINE = f"host all +{GROUP} 127.0.0.1/32 scram-sha-256\n"


@dataclass
class AppRole:
    """A login role with a password on its own database, holding a table ``pets``."""

    server: PgTarget
    database: str
    role: str
    password: str

    def url(self, password: str | None = None) -> str:
        """SQLAlchemy URL; with ``password`` embedded if given (else none)."""
        auth = self.role + (f":{password}" if password else "")
        return f"postgresql+psycopg://{auth}@{self.server.host}:{self.server.port}/{self.database}"

    def login(self, password: str) -> None:
        """A fresh login with ``password`` (raises psycopg.OperationalError when refused)."""
        psycopg.connect(host=self.server.host, port=self.server.port, dbname=self.database, user=self.role,
                        password=password, connect_timeout=10).close()

    def set_password(self, password: str) -> None:
        """ALTER ROLE ... PASSWORD, as the server's admin."""
        with psycopg.connect(self.server.conninfo(), autocommit=True) as conn:
            conn.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(self.role),
                                                                     sql.Literal(password)))


@pytest.fixture(scope="session")
def pg_password_server(pg_server: PgTarget, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PgTarget]:
    """The session's server (or, for an external one, a private server) enforcing passwords for GROUP."""
    server = pg_server if isinstance(pg_server, PgServer) else start_postgres(tmp_path_factory.mktemp("pgpw"))
    hba = server.data_dir / "pg_hba.conf"
    text = hba.read_text()
    if HBA_LINE not in text:
        hba.write_text(HBA_LINE + text)  # keeps its owner: written in place
    with psycopg.connect(server.conninfo(), autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (GROUP,)).fetchone() is None:
            conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(GROUP)))
        conn.execute("SELECT pg_reload_conf()")
    try:
        yield server
    finally:
        if server is not pg_server:
            server.stop()


@pytest.fixture
def pg_app_role(pg_password_server: PgTarget) -> AppRole:
    """A new database and a role ``app_<hex>`` that may read its table ``pets`` (3 rows)."""
    suffix = uuid.uuid4().hex[:10]
    role = AppRole(pg_password_server, f"vault_app_{suffix}", f"app_{suffix}", secrets.token_urlsafe(18))
    pg_password_server.create_database(role.database)
    with psycopg.connect(pg_password_server.conninfo(), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {} IN ROLE {}").format(
            sql.Identifier(role.role), sql.Literal(role.password), sql.Identifier(GROUP)))
    with psycopg.connect(pg_password_server.conninfo(role.database), autocommit=True) as conn:
        conn.execute("CREATE TABLE pets (name text PRIMARY KEY)")
        conn.execute("INSERT INTO pets VALUES ('ada'), ('bob'), ('cyd')")
        conn.execute(sql.SQL("GRANT SELECT ON pets TO {}").format(sql.Identifier(role.role)))
    return role
