"""SQLAlchemy 2 typed models; alembic migrations in migrations/ own the schema."""

import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class TimestampMixin:
    created_at: Mapped[datetime.datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime.datetime | None] = mapped_column(DateTime, onupdate=utcnow)


class Service(TimestampMixin, Base):
    __tablename__ = 'services'
    # The indexes serve the scheduler's change reads (scheduler/host_manager.py).
    __table_args__ = (UniqueConstraint('host', 'binary', name='uniq_services0host0binary'),
                      Index('services_updated_at_idx', 'updated_at'),
                      Index('services_created_at_idx', 'created_at'),
                      Index('services_last_seen_up_idx', 'last_seen_up'),
                      Index('services_disabled_idx', 'disabled'),
                      Index('services_forced_down_idx', 'forced_down'))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True)
    host: Mapped[str] = mapped_column(String(255))
    binary: Mapped[str] = mapped_column(String(255))
    topic: Mapped[str] = mapped_column(String(255))
    report_count: Mapped[int] = mapped_column(Integer, default=0)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    disabled_reason: Mapped[str | None] = mapped_column(String(255))
    forced_down: Mapped[bool] = mapped_column(Boolean, default=False)
    last_seen_up: Mapped[datetime.datetime | None] = mapped_column(DateTime)
    version: Mapped[int] = mapped_column(Integer, default=1)
    availability_zone: Mapped[str | None] = mapped_column(String(255))


class ComputeNode(TimestampMixin, Base):
    __tablename__ = 'compute_nodes'
    __table_args__ = (
        UniqueConstraint('host', 'hypervisor_hostname', name='uniq_compute_nodes0host0node'),
        Index('compute_nodes_updated_at_idx', 'updated_at'),
        Index('compute_nodes_created_at_idx', 'created_at'),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True)
    service_id: Mapped[int | None] = mapped_column(ForeignKey('services.id'))
    host: Mapped[str] = mapped_column(String(255))
    hypervisor_hostname: Mapped[str] = mapped_column(String(255))
    hypervisor_type: Mapped[str] = mapped_column(String(255))
    hypervisor_version: Mapped[int] = mapped_column(Integer, default=0)
    host_ip: Mapped[str | None] = mapped_column(String(64))
    vcpus: Mapped[int] = mapped_column(Integer, default=0)
    memory_mb: Mapped[int] = mapped_column(Integer, default=0)
    local_gb: Mapped[int] = mapped_column(Integer, default=0)
    vcpus_used: Mapped[int] = mapped_column(Integer, default=0)
    memory_mb_used: Mapped[int] = mapped_column(Integer, default=0)
    local_gb_used: Mapped[int] = mapped_column(Integer, default=0)
    running_vms: Mapped[int] = mapped_column(Integer, default=0)
    cpu_info: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    cpu_allocation_ratio: Mapped[float] = mapped_column(Float, default=4.0)
    ram_allocation_ratio: Mapped[float] = mapped_column(Float, default=1.0)
    disk_allocation_ratio: Mapped[float] = mapped_column(Float, default=1.0)
    traits: Mapped[list[Any]] = mapped_column(JSON, default=list)
    uptime: Mapped[str | None] = mapped_column(String(255))


class Flavor(TimestampMixin, Base):
    __tablename__ = 'flavors'

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    flavorid: Mapped[str] = mapped_column(String(255), unique=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    memory_mb: Mapped[int] = mapped_column(Integer)
    vcpus: Mapped[int] = mapped_column(Integer)
    root_gb: Mapped[int] = mapped_column(Integer, default=0)
    ephemeral_gb: Mapped[int] = mapped_column(Integer, default=0)
    swap: Mapped[int] = mapped_column(Integer, default=0)
    rxtx_factor: Mapped[float] = mapped_column(Float, default=1.0)
    is_public: Mapped[bool] = mapped_column(Boolean, default=True)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    description: Mapped[str | None] = mapped_column(Text)


class FlavorExtraSpec(Base):
    __tablename__ = 'flavor_extra_specs'
    __table_args__ = (UniqueConstraint('flavor_id', 'key', name='uniq_flavor_extra_specs0key'),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    flavor_id: Mapped[int] = mapped_column(ForeignKey('flavors.id', ondelete='CASCADE'))
    key: Mapped[str] = mapped_column(String(255))
    value: Mapped[str] = mapped_column(String(255))


class FlavorProject(Base):
    __tablename__ = 'flavor_projects'
    __table_args__ = (
        UniqueConstraint('flavor_id', 'project_id', name='uniq_flavor_projects0project'),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    flavor_id: Mapped[int] = mapped_column(ForeignKey('flavors.id', ondelete='CASCADE'))
    project_id: Mapped[str] = mapped_column(String(255))


class Image(TimestampMixin, Base):
    __tablename__ = 'images'

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True)
    name: Mapped[str] = mapped_column(String(255))
    disk_format: Mapped[str] = mapped_column(String(32), default='qcow2')
    container_format: Mapped[str] = mapped_column(String(32), default='bare')
    size: Mapped[int] = mapped_column(BigInteger, default=0)
    min_disk: Mapped[int] = mapped_column(Integer, default=0)
    min_ram: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(32), default='active')
    visibility: Mapped[str] = mapped_column(String(32), default='public')
    owner: Mapped[str | None] = mapped_column(String(255))
    location: Mapped[str | None] = mapped_column(Text)
    properties: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Instance(TimestampMixin, Base):
    __tablename__ = 'instances'
    __table_args__ = (
        Index('instances_host_idx', 'host'),
        Index('instances_project_deleted_idx', 'project_id', 'deleted'),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True)
    display_name: Mapped[str] = mapped_column(String(255))
    display_description: Mapped[str | None] = mapped_column(String(255))
    hostname: Mapped[str | None] = mapped_column(String(255))
    project_id: Mapped[str] = mapped_column(String(255))
    user_id: Mapped[str] = mapped_column(String(255))
    image_ref: Mapped[str | None] = mapped_column(String(255))
    flavor: Mapped[dict[str, Any]] = mapped_column(JSON)
    old_flavor: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    new_flavor: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    vm_state: Mapped[str] = mapped_column(String(255))
    task_state: Mapped[str | None] = mapped_column(String(255))
    # The conductor host working on a conductor-owned step of the task (see states.py).
    task_driver: Mapped[str | None] = mapped_column(String(255))
    power_state: Mapped[int] = mapped_column(Integer, default=0)
    host: Mapped[str | None] = mapped_column(String(255))
    node: Mapped[str | None] = mapped_column(String(255))
    launched_at: Mapped[datetime.datetime | None] = mapped_column(DateTime)
    terminated_at: Mapped[datetime.datetime | None] = mapped_column(DateTime)
    deleted_at: Mapped[datetime.datetime | None] = mapped_column(DateTime)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    locked: Mapped[bool] = mapped_column(Boolean, default=False)
    locked_by: Mapped[str | None] = mapped_column(String(255))
    locked_reason: Mapped[str | None] = mapped_column(String(255))
    progress: Mapped[int] = mapped_column(Integer, default=0)
    availability_zone: Mapped[str | None] = mapped_column(String(255))
    metadata_: Mapped[dict[str, Any]] = mapped_column('metadata', JSON, default=dict)
    system_metadata: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    key_name: Mapped[str | None] = mapped_column(String(255))
    reservation_id: Mapped[str | None] = mapped_column(String(255))
    launch_index: Mapped[int] = mapped_column(Integer, default=0)
    config_drive: Mapped[str] = mapped_column(String(255), default='')
    access_ip_v4: Mapped[str | None] = mapped_column(String(64))
    access_ip_v6: Mapped[str | None] = mapped_column(String(64))
    user_data: Mapped[str | None] = mapped_column(Text)
    auto_disk_config: Mapped[bool] = mapped_column(Boolean, default=False)
    tags: Mapped[list[Any]] = mapped_column(JSON, default=list)


class Migration(TimestampMixin, Base):
    __tablename__ = 'migrations'
    __table_args__ = (
        Index('migrations_instance_uuid_idx', 'instance_uuid'),
        Index('migrations_status_idx', 'status'),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True)
    instance_uuid: Mapped[str] = mapped_column(String(36))
    migration_type: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(255))
    source_compute: Mapped[str | None] = mapped_column(String(255))
    source_node: Mapped[str | None] = mapped_column(String(255))
    dest_compute: Mapped[str | None] = mapped_column(String(255))
    dest_node: Mapped[str | None] = mapped_column(String(255))
    dest_host: Mapped[str | None] = mapped_column(String(255))
    old_instance_type_id: Mapped[int | None] = mapped_column(Integer)
    new_instance_type_id: Mapped[int | None] = mapped_column(Integer)
    hidden: Mapped[bool] = mapped_column(Boolean, default=False)
    cross_cell_move: Mapped[bool] = mapped_column(Boolean, default=False)
    memory_total: Mapped[int | None] = mapped_column(BigInteger)
    memory_processed: Mapped[int | None] = mapped_column(BigInteger)
    memory_remaining: Mapped[int | None] = mapped_column(BigInteger)
    disk_total: Mapped[int | None] = mapped_column(BigInteger)
    disk_processed: Mapped[int | None] = mapped_column(BigInteger)
    disk_remaining: Mapped[int | None] = mapped_column(BigInteger)
    user_id: Mapped[str | None] = mapped_column(String(255))
    project_id: Mapped[str | None] = mapped_column(String(255))
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    # The migration policy applied (live migrations) and its decisions, each
    # {"at": ISO time, "decision": ..., "detail": ...}, oldest first.
    policy: Mapped[str | None] = mapped_column(String(255))
    policy_log: Mapped[list[Any] | None] = mapped_column(JSON)
    # The host drain that started this move; NULL for a move a user asked for.
    drain_id: Mapped[int | None] = mapped_column(Integer)


class InstanceAction(TimestampMixin, Base):
    __tablename__ = 'instance_actions'
    __table_args__ = (
        Index('instance_actions_instance_uuid_idx', 'instance_uuid'),
        Index('instance_actions_request_id_idx', 'request_id'),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    action: Mapped[str] = mapped_column(String(255))
    instance_uuid: Mapped[str] = mapped_column(String(36))
    request_id: Mapped[str] = mapped_column(String(255))
    user_id: Mapped[str | None] = mapped_column(String(255))
    project_id: Mapped[str | None] = mapped_column(String(255))
    start_time: Mapped[datetime.datetime] = mapped_column(DateTime, default=utcnow)
    finish_time: Mapped[datetime.datetime | None] = mapped_column(DateTime)
    message: Mapped[str | None] = mapped_column(String(255))


class InstanceActionEvent(TimestampMixin, Base):
    __tablename__ = 'instance_actions_events'

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    action_id: Mapped[int] = mapped_column(
        ForeignKey('instance_actions.id', ondelete='CASCADE'), index=True)
    event: Mapped[str] = mapped_column(String(255))
    start_time: Mapped[datetime.datetime] = mapped_column(DateTime, default=utcnow)
    finish_time: Mapped[datetime.datetime | None] = mapped_column(DateTime)
    result: Mapped[str | None] = mapped_column(String(255))
    traceback: Mapped[str | None] = mapped_column(Text)
    host: Mapped[str | None] = mapped_column(String(255))
    details: Mapped[str | None] = mapped_column(Text)


class InstanceFault(Base):
    __tablename__ = 'instance_faults'

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    instance_uuid: Mapped[str] = mapped_column(String(36), index=True)
    code: Mapped[int] = mapped_column(Integer)
    message: Mapped[str] = mapped_column(String(255))
    details: Mapped[str | None] = mapped_column(Text)
    host: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime.datetime] = mapped_column(DateTime, default=utcnow)


class RequestSpec(TimestampMixin, Base):
    __tablename__ = 'request_specs'

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    instance_uuid: Mapped[str] = mapped_column(String(36), unique=True)
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)


class ResourceProvider(TimestampMixin, Base):
    __tablename__ = 'resource_providers'
    __table_args__ = (Index('resource_providers_updated_at_idx', 'updated_at'),
                      Index('resource_providers_created_at_idx', 'created_at'))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    generation: Mapped[int] = mapped_column(Integer, default=0)


class Inventory(Base):
    __tablename__ = 'inventories'
    __table_args__ = (
        UniqueConstraint('resource_provider_id', 'resource_class',
                         name='uniq_inventories0rp0rc'),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    resource_provider_id: Mapped[int] = mapped_column(
        ForeignKey('resource_providers.id', ondelete='CASCADE'))
    resource_class: Mapped[str] = mapped_column(String(64))
    total: Mapped[int] = mapped_column(Integer)
    reserved: Mapped[int] = mapped_column(Integer, default=0)
    min_unit: Mapped[int] = mapped_column(Integer, default=1)
    max_unit: Mapped[int] = mapped_column(Integer)
    step_size: Mapped[int] = mapped_column(Integer, default=1)
    allocation_ratio: Mapped[float] = mapped_column(Float, default=1.0)


class Allocation(Base):
    __tablename__ = 'allocations'
    __table_args__ = (
        Index('allocations_consumer_idx', 'consumer_id'),
        Index('allocations_rp_rc_idx', 'resource_provider_id', 'resource_class'),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    resource_provider_id: Mapped[int] = mapped_column(
        ForeignKey('resource_providers.id', ondelete='CASCADE'))
    consumer_id: Mapped[str] = mapped_column(String(36))
    resource_class: Mapped[str] = mapped_column(String(64))
    used: Mapped[int] = mapped_column(Integer)
    project_id: Mapped[str | None] = mapped_column(String(255))
    user_id: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime.datetime] = mapped_column(DateTime, default=utcnow)


class Quota(TimestampMixin, Base):
    __tablename__ = 'quotas'
    __table_args__ = (UniqueConstraint('project_id', 'resource', name='uniq_quotas0resource'),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[str] = mapped_column(String(255))
    resource: Mapped[str] = mapped_column(String(255))
    hard_limit: Mapped[int] = mapped_column(Integer)


class ServerGroup(TimestampMixin, Base):
    __tablename__ = 'server_groups'
    __table_args__ = (Index('server_groups_project_idx', 'project_id'),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True)
    name: Mapped[str] = mapped_column(String(255))
    project_id: Mapped[str] = mapped_column(String(255))
    user_id: Mapped[str] = mapped_column(String(255))
    policy: Mapped[str] = mapped_column(String(255))
    rules: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Moves on every claim of a member under a hard policy:
    # two concurrent claims for one group cannot both commit (see db/server_groups.py).
    generation: Mapped[int] = mapped_column(Integer, default=0)


class ServerGroupMember(Base):
    __tablename__ = 'server_group_members'
    __table_args__ = (Index('server_group_members_group_idx', 'group_id'),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    group_id: Mapped[int] = mapped_column(ForeignKey('server_groups.id', ondelete='CASCADE'))
    # A server belongs to one group at most.
    instance_uuid: Mapped[str] = mapped_column(String(36), unique=True)
    created_at: Mapped[datetime.datetime] = mapped_column(DateTime, default=utcnow)


class HostDrain(TimestampMixin, Base):
    """An operator's request to empty one host; the conductors' drain loop drives it."""

    __tablename__ = 'host_drains'
    __table_args__ = (Index('host_drains_host_idx', 'host'),
                      Index('host_drains_status_idx', 'status'))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True)
    host: Mapped[str] = mapped_column(String(255))
    mode: Mapped[str] = mapped_column(String(16))
    max_parallel: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(32))
    # The conductor driving the drain now (a lease, as instances.task_driver).
    driver: Mapped[str | None] = mapped_column(String(255))
    user_id: Mapped[str | None] = mapped_column(String(255))
    project_id: Mapped[str | None] = mapped_column(String(255))
    finished_at: Mapped[datetime.datetime | None] = mapped_column(DateTime)


class HostDrainServer(Base):
    """One server of a drain: what was tried for it and how it ended."""

    __tablename__ = 'host_drain_servers'
    __table_args__ = (
        UniqueConstraint('drain_id', 'instance_uuid',
                         name='uniq_host_drain_servers0drain_id0instance_uuid'),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    drain_id: Mapped[int] = mapped_column(ForeignKey('host_drains.id', ondelete='CASCADE'),
                                          index=True)
    instance_uuid: Mapped[str] = mapped_column(String(36))
    state: Mapped[str] = mapped_column(String(32))
    move: Mapped[str | None] = mapped_column(String(16))
    migration_uuid: Mapped[str | None] = mapped_column(String(36))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    reason: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime.datetime | None] = mapped_column(DateTime, default=utcnow,
                                                                onupdate=utcnow)
