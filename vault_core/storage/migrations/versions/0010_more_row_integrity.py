"""secret metadata, machine identities and audit devices carry row MACs too (crypto/rows.py)

Like 0009: the columns arrive empty and the vault fills them at its next unlock (it needs the key), once,
audited as ``integrity_init`` — only in the process that ran this upgrade (storage.Storage.upgraded_from).

Revision ID: 0010
Revises: 0009
"""
import sqlalchemy as sa
from alembic import op


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

_TABLES = ('secrets', 'machine_roles', 'machine_secret_ids', 'machine_tokens', 'audit_devices')


def upgrade() -> None:
    for table in _TABLES:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column('mac', sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    for table in _TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_column('mac')
