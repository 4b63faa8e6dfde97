"""machine identities: AppRole settings, hashed secret ids and hashed tokens

Revision ID: 0007
Revises: 0006
"""
import sqlalchemy as sa
from alembic import op


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'machine_roles',
        sa.Column('principal', sa.String(256), primary_key=True),
        sa.Column('role_id', sa.String(64), nullable=False, unique=True),
        sa.Column('token_ttl', sa.Integer(), nullable=False),
        sa.Column('token_max_ttl', sa.Integer(), nullable=False),
        sa.Column('bound_cidrs', sa.Text(), nullable=False),
        sa.Column('secret_id_uses', sa.Integer(), nullable=False),
        sa.Column('created_at', sa.BigInteger(), nullable=False),
        sa.Column('updated_at', sa.BigInteger(), nullable=False),
    )
    op.create_table(
        'machine_secret_ids',
        sa.Column('id', sa.String(64), primary_key=True),
        sa.Column('accessor', sa.String(32), nullable=False, unique=True),
        sa.Column('principal', sa.String(256), nullable=False),
        sa.Column('created_at', sa.BigInteger(), nullable=False),
        sa.Column('uses_left', sa.Integer()),
        sa.Column('revoked_at', sa.BigInteger()),
    )
    op.create_index('ix_machine_secret_ids_principal', 'machine_secret_ids', ['principal'])
    op.create_table(
        'machine_tokens',
        sa.Column('id', sa.String(64), primary_key=True),
        sa.Column('accessor', sa.String(32), nullable=False, unique=True),
        sa.Column('principal', sa.String(256), nullable=False),
        sa.Column('epoch', sa.Integer(), nullable=False),
        sa.Column('created_at', sa.BigInteger(), nullable=False),
        sa.Column('expires_at', sa.BigInteger(), nullable=False),
        sa.Column('max_expires_at', sa.BigInteger(), nullable=False),
        sa.Column('revoked_at', sa.BigInteger()),
        sa.Column('client_ip', sa.String(64)),
    )
    op.create_index('ix_machine_tokens_principal', 'machine_tokens', ['principal'])


def downgrade() -> None:
    op.drop_index('ix_machine_tokens_principal', table_name='machine_tokens')
    op.drop_table('machine_tokens')
    op.drop_index('ix_machine_secret_ids_principal', table_name='machine_secret_ids')
    op.drop_table('machine_secret_ids')
    op.drop_table('machine_roles')
