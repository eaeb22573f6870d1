"""Host drains, and the migration policy recorded on each migration.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30

``host_drains`` records an operator's request to empty a host (mode, parallelism,
status, the conductor driving it); ``host_drain_servers`` holds one row per server of
the drain with its move, migration and outcome. ``migrations`` gains ``policy`` (the
migration policy applied), ``policy_log`` (its decisions, with their times) and
``drain_id`` (the drain that started the move, NULL for a user's move).
"""

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


MYSQL = {'mysql_engine': 'InnoDB', 'mysql_charset': 'utf8mb4'}


def upgrade():
    with op.batch_alter_table('migrations') as batch:
        batch.add_column(sa.Column('policy', sa.String(255), nullable=True))
        batch.add_column(sa.Column('policy_log', sa.JSON(), nullable=True))
        batch.add_column(sa.Column('drain_id', sa.Integer(), nullable=True))
    op.create_table(
        'host_drains',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('uuid', sa.String(36), nullable=False),
        sa.Column('host', sa.String(255), nullable=False),
        sa.Column('mode', sa.String(16), nullable=False),
        sa.Column('max_parallel', sa.Integer(), nullable=False),
        sa.Column('status', sa.String(32), nullable=False),
        sa.Column('driver', sa.String(255), nullable=True),
        sa.Column('user_id', sa.String(255), nullable=True),
        sa.Column('project_id', sa.String(255), nullable=True),
        sa.Column('finished_at', sa.DateTime(), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('updated_at', sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint('id', name='pk_host_drains'),
        sa.UniqueConstraint('uuid', name='uniq_host_drains0uuid'),
        **MYSQL,
    )
    op.create_index('host_drains_host_idx', 'host_drains', ['host'])
    op.create_index('host_drains_status_idx', 'host_drains', ['status'])
    op.create_table(
        'host_drain_servers',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('drain_id', sa.Integer(), nullable=False),
        sa.Column('instance_uuid', sa.String(36), nullable=False),
        sa.Column('state', sa.String(32), nullable=False),
        sa.Column('move', sa.String(16), nullable=True),
        sa.Column('migration_uuid', sa.String(36), nullable=True),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('reason', sa.Text(), nullable=True),
        sa.Column('updated_at', sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint('id', name='pk_host_drain_servers'),
        sa.ForeignKeyConstraint(['drain_id'], ['host_drains.id'], ondelete='CASCADE',
                                name='fk_host_drain_servers_drain_id_host_drains'),
        sa.UniqueConstraint('drain_id', 'instance_uuid',
                            name='uniq_host_drain_servers0drain_id0instance_uuid'),
        **MYSQL,
    )
    op.create_index('ix_host_drain_servers_drain_id', 'host_drain_servers', ['drain_id'])


def downgrade():
    op.drop_table('host_drain_servers')
    op.drop_table('host_drains')
    with op.batch_alter_table('migrations') as batch:
        batch.drop_column('drain_id')
        batch.drop_column('policy_log')
        batch.drop_column('policy')
