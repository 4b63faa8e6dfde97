"""initial schema

Revision ID: 0001
Revises: 
"""
from alembic import op
import sqlalchemy as sa


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('access_rules',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('subject_kind', sa.String(length=8), nullable=False),
    sa.Column('subject', sa.String(length=256), nullable=False),
    sa.Column('environment', sa.String(length=16), nullable=False),
    sa.Column('pattern', sa.String(length=256), nullable=False),
    sa.Column('levels', sa.String(length=64), nullable=False),
    sa.Column('effect', sa.String(length=8), nullable=False),
    sa.Column('secret_id', sa.String(length=32), nullable=True),
    sa.Column('created_at', sa.BigInteger(), nullable=False),
    sa.Column('created_by', sa.String(length=256), nullable=False),
    sa.Column('note', sa.String(length=512), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('access_rules', schema=None) as batch_op:
        batch_op.create_index('ix_rules_subject', ['subject_kind', 'subject'], unique=False)

    op.create_table('audit_daily',
    sa.Column('day', sa.Integer(), nullable=False),
    sa.Column('operation', sa.String(length=32), nullable=False),
    sa.Column('outcome', sa.String(length=8), nullable=False),
    sa.Column('count', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('day', 'operation', 'outcome')
    )
    op.create_table('audit_log',
    sa.Column('seq', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=False, nullable=False),
    sa.Column('ts', sa.BigInteger(), nullable=False),
    sa.Column('principal', sa.String(length=256), nullable=False),
    sa.Column('roles', sa.String(length=512), nullable=False),
    sa.Column('client_ip', sa.String(length=64), nullable=True),
    sa.Column('forwarded_for', sa.String(length=512), nullable=True),
    sa.Column('forwarded_trusted', sa.Boolean(), nullable=False),
    sa.Column('user_agent', sa.String(length=600), nullable=True),
    sa.Column('session_id', sa.String(length=128), nullable=True),
    sa.Column('operation', sa.String(length=32), nullable=False),
    sa.Column('environment', sa.String(length=16), nullable=True),
    sa.Column('secret_id', sa.String(length=32), nullable=True),
    sa.Column('secret_name', sa.String(length=300), nullable=True),
    sa.Column('version', sa.Integer(), nullable=True),
    sa.Column('outcome', sa.String(length=8), nullable=False),
    sa.Column('reason', sa.String(length=512), nullable=False),
    sa.Column('value_hash', sa.String(length=64), nullable=True),
    sa.Column('prev_mac', sa.LargeBinary(), nullable=False),
    sa.Column('mac', sa.LargeBinary(), nullable=False),
    sa.PrimaryKeyConstraint('seq')
    )
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.create_index('ix_audit_operation_ts', ['operation', 'ts', 'seq'], unique=False)
        batch_op.create_index('ix_audit_principal_ts', ['principal', 'ts', 'seq'], unique=False)
        batch_op.create_index('ix_audit_secret_ts', ['secret_id', 'ts', 'seq'], unique=False)
        batch_op.create_index('ix_audit_ts', ['ts', 'seq'], unique=False)
        batch_op.create_index('ix_audit_value_hash', ['value_hash'], unique=False,
                              sqlite_where=sa.text('value_hash IS NOT NULL'),
                              postgresql_where=sa.text('value_hash IS NOT NULL'))

    op.create_table('leases',
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('holder', sa.String(length=128), nullable=False),
    sa.Column('expires_at', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )
    op.create_table('login_failures',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('principal', sa.String(length=256), nullable=False),
    sa.Column('ts', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('login_failures', schema=None) as batch_op:
        batch_op.create_index('ix_login_failures_principal_ts', ['principal', 'ts'], unique=False)

    op.create_table('principals',
    sa.Column('name', sa.String(length=256), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('display_name', sa.String(length=256), nullable=False),
    sa.Column('email', sa.String(length=256), nullable=False),
    sa.Column('roles', sa.Text(), nullable=False),
    sa.Column('password_hash', sa.String(length=256), nullable=True),
    sa.Column('must_change_password', sa.Boolean(), nullable=False),
    sa.Column('locked_until', sa.BigInteger(), nullable=True),
    sa.Column('disabled', sa.Boolean(), nullable=False),
    sa.Column('session_epoch', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.BigInteger(), nullable=False),
    sa.Column('updated_at', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )
    op.create_table('rekey_jobs',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('target_term', sa.Integer(), nullable=False),
    sa.Column('started_at', sa.BigInteger(), nullable=False),
    sa.Column('finished_at', sa.BigInteger(), nullable=True),
    sa.Column('done', sa.BigInteger(), nullable=False),
    sa.Column('total', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('secrets',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('environment', sa.String(length=16), nullable=False),
    sa.Column('name', sa.String(length=256), nullable=False),
    sa.Column('secret_type', sa.String(length=32), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('tags', sa.Text(), nullable=False),
    sa.Column('salt', sa.LargeBinary(length=16), nullable=False),
    sa.Column('current_version', sa.Integer(), nullable=False),
    sa.Column('previous_version', sa.Integer(), nullable=True),
    sa.Column('max_versions', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.BigInteger(), nullable=False),
    sa.Column('created_by', sa.String(length=256), nullable=False),
    sa.Column('updated_at', sa.BigInteger(), nullable=False),
    sa.Column('updated_by', sa.String(length=256), nullable=False),
    sa.Column('expires_at', sa.BigInteger(), nullable=True),
    sa.Column('rotation_interval_days', sa.Integer(), nullable=True),
    sa.Column('next_rotation_at', sa.BigInteger(), nullable=True),
    sa.Column('last_rotated_at', sa.BigInteger(), nullable=True),
    sa.Column('deleted_at', sa.BigInteger(), nullable=True),
    sa.Column('generator', sa.String(length=128), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('environment', 'name', name='uq_secrets_env_name')
    )
    with op.batch_alter_table('secrets', schema=None) as batch_op:
        batch_op.create_index('ix_secrets_expires', ['expires_at'], unique=False)
        batch_op.create_index('ix_secrets_counts', ['environment', 'secret_type', 'deleted_at'], unique=False)
        batch_op.create_index('ix_secrets_name', ['name'], unique=False)
        batch_op.create_index('ix_secrets_next_rotation', ['next_rotation_at'], unique=False)

    op.create_table('sessions',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('principal', sa.String(length=256), nullable=False),
    sa.Column('created_at', sa.BigInteger(), nullable=False),
    sa.Column('expires_at', sa.BigInteger(), nullable=False),
    sa.Column('revoked_at', sa.BigInteger(), nullable=True),
    sa.Column('epoch', sa.Integer(), nullable=False),
    sa.Column('client_ip', sa.String(length=64), nullable=True),
    sa.Column('user_agent', sa.String(length=600), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('sessions', schema=None) as batch_op:
        batch_op.create_index('ix_sessions_principal', ['principal'], unique=False)

    op.create_table('vault_state',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('vault_id', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.BigInteger(), nullable=False),
    sa.Column('owner', sa.String(length=256), nullable=False),
    sa.Column('rules_version', sa.BigInteger(), nullable=False),
    sa.Column('audit_seq', sa.BigInteger(), nullable=False),
    sa.Column('audit_mac', sa.LargeBinary(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('wrapped_keys',
    sa.Column('purpose', sa.String(length=32), nullable=False),
    sa.Column('term', sa.Integer(), nullable=False),
    sa.Column('wrapped', sa.LargeBinary(), nullable=False),
    sa.Column('created_at', sa.BigInteger(), nullable=False),
    sa.Column('encryptions', sa.BigInteger(), nullable=False),
    sa.Column('retired_at', sa.BigInteger(), nullable=True),
    sa.PrimaryKeyConstraint('purpose', 'term')
    )
    op.create_table('secret_versions',
    sa.Column('secret_id', sa.String(length=32), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('ciphertext', sa.LargeBinary(), nullable=False),
    sa.Column('key_term', sa.Integer(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.BigInteger(), nullable=False),
    sa.Column('created_by', sa.String(length=256), nullable=False),
    sa.ForeignKeyConstraint(['secret_id'], ['secrets.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('secret_id', 'version')
    )
    with op.batch_alter_table('secret_versions', schema=None) as batch_op:
        batch_op.create_index('ix_versions_term', ['key_term'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('secret_versions', schema=None) as batch_op:
        batch_op.drop_index('ix_versions_term')

    op.drop_table('secret_versions')
    op.drop_table('wrapped_keys')
    op.drop_table('vault_state')
    with op.batch_alter_table('sessions', schema=None) as batch_op:
        batch_op.drop_index('ix_sessions_principal')

    op.drop_table('sessions')
    with op.batch_alter_table('secrets', schema=None) as batch_op:
        batch_op.drop_index('ix_secrets_next_rotation')
        batch_op.drop_index('ix_secrets_name')
        batch_op.drop_index('ix_secrets_counts')
        batch_op.drop_index('ix_secrets_expires')

    op.drop_table('secrets')
    op.drop_table('rekey_jobs')
    op.drop_table('principals')
    with op.batch_alter_table('login_failures', schema=None) as batch_op:
        batch_op.drop_index('ix_login_failures_principal_ts')

    op.drop_table('login_failures')
    op.drop_table('leases')
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_value_hash')
        batch_op.drop_index('ix_audit_ts')
        batch_op.drop_index('ix_audit_secret_ts')
        batch_op.drop_index('ix_audit_principal_ts')
        batch_op.drop_index('ix_audit_operation_ts')

    op.drop_table('audit_log')
    op.drop_table('audit_daily')
    with op.batch_alter_table('access_rules', schema=None) as batch_op:
        batch_op.drop_index('ix_rules_subject')

    op.drop_table('access_rules')
