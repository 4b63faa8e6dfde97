"""login attempts are reserved before the password check, per account and per source

Revision ID: 0004
Revises: 0003
"""
import sqlalchemy as sa
from alembic import op


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('login_failures') as batch:
        batch.add_column(sa.Column('source', sa.String(64), nullable=False, server_default=''))
        batch.add_column(sa.Column('pending', sa.Boolean(), nullable=False, server_default=sa.false()))
    op.create_index('ix_login_failures_source', 'login_failures', ['principal', 'source', 'ts'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_login_failures_source', table_name='login_failures')
    with op.batch_alter_table('login_failures') as batch:
        batch.drop_column('pending')
        batch.drop_column('source')
