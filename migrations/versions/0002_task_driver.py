"""The conductor driving an instance's task.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29

``instances.task_driver`` names the conductor host that is working on the instance's
current task while the task is in a conductor-owned step (scheduling, the pre-checks of
a live migration). A reconciler takes the work over when that conductor restarted or has
been down longer than service_down_time; NULL when a compute owns the next step or no
task runs.
"""

import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('instances') as batch:
        batch.add_column(sa.Column('task_driver', sa.String(255), nullable=True))


def downgrade():
    with op.batch_alter_table('instances') as batch:
        batch.drop_column('task_driver')
