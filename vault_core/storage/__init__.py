"""Storage: tables, engines, migrations and repositories. Sees ciphertext only."""

from .engine import Storage, is_postgres_url, sqlite_url

__all__ = ["Storage", "is_postgres_url", "sqlite_url"]
