"""TOTP two-factor: enrolments (secret sealed under the barrier), hashed recovery codes, roles that require it

Revision ID: 0005
Revises: 0004
"""
import sqlalchemy as sa
from alembic import op


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'two_factor',
        sa.Column('principal', sa.String(256), primary_key=True),
        sa.Column('salt', sa.LargeBinary(16), nullable=False),
        sa.Column('secret', sa.LargeBinary(), nullable=False),
        sa.Column('key_term', sa.Integer(), nullable=False),
        sa.Column('created_at', sa.BigInteger(), nullable=False),
        sa.Column('confirmed_at', sa.BigInteger()),
        sa.Column('last_step', sa.BigInteger()),
    )
    op.create_table(
        'recovery_codes',
        sa.Column('principal', sa.String(256), primary_key=True),
        sa.Column('code_hash', sa.String(64), primary_key=True),
        sa.Column('used_at', sa.BigInteger()),
    )
    op.create_table(
        'two_factor_roles',
        sa.Column('role', sa.String(256), primary_key=True),
        sa.Column('required', sa.Boolean(), nullable=False),
        sa.Column('updated_at', sa.BigInteger(), nullable=False),
        sa.Column('updated_by', sa.String(256), nullable=False),
    )


def downgrade() -> None:
    op.drop_table('two_factor_roles')
    op.drop_table('recovery_codes')
    op.drop_table('two_factor')
