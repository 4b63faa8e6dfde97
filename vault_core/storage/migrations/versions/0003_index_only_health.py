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
    with op.batch_alter_table('secrets', schema=None) as batch_op:
        batch_op.drop_index('ix_secrets_counts')
        batch_op.drop_index('ix_secrets_next_rotation')
        batch_op.drop_index('ix_secrets_expires')
        batch_op.create_index('ix_secrets_next_rotation', ['next_rotation_at', 'deleted_at'], unique=False)
        batch_op.create_index('ix_secrets_expires', ['expires_at', 'deleted_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('secrets', schema=None) as batch_op:
        batch_op.drop_index('ix_secrets_expires')
        batch_op.drop_index('ix_secrets_next_rotation')
        batch_op.create_index('ix_secrets_expires', ['expires_at'], unique=False)
        batch_op.create_index('ix_secrets_next_rotation', ['next_rotation_at'], unique=False)
        batch_op.create_index('ix_secrets_counts', ['environment', 'secret_type', 'deleted_at'], unique=False)
