"""vault_state.change_seq: a counter moved by every change's transaction, never by a read

Caches above the vault (``vault_core.streamlit``) compare it instead of SQLite's ``data_version``,
which also moves at every read's audit commit (storage/change_signal.py).

Revision ID: 0011
Revises: 0010
"""
import sqlalchemy as sa
from alembic import op


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('vault_state') as batch:
        batch.add_column(sa.Column('change_seq', sa.BigInteger(), nullable=False, server_default='0'))


def downgrade() -> None:
    with op.batch_alter_table('vault_state') as batch:
        batch.drop_column('change_seq')
