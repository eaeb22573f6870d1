"""Initial schema.

Revision ID: 0001
Revises:
Create Date: 2026-11-22

Every constraint and index has an explicit name so later revisions can drop or
alter it on all backends by name:

- primary keys      pk_<table>
- unique            uniq_<table>0<column>[0<column>...]
- foreign keys      fk_<table>_<column>_<referred table>
- indexes           as in models.py; ix_<table>_<column> for ``index=True`` columns

No server defaults: every default lives in the models (Python side).
On MySQL/MariaDB tables are InnoDB with utf8mb4.
"""

import sqlalchemy as sa
from alembic import op

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None

MYSQL = {'mysql_engine': 'InnoDB', 'mysql_charset': 'utf8mb4'}


def _timestamps():
    return [
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('updated_at', sa.DateTime(), nullable=True),
    ]


def upgrade():
    op.create_table(
        'services',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('uuid', sa.String(36), nullable=False),
        sa.Column('host', sa.String(255), nullable=False),
        sa.Column('binary', sa.String(255), nullable=False),
        sa.Column('topic', sa.String(255), nullable=False),
        sa.Column('report_count', sa.Integer(), nullable=False),
        sa.Column('disabled', sa.Boolean(), nullable=False),
        sa.Column('disabled_reason', sa.String(255), nullable=True),
        sa.Column('forced_down', sa.Boolean(), nullable=False),
        sa.Column('last_seen_up', sa.DateTime(), nullable=True),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('availability_zone', sa.String(255), nullable=True),
        *_timestamps(),
        sa.PrimaryKeyConstraint('id', name='pk_services'),
        sa.UniqueConstraint('uuid', name='uniq_services0uuid'),
        sa.UniqueConstraint('host', 'binary', name='uniq_services0host0binary'),
        **MYSQL,
    )

    op.create_table(
        'compute_nodes',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('uuid', sa.String(36), nullable=False),
        sa.Column('service_id', sa.Integer(), nullable=True),
        sa.Column('host', sa.String(255), nullable=False),
        sa.Column('hypervisor_hostname', sa.String(255), nullable=False),
        sa.Column('hypervisor_type', sa.String(255), nullable=False),
        sa.Column('hypervisor_version', sa.Integer(), nullable=False),
        sa.Column('host_ip', sa.String(64), nullable=True),
        sa.Column('vcpus', sa.Integer(), nullable=False),
        sa.Column('memory_mb', sa.Integer(), nullable=False),
        sa.Column('local_gb', sa.Integer(), nullable=False),
        sa.Column('vcpus_used', sa.Integer(), nullable=False),
        sa.Column('memory_mb_used', sa.Integer(), nullable=False),
        sa.Column('local_gb_used', sa.Integer(), nullable=False),
        sa.Column('running_vms', sa.Integer(), nullable=False),
        sa.Column('cpu_info', sa.JSON(), nullable=False),
        sa.Column('cpu_allocation_ratio', sa.Float(), nullable=False),
        sa.Column('ram_allocation_ratio', sa.Float(), nullable=False),
        sa.Column('disk_allocation_ratio', sa.Float(), nullable=False),
        sa.Column('traits', sa.JSON(), nullable=False),
        sa.Column('uptime', sa.String(255), nullable=True),
        *_timestamps(),
        sa.PrimaryKeyConstraint('id', name='pk_compute_nodes'),
        sa.ForeignKeyConstraint(['service_id'], ['services.id'],
                                name='fk_compute_nodes_service_id_services'),
        sa.UniqueConstraint('uuid', name='uniq_compute_nodes0uuid'),
        sa.UniqueConstraint('host', 'hypervisor_hostname', name='uniq_compute_nodes0host0node'),
        **MYSQL,
    )

    op.create_table(
        'flavors',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('flavorid', sa.String(255), nullable=False),
        sa.Column('name', sa.String(255), nullable=False),
        sa.Column('memory_mb', sa.Integer(), nullable=False),
        sa.Column('vcpus', sa.Integer(), nullable=False),
        sa.Column('root_gb', sa.Integer(), nullable=False),
        sa.Column('ephemeral_gb', sa.Integer(), nullable=False),
        sa.Column('swap', sa.Integer(), nullable=False),
        sa.Column('rxtx_factor', sa.Float(), nullable=False),
        sa.Column('is_public', sa.Boolean(), nullable=False),
        sa.Column('disabled', sa.Boolean(), nullable=False),
        sa.Column('description', sa.Text(), nullable=True),
        *_timestamps(),
        sa.PrimaryKeyConstraint('id', name='pk_flavors'),
        sa.UniqueConstraint('flavorid', name='uniq_flavors0flavorid'),
        sa.UniqueConstraint('name', name='uniq_flavors0name'),
        **MYSQL,
    )

    op.create_table(
        'flavor_extra_specs',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('flavor_id', sa.Integer(), nullable=False),
        sa.Column('key', sa.String(255), nullable=False),
        sa.Column('value', sa.String(255), nullable=False),
        sa.PrimaryKeyConstraint('id', name='pk_flavor_extra_specs'),
        sa.ForeignKeyConstraint(['flavor_id'], ['flavors.id'], ondelete='CASCADE',
                                name='fk_flavor_extra_specs_flavor_id_flavors'),
        sa.UniqueConstraint('flavor_id', 'key', name='uniq_flavor_extra_specs0key'),
        **MYSQL,
    )

    op.create_table(
        'flavor_projects',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('flavor_id', sa.Integer(), nullable=False),
        sa.Column('project_id', sa.String(255), nullable=False),
        sa.PrimaryKeyConstraint('id', name='pk_flavor_projects'),
        sa.ForeignKeyConstraint(['flavor_id'], ['flavors.id'], ondelete='CASCADE',
                                name='fk_flavor_projects_flavor_id_flavors'),
        sa.UniqueConstraint('flavor_id', 'project_id', name='uniq_flavor_projects0project'),
        **MYSQL,
    )

    op.create_table(
        'images',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('uuid', sa.String(36), nullable=False),
        sa.Column('name', sa.String(255), nullable=False),
        sa.Column('disk_format', sa.String(32), nullable=False),
        sa.Column('container_format', sa.String(32), nullable=False),
        sa.Column('size', sa.BigInteger(), nullable=False),
        sa.Column('min_disk', sa.Integer(), nullable=False),
        sa.Column('min_ram', sa.Integer(), nullable=False),
        sa.Column('status', sa.String(32), nullable=False),
        sa.Column('visibility', sa.String(32), nullable=False),
        sa.Column('owner', sa.String(255), nullable=True),
        sa.Column('location', sa.Text(), nullable=True),
        sa.Column('properties', sa.JSON(), nullable=False),
        *_timestamps(),
        sa.PrimaryKeyConstraint('id', name='pk_images'),
        sa.UniqueConstraint('uuid', name='uniq_images0uuid'),
        **MYSQL,
    )

    op.create_table(
        'instances',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('uuid', sa.String(36), nullable=False),
        sa.Column('display_name', sa.String(255), nullable=False),
        sa.Column('display_description', sa.String(255), nullable=True),
        sa.Column('hostname', sa.String(255), nullable=True),
        sa.Column('project_id', sa.String(255), nullable=False),
        sa.Column('user_id', sa.String(255), nullable=False),
        sa.Column('image_ref', sa.String(255), nullable=True),
        sa.Column('flavor', sa.JSON(), nullable=False),
        sa.Column('old_flavor', sa.JSON(), nullable=True),
        sa.Column('new_flavor', sa.JSON(), nullable=True),
        sa.Column('vm_state', sa.String(255), nullable=False),
        sa.Column('task_state', sa.String(255), nullable=True),
        sa.Column('power_state', sa.Integer(), nullable=False),
        sa.Column('host', sa.String(255), nullable=True),
        sa.Column('node', sa.String(255), nullable=True),
        sa.Column('launched_at', sa.DateTime(), nullable=True),
        sa.Column('terminated_at', sa.DateTime(), nullable=True),
        sa.Column('deleted_at', sa.DateTime(), nullable=True),
        sa.Column('deleted', sa.Boolean(), nullable=False),
        sa.Column('locked', sa.Boolean(), nullable=False),
        sa.Column('locked_by', sa.String(255), nullable=True),
        sa.Column('locked_reason', sa.String(255), nullable=True),
        sa.Column('progress', sa.Integer(), nullable=False),
        sa.Column('availability_zone', sa.String(255), nullable=True),
        sa.Column('metadata', sa.JSON(), nullable=False),
        sa.Column('system_metadata', sa.JSON(), nullable=False),
        sa.Column('key_name', sa.String(255), nullable=True),
        sa.Column('reservation_id', sa.String(255), nullable=True),
        sa.Column('launch_index', sa.Integer(), nullable=False),
        sa.Column('config_drive', sa.String(255), nullable=False),
        sa.Column('access_ip_v4', sa.String(64), nullable=True),
        sa.Column('access_ip_v6', sa.String(64), nullable=True),
        sa.Column('user_data', sa.Text(), nullable=True),
        sa.Column('auto_disk_config', sa.Boolean(), nullable=False),
        sa.Column('tags', sa.JSON(), nullable=False),
        *_timestamps(),
        sa.PrimaryKeyConstraint('id', name='pk_instances'),
        sa.UniqueConstraint('uuid', name='uniq_instances0uuid'),
        **MYSQL,
    )
    op.create_index('instances_host_idx', 'instances', ['host'])
    op.create_index('instances_project_deleted_idx', 'instances', ['project_id', 'deleted'])

    op.create_table(
        'migrations',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('uuid', sa.String(36), nullable=False),
        sa.Column('instance_uuid', sa.String(36), nullable=False),
        sa.Column('migration_type', sa.String(32), nullable=False),
        sa.Column('status', sa.String(255), nullable=False),
        sa.Column('source_compute', sa.String(255), nullable=True),
        sa.Column('source_node', sa.String(255), nullable=True),
        sa.Column('dest_compute', sa.String(255), nullable=True),
        sa.Column('dest_node', sa.String(255), nullable=True),
        sa.Column('dest_host', sa.String(255), nullable=True),
        sa.Column('old_instance_type_id', sa.Integer(), nullable=True),
        sa.Column('new_instance_type_id', sa.Integer(), nullable=True),
        sa.Column('hidden', sa.Boolean(), nullable=False),
        sa.Column('cross_cell_move', sa.Boolean(), nullable=False),
        sa.Column('memory_total', sa.BigInteger(), nullable=True),
        sa.Column('memory_processed', sa.BigInteger(), nullable=True),
        sa.Column('memory_remaining', sa.BigInteger(), nullable=True),
        sa.Column('disk_total', sa.BigInteger(), nullable=True),
        sa.Column('disk_processed', sa.BigInteger(), nullable=True),
        sa.Column('disk_remaining', sa.BigInteger(), nullable=True),
        sa.Column('user_id', sa.String(255), nullable=True),
        sa.Column('project_id', sa.String(255), nullable=True),
        sa.Column('deleted', sa.Boolean(), nullable=False),
        *_timestamps(),
        sa.PrimaryKeyConstraint('id', name='pk_migrations'),
        sa.UniqueConstraint('uuid', name='uniq_migrations0uuid'),
        **MYSQL,
    )
    op.create_index('migrations_instance_uuid_idx', 'migrations', ['instance_uuid'])
    op.create_index('migrations_status_idx', 'migrations', ['status'])

    op.create_table(
        'instance_actions',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('action', sa.String(255), nullable=False),
        sa.Column('instance_uuid', sa.String(36), nullable=False),
        sa.Column('request_id', sa.String(255), nullable=False),
        sa.Column('user_id', sa.String(255), nullable=True),
        sa.Column('project_id', sa.String(255), nullable=True),
        sa.Column('start_time', sa.DateTime(), nullable=False),
        sa.Column('finish_time', sa.DateTime(), nullable=True),
        sa.Column('message', sa.String(255), nullable=True),
        *_timestamps(),
        sa.PrimaryKeyConstraint('id', name='pk_instance_actions'),
        **MYSQL,
    )
    op.create_index('instance_actions_instance_uuid_idx', 'instance_actions', ['instance_uuid'])
    op.create_index('instance_actions_request_id_idx', 'instance_actions', ['request_id'])

    op.create_table(
        'instance_actions_events',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('action_id', sa.Integer(), nullable=False),
        sa.Column('event', sa.String(255), nullable=False),
        sa.Column('start_time', sa.DateTime(), nullable=False),
        sa.Column('finish_time', sa.DateTime(), nullable=True),
        sa.Column('result', sa.String(255), nullable=True),
        sa.Column('traceback', sa.Text(), nullable=True),
        sa.Column('host', sa.String(255), nullable=True),
        sa.Column('details', sa.Text(), nullable=True),
        *_timestamps(),
        sa.PrimaryKeyConstraint('id', name='pk_instance_actions_events'),
        sa.ForeignKeyConstraint(['action_id'], ['instance_actions.id'], ondelete='CASCADE',
                                name='fk_instance_actions_events_action_id_instance_actions'),
        **MYSQL,
    )
    op.create_index('ix_instance_actions_events_action_id', 'instance_actions_events',
                    ['action_id'])

    op.create_table(
        'instance_faults',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('instance_uuid', sa.String(36), nullable=False),
        sa.Column('code', sa.Integer(), nullable=False),
        sa.Column('message', sa.String(255), nullable=False),
        sa.Column('details', sa.Text(), nullable=True),
        sa.Column('host', sa.String(255), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id', name='pk_instance_faults'),
        **MYSQL,
    )
    op.create_index('ix_instance_faults_instance_uuid', 'instance_faults', ['instance_uuid'])

    op.create_table(
        'request_specs',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('instance_uuid', sa.String(36), nullable=False),
        sa.Column('spec', sa.JSON(), nullable=False),
        *_timestamps(),
        sa.PrimaryKeyConstraint('id', name='pk_request_specs'),
        sa.UniqueConstraint('instance_uuid', name='uniq_request_specs0instance_uuid'),
        **MYSQL,
    )

    op.create_table(
        'resource_providers',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('uuid', sa.String(36), nullable=False),
        sa.Column('name', sa.String(255), nullable=False),
        sa.Column('generation', sa.Integer(), nullable=False),
        *_timestamps(),
        sa.PrimaryKeyConstraint('id', name='pk_resource_providers'),
        sa.UniqueConstraint('uuid', name='uniq_resource_providers0uuid'),
        sa.UniqueConstraint('name', name='uniq_resource_providers0name'),
        **MYSQL,
    )

    op.create_table(
        'inventories',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('resource_provider_id', sa.Integer(), nullable=False),
        sa.Column('resource_class', sa.String(64), nullable=False),
        sa.Column('total', sa.Integer(), nullable=False),
        sa.Column('reserved', sa.Integer(), nullable=False),
        sa.Column('min_unit', sa.Integer(), nullable=False),
        sa.Column('max_unit', sa.Integer(), nullable=False),
        sa.Column('step_size', sa.Integer(), nullable=False),
        sa.Column('allocation_ratio', sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint('id', name='pk_inventories'),
        sa.ForeignKeyConstraint(['resource_provider_id'], ['resource_providers.id'],
                                ondelete='CASCADE',
                                name='fk_inventories_resource_provider_id_resource_providers'),
        sa.UniqueConstraint('resource_provider_id', 'resource_class',
                            name='uniq_inventories0rp0rc'),
        **MYSQL,
    )

    op.create_table(
        'allocations',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('resource_provider_id', sa.Integer(), nullable=False),
        sa.Column('consumer_id', sa.String(36), nullable=False),
        sa.Column('resource_class', sa.String(64), nullable=False),
        sa.Column('used', sa.Integer(), nullable=False),
        sa.Column('project_id', sa.String(255), nullable=True),
        sa.Column('user_id', sa.String(255), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id', name='pk_allocations'),
        sa.ForeignKeyConstraint(['resource_provider_id'], ['resource_providers.id'],
                                ondelete='CASCADE',
                                name='fk_allocations_resource_provider_id_resource_providers'),
        **MYSQL,
    )
    op.create_index('allocations_consumer_idx', 'allocations', ['consumer_id'])
    op.create_index('allocations_rp_rc_idx', 'allocations',
                    ['resource_provider_id', 'resource_class'])

    op.create_table(
        'quotas',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('project_id', sa.String(255), nullable=False),
        sa.Column('resource', sa.String(255), nullable=False),
        sa.Column('hard_limit', sa.Integer(), nullable=False),
        *_timestamps(),
        sa.PrimaryKeyConstraint('id', name='pk_quotas'),
        sa.UniqueConstraint('project_id', 'resource', name='uniq_quotas0resource'),
        **MYSQL,
    )


def downgrade():
    # Children before parents; dropping a table drops its indexes and constraints.
    for table in ('quotas', 'allocations', 'inventories', 'resource_providers',
                  'request_specs', 'instance_faults', 'instance_actions_events',
                  'instance_actions', 'migrations', 'instances', 'images',
                  'flavor_projects', 'flavor_extra_specs', 'flavors', 'compute_nodes',
                  'services'):
        op.drop_table(table)
