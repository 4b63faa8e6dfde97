"""secret counts per environment and type (health without a table scan)

Revision ID: 0002
Revises: 0001
"""
from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('secret_counts',
    sa.Column('environment', sa.String(length=16), nullable=False),
    sa.Column('secret_type', sa.String(length=32), nullable=False),
    sa.Column('n', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('environment', 'secret_type')
    )
    op.execute("INSERT INTO secret_counts (environment, secret_type, n) "
               "SELECT environment, secret_type, COUNT(*) FROM secrets WHERE deleted_at IS NULL "
               "GROUP BY environment, secret_type")


def downgrade() -> None:
    op.drop_table('secret_counts')
