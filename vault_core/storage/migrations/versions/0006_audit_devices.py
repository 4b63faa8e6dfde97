"""audit devices: streaming destinations of the audit log, each with its durable delivery cursor

Revision ID: 0006
Revises: 0005
"""
import sqlalchemy as sa
from alembic import op


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'audit_devices',
        sa.Column('name', sa.String(64), primary_key=True),
        sa.Column('kind', sa.String(16), nullable=False),
        sa.Column('format', sa.String(16), nullable=False),
        sa.Column('config', sa.Text(), nullable=False),
        sa.Column('required', sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column('max_lag_s', sa.Integer(), nullable=False),
        sa.Column('delivered_seq', sa.BigInteger(), nullable=False),
        sa.Column('created_at', sa.BigInteger(), nullable=False),
        sa.Column('created_by', sa.String(256), nullable=False),
        sa.Column('delivered_at', sa.BigInteger()),
        sa.Column('failing_since', sa.BigInteger()),
        sa.Column('last_error', sa.String(300)),
    )


def downgrade() -> None:
    op.drop_table('audit_devices')
