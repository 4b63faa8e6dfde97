"""Alembic environment: runs on the connection the vault hands over."""

from alembic import context

from vault_core.storage.schema import metadata

connection = context.config.attributes.get("connection")
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
