"""Server groups and their members.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30

``server_groups`` holds one policy (affinity, anti-affinity, soft-affinity,
soft-anti-affinity) and its rules; ``generation`` is the compare-and-swap counter that
serialises the claims of its members. ``server_group_members`` maps each server to the
one group it belongs to; rows go with the server or the group.
"""

import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


MYSQL = {'mysql_engine': 'InnoDB', 'mysql_charset': 'utf8mb4'}


def upgrade():
    op.create_table(
        'server_groups',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('uuid', sa.String(36), nullable=False),
        sa.Column('name', sa.String(255), nullable=False),
        sa.Column('project_id', sa.String(255), nullable=False),
        sa.Column('user_id', sa.String(255), nullable=False),
        sa.Column('policy', sa.String(255), nullable=False),
        sa.Column('rules', sa.JSON(), nullable=False),
        sa.Column('generation', sa.Integer(), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('updated_at', sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint('id', name='pk_server_groups'),
        sa.UniqueConstraint('uuid', name='uniq_server_groups0uuid'),
        **MYSQL,
    )
    op.create_index('server_groups_project_idx', 'server_groups', ['project_id'])
    op.create_table(
        'server_group_members',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('group_id', sa.Integer(), nullable=False),
        sa.Column('instance_uuid', sa.String(36), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id', name='pk_server_group_members'),
        sa.ForeignKeyConstraint(['group_id'], ['server_groups.id'], ondelete='CASCADE',
                                name='fk_server_group_members_group_id_server_groups'),
        sa.UniqueConstraint('instance_uuid', name='uniq_server_group_members0instance_uuid'),
        **MYSQL,
    )
    op.create_index('server_group_members_group_idx', 'server_group_members', ['group_id'])


def downgrade():
    op.drop_table('server_group_members')
    op.drop_table('server_groups')
