"""single sign-on tables: OIDC providers, linked identities, group -> role mappings (row MACs, crypto/rows.py)

Revision ID: 0012
Revises: 0011
"""
import sqlalchemy as sa
from alembic import op


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'sso_providers',
        sa.Column('name', sa.String(64), primary_key=True),
        sa.Column('issuer', sa.String(512), nullable=False),
        sa.Column('client_id', sa.String(256), nullable=False),
        sa.Column('server_metadata_url', sa.String(1024), nullable=False),
        sa.Column('allow_create', sa.Boolean(), nullable=False),
        sa.Column('trust_idp_mfa', sa.Boolean(), nullable=False),
        sa.Column('updated_at', sa.BigInteger(), nullable=False),
        sa.Column('updated_by', sa.String(256), nullable=False),
        sa.Column('mac', sa.LargeBinary(), nullable=True),
    )
    op.create_table(
        'sso_identities',
        sa.Column('issuer', sa.String(512), primary_key=True),
        sa.Column('subject', sa.String(256), primary_key=True),
        sa.Column('principal', sa.String(256), nullable=False),
        sa.Column('created_at', sa.BigInteger(), nullable=False),
        sa.Column('created_by', sa.String(256), nullable=False),
        sa.Column('last_iat', sa.BigInteger(), nullable=False),
        sa.Column('mac', sa.LargeBinary(), nullable=True),
    )
    op.create_table(
        'sso_group_roles',
        sa.Column('issuer', sa.String(512), primary_key=True),
        sa.Column('group_name', sa.String(256), primary_key=True),
        sa.Column('roles', sa.Text(), nullable=False),
        sa.Column('updated_at', sa.BigInteger(), nullable=False),
        sa.Column('updated_by', sa.String(256), nullable=False),
        sa.Column('mac', sa.LargeBinary(), nullable=True),
    )


def downgrade() -> None:
    for table in ('sso_group_roles', 'sso_identities', 'sso_providers'):
        op.drop_table(table)
