"""security-relevant rows carry MACs, their tables digests, the state row a MAC (crypto/rows.py)

The columns arrive empty: the vault fills them at its next unlock (it needs the key), once, audited as
``integrity_init`` — and only in the process that ran this upgrade (storage.Storage.upgraded_from).

Revision ID: 0009
Revises: 0007
"""
import sqlalchemy as sa
from alembic import op


revision = '0009'
down_revision = '0007'
branch_labels = None
depends_on = None

_TABLES = ('principals', 'access_rules', 'sessions', 'wrapped_keys', 'two_factor', 'two_factor_roles')


def upgrade() -> None:
    for table in _TABLES:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column('mac', sa.LargeBinary(), nullable=True))
    with op.batch_alter_table('vault_state') as batch:
        batch.add_column(sa.Column('row_digests', sa.Text(), nullable=True))
        batch.add_column(sa.Column('state_mac', sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('vault_state') as batch:
        batch.drop_column('state_mac')
        batch.drop_column('row_digests')
    for table in _TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_column('mac')
