"""health counts from index-only scans: due/expiry indexes carry deleted_at; drop the now unused counts index

Revision ID: 0003
Revises: 0002
"""
from alembic import op


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # IF EXISTS: vaults made before ix_secrets_counts joined 0001 (during the first session) lack it
    op.drop_index('ix_secrets_counts', table_name='secrets', if_exists=True)
    op.drop_index('ix_secrets_next_rotation', table_name='secrets')
    op.drop_index('ix_secrets_expires', table_name='secrets')
    op.create_index('ix_secrets_next_rotation', 'secrets', ['next_rotation_at', 'deleted_at'], unique=False)
    op.create_index('ix_secrets_expires', 'secrets', ['expires_at', 'deleted_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_secrets_expires', table_name='secrets')
    op.drop_index('ix_secrets_next_rotation', table_name='secrets')
    op.create_index('ix_secrets_expires', 'secrets', ['expires_at'], unique=False)
    op.create_index('ix_secrets_next_rotation', 'secrets', ['next_rotation_at'], unique=False)
    op.create_index('ix_secrets_counts', 'secrets', ['environment', 'secret_type', 'deleted_at'], unique=False)
