"""Indexes for the scheduler's change reads.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30

Per request, each scheduler's host cache reads the rows written since a moment
(novalite/scheduler/host_manager.py: provider_changes, node_changes,
service_changes): ``updated_at``/``created_at`` of ``resource_providers``,
``compute_nodes`` and ``services``, the services' ``last_seen_up``, and the services
disabled or forced down now. With these indexes the database reads only those rows
instead of scanning the tables.
"""

from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

INDEXES = (
    ('resource_providers_updated_at_idx', 'resource_providers', ['updated_at']),
    ('resource_providers_created_at_idx', 'resource_providers', ['created_at']),
    ('compute_nodes_updated_at_idx', 'compute_nodes', ['updated_at']),
    ('compute_nodes_created_at_idx', 'compute_nodes', ['created_at']),
    ('services_updated_at_idx', 'services', ['updated_at']),
    ('services_created_at_idx', 'services', ['created_at']),
    ('services_last_seen_up_idx', 'services', ['last_seen_up']),
    ('services_disabled_idx', 'services', ['disabled']),
    ('services_forced_down_idx', 'services', ['forced_down']),
)


def upgrade():
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns)


def downgrade():
    for name, table, _ in reversed(INDEXES):
        op.drop_index(name, table_name=table)
