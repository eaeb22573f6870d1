"""Load HostStates for every compute node in a handful of set-based queries: compute nodes
with their service, placement inventories, summed allocations and instance counts."""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

from sqlalchemy import DateTime, and_, bindparam, func, or_, select, true
from sqlalchemy.orm import Session

from novalite.conf import CONF
from novalite.db import models
from novalite.scheduler.host_state import HostState

COMPUTE_BINARY = 'novalite-compute'
RESOURCE_CLASSES = ('VCPU', 'MEMORY_MB', 'DISK_GB')


def _node_rows(session: Session, node_uuids: list[str] | None = None):
    cn, svc = models.ComputeNode, models.Service
    query = (
        select(cn.id.label('node_id'), cn.updated_at.label('cn_updated_at'),
               cn.uuid, cn.host, cn.hypervisor_hostname, cn.hypervisor_type,
               cn.hypervisor_version, cn.vcpus, cn.memory_mb, cn.local_gb, cn.vcpus_used,
               cn.memory_mb_used, cn.local_gb_used, cn.cpu_allocation_ratio,
               cn.ram_allocation_ratio, cn.disk_allocation_ratio, cn.traits, cn.cpu_info,
               svc.id.label('service_id'), svc.disabled, svc.disabled_reason,
               svc.forced_down, svc.last_seen_up, svc.updated_at.label('svc_updated_at'),
               svc.created_at.label('svc_created_at'), svc.availability_zone)
        .outerjoin(svc, and_(svc.host == cn.host, svc.binary == COMPUTE_BINARY))
        .order_by(cn.id)
    )
    if node_uuids is not None:
        query = query.where(cn.uuid.in_(node_uuids))
    return session.execute(query).all()


def inventories(session: Session,
                 rp_uuids: list[str] | None = None) -> dict[str, dict[str, Any]]:
    rp, inv = models.ResourceProvider, models.Inventory
    query = (select(rp.uuid, inv.resource_class, inv.total, inv.reserved, inv.allocation_ratio)
             .join(rp, rp.id == inv.resource_provider_id)
             .where(inv.resource_class.in_(RESOURCE_CLASSES)))
    if rp_uuids is not None:
        query = query.where(rp.uuid.in_(rp_uuids))
    out: dict[str, dict[str, Any]] = defaultdict(dict)
    for uuid, rc, total, reserved, ratio in session.execute(query):
        out[uuid][rc] = (total, reserved or 0, ratio if ratio is not None else 1.0)
    return out


def usages(session: Session, rp_uuids: list[str] | None = None) -> dict[str, dict[str, int]]:
    rp, alloc = models.ResourceProvider, models.Allocation
    query = (select(rp.uuid, alloc.resource_class, func.sum(alloc.used))
             .join(rp, rp.id == alloc.resource_provider_id)
             .where(alloc.resource_class.in_(RESOURCE_CLASSES))
             .group_by(rp.uuid, alloc.resource_class))
    if rp_uuids is not None:
        query = query.where(rp.uuid.in_(rp_uuids))
    out: dict[str, dict[str, int]] = defaultdict(dict)
    for uuid, rc, used in session.execute(query):
        out[uuid][rc] = int(used or 0)
    return out


def _is_up(row, now, down_time: int) -> bool:
    if row.service_id is None or row.forced_down:
        return False
    beat = row.last_seen_up or row.svc_updated_at or row.svc_created_at
    return beat is not None and abs((now - beat).total_seconds()) <= down_time


def _attach_instances(session: Session, states: list[HostState], with_instances: bool,
                      only_hosts: bool = False):
    by_node = {(hs.host, hs.nodename): hs for hs in states}
    by_host: dict[str, HostState] = {}
    for hs in states:
        by_host.setdefault(hs.host, hs)

    def state_for(host, node):
        return by_node.get((host, node)) or by_host.get(host)

    inst = models.Instance
    alive = and_(inst.deleted.is_(False), inst.host.is_not(None))
    if only_hosts:
        alive = and_(alive, inst.host.in_(sorted(by_host)))
    if with_instances:
        for host, node, uuid in session.execute(
                select(inst.host, inst.node, inst.uuid).where(alive)):
            hs = state_for(host, node)
            if hs is not None:
                hs.instance_uuids.add(uuid)
                hs.num_instances += 1
    else:
        query = (select(inst.host, inst.node, func.count(inst.id)).where(alive)
                 .group_by(inst.host, inst.node))
        for host, node, count in session.execute(query):
            hs = state_for(host, node)
            if hs is not None:
                hs.num_instances += int(count)


def load_host_states(session: Session, conf: Any = CONF,
                     with_instances: bool = False) -> list[HostState]:
    """Every compute node as a HostState, usage as placement sees it.

    Capacity and usage come from the node's resource provider (same uuid); a node that
    has not reported inventory yet falls back to its own compute_nodes columns.
    Instance uuids (for same_host / different_host hints) are loaded only when asked.
    """
    return [hs for hs, _ in build_host_states(session, conf, with_instances=with_instances)]


def build_host_states(session: Session, conf: Any = CONF, node_uuids: list[str] | None = None,
                      with_instances: bool = False) -> list[tuple[HostState, Any]]:
    """(HostState, compute node row) of every compute node, or of those in node_uuids
    only (a few indexed reads: how the host cache refreshes the hosts that changed)."""
    now = models.utcnow()
    inv = inventories(session, node_uuids)
    used = usages(session, node_uuids)
    out = [(host_state_of(row, inv.get(row.uuid, {}), used.get(row.uuid, {}),
                          conf, now), row)
           for row in _node_rows(session, node_uuids)]
    _attach_instances(session, [hs for hs, _ in out], with_instances,
                      only_hosts=node_uuids is not None)
    return out


def host_state_of(row, inv: dict[str, Any], used: dict[str, int], conf: Any,
                  now) -> HostState:
    """One compute node row (joined with its service) as a HostState."""
    reserved_disk_gb = math.ceil(conf.reserved_host_disk_mb / 1024)
    vcpu = inv.get('VCPU', (row.vcpus, conf.reserved_host_cpus, row.cpu_allocation_ratio))
    ram = inv.get('MEMORY_MB', (row.memory_mb, conf.reserved_host_memory_mb,
                                row.ram_allocation_ratio))
    disk = inv.get('DISK_GB', (row.local_gb, reserved_disk_gb, row.disk_allocation_ratio))
    return HostState(
        host=row.host,
        nodename=row.hypervisor_hostname,
        uuid=row.uuid,
        availability_zone=row.availability_zone or conf.default_availability_zone,
        service_disabled=bool(row.disabled),
        service_up=_is_up(row, now, conf.service_down_time),
        hypervisor_type=row.hypervisor_type,
        hypervisor_version=int(row.hypervisor_version or 0),
        vcpus_total=vcpu[0], vcpus_used=used.get('VCPU', 0 if inv else row.vcpus_used),
        memory_mb_total=ram[0],
        memory_mb_used=used.get('MEMORY_MB', 0 if inv else row.memory_mb_used),
        disk_gb_total=disk[0],
        disk_gb_used=used.get('DISK_GB', 0 if inv else row.local_gb_used),
        reserved_vcpus=vcpu[1], reserved_memory_mb=ram[1], reserved_disk_gb=disk[1],
        cpu_allocation_ratio=vcpu[2], ram_allocation_ratio=ram[2],
        disk_allocation_ratio=disk[2],
        traits=set(row.traits or ()),
        disabled_reason=row.disabled_reason,
        forced_down=bool(row.forced_down),
        last_heartbeat=row.last_seen_up or row.svc_updated_at or row.svc_created_at,
        cpu_arch=(row.cpu_info or {}).get('arch'),
    )


# Change feeds of the host cache (scheduler/host_cache.py). Each reads only the rows
# written since a moment, through the indexes on the columns it filters on (migration
# 0005): every branch of each OR below is an indexed condition (`= true`, not `IS
# TRUE`, which no index serves).

def provider_generations(session: Session) -> dict[str, int]:
    rp = models.ResourceProvider
    return dict(session.execute(select(rp.uuid, rp.generation)).all())


def _changes_statements() -> dict[str, Any]:
    """The change-feed reads, built once (building a statement costs more than running
    it); each takes the moment to read from as the parameter ``since``."""
    rp, cn, svc = models.ResourceProvider, models.ComputeNode, models.Service
    since = bindparam('since', type_=DateTime())
    columns = (svc.host, svc.disabled, svc.disabled_reason, svc.forced_down,
               svc.last_seen_up, svc.updated_at, svc.created_at, svc.availability_zone)
    written = or_(svc.updated_at >= since, svc.created_at >= since)
    return {
        'providers': select(rp.uuid, rp.generation).where(
            or_(rp.updated_at >= since, rp.created_at >= since)),
        'nodes': select(cn.uuid, cn.updated_at).where(
            or_(cn.updated_at >= since, cn.created_at >= since)),
        'services': select(*columns).where(
            svc.binary == COMPUTE_BINARY, or_(written, svc.last_seen_up >= since))
        .order_by(svc.id),
        'switched': select(*columns).where(
            svc.binary == COMPUTE_BINARY,
            or_(and_(written, or_(svc.last_seen_up.is_(None),
                                  svc.updated_at > svc.last_seen_up)),
                svc.disabled == true(), svc.forced_down == true()))
        .order_by(svc.id),
        'census': select(func.count(cn.id), func.max(cn.id)),
    }


_CHANGES = _changes_statements()


def provider_changes(session: Session, since) -> list[tuple[str, int]]:
    """(uuid, generation) of providers written since `since` (claims, releases and
    inventory changes all move the generation, and with it updated_at)."""
    return session.connection().execute(_CHANGES['providers'], {'since': since}).all()


def node_changes(session: Session, since) -> list[tuple[str, Any]]:
    """(uuid, updated_at) of compute nodes reported since `since`."""
    return session.connection().execute(_CHANGES['nodes'], {'since': since}).all()


def service_changes(session: Session, since, beats: bool = True):
    """Compute services written since `since`: heartbeats, enable/disable, force-down.

    Without beats, the rows written by something else than a heartbeat (a heartbeat
    stamps updated_at and last_seen_up with one value, anything else leaves
    last_seen_up behind; a heartbeat that follows hides such a change from this read,
    the read with beats sees it), plus every service disabled or forced down now, so
    that switching a host off or on is never missed.
    """
    return session.connection().execute(_CHANGES['services' if beats else 'switched'],
                                        {'since': since}).all()


def node_census(session: Session) -> tuple[int, int]:
    """(number of compute nodes, highest id): a node added or deleted changes it."""
    count, top = session.connection().execute(_CHANGES['census']).one()
    return int(count or 0), int(top or 0)


def instance_hosts(session: Session, uuids: list[str]) -> list[tuple[str, str, str]]:
    """(uuid, host, node) of the live instances among `uuids` that have a host."""
    inst = models.Instance
    return session.execute(select(inst.uuid, inst.host, inst.node).where(
        inst.uuid.in_(uuids), inst.deleted.is_(False), inst.host.is_not(None))).all()
