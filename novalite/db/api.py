"""Plain query functions over the models, each in its own short transaction.

Records come back as dicts (columns by name; ``metadata`` for the instance metadata
column). State changes are compare-and-swap: an update names the state it expects and
fails with a Conflict when another request got there first.
"""

import datetime
import uuid as uuidlib
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy import func, select, update

from novalite import exception
from novalite.db import models
from novalite.db.models import utcnow
from novalite.db.session import reader, writer

_UNSET = object()


def to_dict(row) -> dict[str, Any] | None:
    if row is None:
        return None
    out = {}
    for col in row.__table__.columns:
        key = col.key
        attr = 'metadata_' if col.key == 'metadata' else col.key
        out[key] = getattr(row, attr)
    return out


def _coerce(model, values: dict) -> dict:
    """Turn ISO strings (datetimes that crossed RPC as JSON) back into datetimes."""
    for key, value in values.items():
        if isinstance(value, str):
            col = model.__table__.columns.get(key)
            if col is not None and isinstance(col.type, sa.DateTime):
                values[key] = datetime.datetime.fromisoformat(value.rstrip('Z'))
    return values


def _as_list(value) -> list:
    if value is None or value is _UNSET:
        return []
    if isinstance(value, (list, tuple, set, frozenset)):
        return list(value)
    return [value]


# ---------------------------------------------------------------- services

def service_create(host: str, binary: str, topic: str, availability_zone=None) -> dict:
    """Register a service, or refresh the row of one that registered before."""
    now = utcnow()
    with writer() as s:
        row = s.scalars(select(models.Service).where(
            models.Service.host == host, models.Service.binary == binary)).first()
        if row is None:
            row = models.Service(uuid=str(uuidlib.uuid4()), host=host, binary=binary,
                                 topic=topic, availability_zone=availability_zone,
                                 last_seen_up=now, report_count=0)
            s.add(row)
        else:
            row.last_seen_up = now
            row.topic = topic
            if availability_zone:
                row.availability_zone = availability_zone
        s.flush()
        return to_dict(row)


def service_heartbeat(host: str, binary: str) -> dict | None:
    now = utcnow()
    with writer() as s:
        s.execute(update(models.Service).where(
            models.Service.host == host, models.Service.binary == binary).values(
            last_seen_up=now, report_count=models.Service.report_count + 1,
            updated_at=now))
        return to_dict(s.scalars(select(models.Service).where(
            models.Service.host == host, models.Service.binary == binary)).first())


def service_get_all(host=None, binary=None) -> list[dict]:
    with reader() as s:
        q = select(models.Service).order_by(models.Service.id)
        if host is not None:
            q = q.where(models.Service.host == host)
        if binary is not None:
            q = q.where(models.Service.binary == binary)
        return [to_dict(r) for r in s.scalars(q)]


def service_get(service_id) -> dict:
    with reader() as s:
        col = models.Service.uuid if isinstance(service_id, str) else models.Service.id
        row = s.scalars(select(models.Service).where(col == service_id)).first()
        if row is None:
            raise exception.ServiceNotFound(service_id=service_id)
        return to_dict(row)


def service_update(service_id, **values) -> dict:
    with writer() as s:
        col = models.Service.uuid if isinstance(service_id, str) else models.Service.id
        row = s.scalars(select(models.Service).where(col == service_id)).first()
        if row is None:
            raise exception.ServiceNotFound(service_id=service_id)
        for k, v in values.items():
            setattr(row, k, v)
        row.updated_at = utcnow()
        s.flush()
        return to_dict(row)


def service_delete(service_id) -> None:
    with writer() as s:
        col = models.Service.uuid if isinstance(service_id, str) else models.Service.id
        row = s.scalars(select(models.Service).where(col == service_id)).first()
        if row is None:
            raise exception.ServiceNotFound(service_id=service_id)
        for cn in s.scalars(select(models.ComputeNode).where(
                models.ComputeNode.service_id == row.id)):
            s.execute(sa.delete(models.ResourceProvider).where(
                models.ResourceProvider.uuid == cn.uuid))
            s.delete(cn)
        s.delete(row)


def service_is_up(service: dict, down_time: int) -> bool:
    if service.get('forced_down'):
        return False
    last = service.get('last_seen_up') or service.get('updated_at') or service.get('created_at')
    if isinstance(last, str):
        last = datetime.datetime.fromisoformat(last.rstrip('Z'))
    if last is None:
        return False
    return (utcnow() - last).total_seconds() <= down_time


# ---------------------------------------------------------------- compute nodes + placement

def compute_node_update(host: str, nodename: str, resources: dict, allocation_ratios: dict,
                        reserved: dict, traits: Iterable[str] = ()) -> dict:
    """Create or refresh a compute node and its resource provider inventory.

    Inventory totals come from the hypervisor; allocation ratios and reserved amounts
    from configuration. The provider generation moves on every inventory change so a
    concurrent claim notices.
    """
    with writer() as s:
        svc = s.scalars(select(models.Service).where(
            models.Service.host == host,
            models.Service.binary == 'novalite-compute')).first()
        cn = s.scalars(select(models.ComputeNode).where(
            models.ComputeNode.host == host,
            models.ComputeNode.hypervisor_hostname == nodename)).first()
        if cn is None:
            cn = models.ComputeNode(uuid=str(uuidlib.uuid4()), host=host,
                                    hypervisor_hostname=nodename,
                                    hypervisor_type=resources.get('hypervisor_type', 'fake'))
            s.add(cn)
        cn.service_id = svc.id if svc else None
        for key in ('hypervisor_type', 'hypervisor_version', 'host_ip', 'vcpus', 'memory_mb',
                    'local_gb', 'vcpus_used', 'memory_mb_used', 'local_gb_used',
                    'running_vms', 'cpu_info', 'uptime'):
            if key in resources:
                setattr(cn, key, resources[key])
        cn.cpu_allocation_ratio = allocation_ratios['VCPU']
        cn.ram_allocation_ratio = allocation_ratios['MEMORY_MB']
        cn.disk_allocation_ratio = allocation_ratios['DISK_GB']
        cn.traits = sorted(set(traits))
        cn.updated_at = utcnow()
        s.flush()
        rp = s.scalars(select(models.ResourceProvider).where(
            models.ResourceProvider.uuid == cn.uuid)).first()
        if rp is None:
            rp = models.ResourceProvider(uuid=cn.uuid, name=nodename, generation=0)
            s.add(rp)
            s.flush()
        totals = {'VCPU': resources['vcpus'], 'MEMORY_MB': resources['memory_mb'],
                  'DISK_GB': resources['local_gb']}
        existing = {inv.resource_class: inv for inv in s.scalars(
            select(models.Inventory).where(models.Inventory.resource_provider_id == rp.id))}
        changed = False
        for rc, total in totals.items():
            inv = existing.get(rc)
            want = dict(total=int(total), reserved=int(reserved.get(rc, 0)),
                        max_unit=int(total), allocation_ratio=float(allocation_ratios[rc]))
            if inv is None:
                s.add(models.Inventory(resource_provider_id=rp.id, resource_class=rc, **want))
                changed = True
            elif any(getattr(inv, k) != v for k, v in want.items()):
                for k, v in want.items():
                    setattr(inv, k, v)
                changed = True
        if changed:
            rp.generation += 1
        s.flush()
        return to_dict(cn)


def compute_node_get_all(host=None) -> list[dict]:
    with reader() as s:
        q = select(models.ComputeNode).order_by(models.ComputeNode.id)
        if host is not None:
            q = q.where(models.ComputeNode.host == host)
        return [to_dict(r) for r in s.scalars(q)]


def compute_node_get(node_id) -> dict:
    with reader() as s:
        col = models.ComputeNode.uuid if isinstance(node_id, str) else models.ComputeNode.id
        row = s.scalars(select(models.ComputeNode).where(col == node_id)).first()
        if row is None:
            raise exception.ComputeNodeNotFound(node=node_id)
        return to_dict(row)


def compute_node_get_by_host_and_node(host: str, nodename: str | None = None) -> dict:
    with reader() as s:
        q = select(models.ComputeNode).where(models.ComputeNode.host == host)
        if nodename:
            q = q.where(models.ComputeNode.hypervisor_hostname == nodename)
        row = s.scalars(q).first()
        if row is None:
            raise exception.ComputeHostNotFound(host=host)
        return to_dict(row)


def _usage(s, rp_id: int) -> dict[str, int]:
    rows = s.execute(select(models.Allocation.resource_class, func.sum(models.Allocation.used))
                     .where(models.Allocation.resource_provider_id == rp_id)
                     .group_by(models.Allocation.resource_class))
    return {rc: int(used or 0) for rc, used in rows}


def _provider_ids(s, rp_uuids: Iterable[str]) -> dict[str, models.ResourceProvider]:
    rps = {rp.uuid: rp for rp in s.scalars(select(models.ResourceProvider).where(
        models.ResourceProvider.uuid.in_(list(rp_uuids))))}
    for u in rp_uuids:
        if u not in rps:
            raise exception.ResourceProviderNotFound(uuid=u)
    return rps


def _write_allocations(s, consumer_id, requests, project_id, user_id, replace):
    """Check capacity and write allocations for one consumer; the caller retries races."""
    rps = _provider_ids(s, requests.keys())
    if replace:
        s.execute(sa.delete(models.Allocation).where(
            models.Allocation.consumer_id == consumer_id))
    for rp_uuid, resources in requests.items():
        rp = rps[rp_uuid]
        inventories = {inv.resource_class: inv for inv in s.scalars(
            select(models.Inventory).where(models.Inventory.resource_provider_id == rp.id))}
        used = _usage(s, rp.id)
        for rc, amount in resources.items():
            if not amount:
                continue
            inv = inventories.get(rc)
            if inv is None:
                raise exception.InsufficientResources(amount=amount, resource_class=rc,
                                                      provider=rp.name, free=0)
            capacity = int((inv.total - inv.reserved) * inv.allocation_ratio)
            free = capacity - used.get(rc, 0)
            if amount > free or amount > inv.max_unit:
                raise exception.InsufficientResources(amount=amount, resource_class=rc,
                                                      provider=rp.name, free=max(free, 0))
            s.add(models.Allocation(resource_provider_id=rp.id, consumer_id=consumer_id,
                                    resource_class=rc, used=int(amount),
                                    project_id=project_id, user_id=user_id))
        # Generation CAS: a concurrent claim on this provider makes one of us retry.
        res = s.execute(update(models.ResourceProvider)
                        .where(models.ResourceProvider.id == rp.id,
                               models.ResourceProvider.generation == rp.generation)
                        .values(generation=rp.generation + 1))
        if res.rowcount != 1:
            raise exception.ResourceProviderGenerationConflict(uuid=rp.uuid)


def claim_resources(consumer_id: str, requests: dict[str, dict[str, int]], project_id=None,
                    user_id=None, replace: bool = False, retries: int = 10) -> None:
    """Atomically allocate resources on providers for a consumer.

    ``requests`` maps provider uuid -> {resource class: amount}. With ``replace`` the
    consumer's existing allocations are dropped first in the same transaction. Raises
    InsufficientResources when any provider lacks room; nothing is written then.
    """
    for attempt in range(retries):
        try:
            with writer() as s:
                _write_allocations(s, consumer_id, requests, project_id, user_id, replace)
            return
        except exception.ResourceProviderGenerationConflict:
            if attempt == retries - 1:
                raise


def get_allocations(consumer_id: str) -> dict[str, dict[str, int]]:
    """Provider uuid -> {resource class: amount} of one consumer."""
    with reader() as s:
        rows = s.execute(select(models.ResourceProvider.uuid, models.Allocation.resource_class,
                                models.Allocation.used)
                         .join(models.ResourceProvider,
                               models.ResourceProvider.id ==
                               models.Allocation.resource_provider_id)
                         .where(models.Allocation.consumer_id == consumer_id))
        out: dict[str, dict[str, int]] = {}
        for rp_uuid, rc, used in rows:
            out.setdefault(rp_uuid, {})[rc] = out.get(rp_uuid, {}).get(rc, 0) + used
        return out


def get_allocations_full(consumer_id: str) -> dict:
    """Allocations plus the owning project/user, for moving them to another consumer."""
    with reader() as s:
        row = s.scalars(select(models.Allocation).where(
            models.Allocation.consumer_id == consumer_id)).first()
    return {'allocations': get_allocations(consumer_id),
            'project_id': row.project_id if row else None,
            'user_id': row.user_id if row else None}


def delete_allocations(consumer_id: str, rp_uuid: str | None = None) -> int:
    """Drop a consumer's allocations (on one provider only when ``rp_uuid`` is given)."""
    with writer() as s:
        q = sa.delete(models.Allocation).where(models.Allocation.consumer_id == consumer_id)
        if rp_uuid is not None:
            rp = s.scalars(select(models.ResourceProvider).where(
                models.ResourceProvider.uuid == rp_uuid)).first()
            if rp is None:
                return 0
            q = q.where(models.Allocation.resource_provider_id == rp.id)
        rps = [r for (r,) in s.execute(select(models.Allocation.resource_provider_id).where(
            models.Allocation.consumer_id == consumer_id).distinct())]
        n = s.execute(q).rowcount
        if rps:
            s.execute(update(models.ResourceProvider).where(
                models.ResourceProvider.id.in_(rps)).values(
                generation=models.ResourceProvider.generation + 1))
        return n


def move_allocations(source_consumer: str, target_consumer: str) -> None:
    """Hand every allocation of one consumer to another (e.g. instance -> migration).

    The target's own allocations are replaced. When the source holds nothing (a move
    that already happened, run again after a crash) nothing changes.
    """
    with writer() as s:
        held = s.scalars(select(models.Allocation.id).where(
            models.Allocation.consumer_id == source_consumer).limit(1)).first()
        if held is None:
            return
        s.execute(sa.delete(models.Allocation).where(
            models.Allocation.consumer_id == target_consumer))
        s.execute(update(models.Allocation).where(
            models.Allocation.consumer_id == source_consumer).values(
            consumer_id=target_consumer))


def provider_usages(rp_uuid: str) -> dict[str, int]:
    with reader() as s:
        rp = s.scalars(select(models.ResourceProvider).where(
            models.ResourceProvider.uuid == rp_uuid)).first()
        if rp is None:
            raise exception.ResourceProviderNotFound(uuid=rp_uuid)
        return _usage(s, rp.id)


def provider_inventories(rp_uuid: str) -> dict[str, dict]:
    with reader() as s:
        rp = s.scalars(select(models.ResourceProvider).where(
            models.ResourceProvider.uuid == rp_uuid)).first()
        if rp is None:
            raise exception.ResourceProviderNotFound(uuid=rp_uuid)
        return {inv.resource_class: to_dict(inv) for inv in s.scalars(
            select(models.Inventory).where(models.Inventory.resource_provider_id == rp.id))}


def all_consumers() -> set[str]:
    with reader() as s:
        return set(s.scalars(select(models.Allocation.consumer_id).distinct()))


# ---------------------------------------------------------------- flavors

def _flavor_dict(s, row) -> dict:
    d = to_dict(row)
    d['extra_specs'] = {e.key: e.value for e in s.scalars(
        select(models.FlavorExtraSpec).where(models.FlavorExtraSpec.flavor_id == row.id))}
    return d


def flavor_create(name, memory_mb, vcpus, root_gb=0, flavorid=None, ephemeral_gb=0, swap=0,
                  rxtx_factor=1.0, is_public=True, description=None, extra_specs=None,
                  disabled=False) -> dict:
    flavorid = str(flavorid) if flavorid is not None else str(uuidlib.uuid4())
    with writer() as s:
        if s.scalars(select(models.Flavor).where(models.Flavor.flavorid == flavorid)).first():
            raise exception.FlavorExists(field='id', value=flavorid)
        if s.scalars(select(models.Flavor).where(models.Flavor.name == name)).first():
            raise exception.FlavorExists(field='name', value=name)
        row = models.Flavor(name=name, memory_mb=memory_mb, vcpus=vcpus, root_gb=root_gb,
                            flavorid=flavorid, ephemeral_gb=ephemeral_gb, swap=swap,
                            rxtx_factor=rxtx_factor, is_public=is_public,
                            description=description, disabled=disabled)
        s.add(row)
        s.flush()
        for k, v in (extra_specs or {}).items():
            s.add(models.FlavorExtraSpec(flavor_id=row.id, key=k, value=str(v)))
        s.flush()
        return _flavor_dict(s, row)


def flavor_get_by_flavorid(flavorid, include_disabled=True) -> dict:
    with reader() as s:
        row = s.scalars(select(models.Flavor).where(
            models.Flavor.flavorid == str(flavorid))).first()
        if row is None or (row.disabled and not include_disabled):
            raise exception.FlavorNotFound(flavor_id=flavorid)
        return _flavor_dict(s, row)


def flavor_get(flavor_db_id: int) -> dict:
    with reader() as s:
        row = s.get(models.Flavor, flavor_db_id)
        if row is None:
            raise exception.FlavorNotFound(flavor_id=flavor_db_id)
        return _flavor_dict(s, row)


def flavor_get_all() -> list[dict]:
    with reader() as s:
        rows = list(s.scalars(select(models.Flavor).order_by(models.Flavor.flavorid)))
        specs: dict[int, dict] = {}
        for e in s.scalars(select(models.FlavorExtraSpec)):
            specs.setdefault(e.flavor_id, {})[e.key] = e.value
        out = []
        for r in rows:
            d = to_dict(r)
            d['extra_specs'] = specs.get(r.id, {})
            out.append(d)
        return out


def flavor_projects(flavor_db_id: int) -> list[str]:
    with reader() as s:
        return list(s.scalars(select(models.FlavorProject.project_id).where(
            models.FlavorProject.flavor_id == flavor_db_id)))


def flavor_update(flavorid, **values) -> dict:
    with writer() as s:
        row = s.scalars(select(models.Flavor).where(
            models.Flavor.flavorid == str(flavorid))).first()
        if row is None:
            raise exception.FlavorNotFound(flavor_id=flavorid)
        for k, v in values.items():
            setattr(row, k, v)
        s.flush()
        return _flavor_dict(s, row)


def flavor_destroy(flavorid) -> None:
    with writer() as s:
        row = s.scalars(select(models.Flavor).where(
            models.Flavor.flavorid == str(flavorid))).first()
        if row is None:
            raise exception.FlavorNotFound(flavor_id=flavorid)
        s.execute(sa.delete(models.FlavorExtraSpec).where(
            models.FlavorExtraSpec.flavor_id == row.id))
        s.execute(sa.delete(models.FlavorProject).where(
            models.FlavorProject.flavor_id == row.id))
        s.delete(row)


DEFAULT_FLAVORS = [
    # flavorid, name, memory_mb, vcpus, root_gb (devstack's m1 family)
    ('1', 'm1.tiny', 512, 1, 1),
    ('2', 'm1.small', 2048, 1, 20),
    ('3', 'm1.medium', 4096, 2, 40),
    ('4', 'm1.large', 8192, 4, 80),
    ('5', 'm1.xlarge', 16384, 8, 160),
]


def ensure_default_flavors() -> int:
    """Create the m1.* flavors that are missing; returns how many were created."""
    existing = {f['flavorid'] for f in flavor_get_all()}
    n = 0
    for flavorid, name, ram, vcpus, disk in DEFAULT_FLAVORS:
        if flavorid not in existing:
            try:
                flavor_create(name, ram, vcpus, disk, flavorid=flavorid)
                n += 1
            except exception.FlavorExists:
                pass
    return n


def flavor_record(flavor: dict) -> dict:
    """The flavor as it is stored inside an instance (a self-contained snapshot)."""
    return {k: flavor.get(k) for k in ('id', 'flavorid', 'name', 'memory_mb', 'vcpus',
                                       'root_gb', 'ephemeral_gb', 'swap', 'rxtx_factor',
                                       'is_public', 'description')} | {
        'extra_specs': dict(flavor.get('extra_specs') or {})}


# ---------------------------------------------------------------- images

def image_create(name, location=None, size=0, disk_format='qcow2', container_format='bare',
                 min_disk=0, min_ram=0, uuid=None, owner=None, visibility='public',
                 properties=None) -> dict:
    with writer() as s:
        row = models.Image(uuid=uuid or str(uuidlib.uuid4()), name=name, location=location,
                           size=size, disk_format=disk_format,
                           container_format=container_format, min_disk=min_disk,
                           min_ram=min_ram, owner=owner, visibility=visibility,
                           properties=properties or {}, status='active')
        s.add(row)
        s.flush()
        return to_dict(row)


def image_get(image_uuid: str) -> dict:
    with reader() as s:
        row = s.scalars(select(models.Image).where(models.Image.uuid == image_uuid)).first()
        if row is None:
            raise exception.ImageNotFound(image_id=image_uuid)
        return to_dict(row)


def image_get_all() -> list[dict]:
    with reader() as s:
        return [to_dict(r) for r in s.scalars(select(models.Image).order_by(models.Image.id))]


def image_delete(image_uuid: str) -> None:
    with writer() as s:
        n = s.execute(sa.delete(models.Image).where(models.Image.uuid == image_uuid)).rowcount
        if not n:
            raise exception.ImageNotFound(image_id=image_uuid)


# ---------------------------------------------------------------- instances

def instance_create(values: dict) -> dict:
    values = dict(values)
    values.setdefault('uuid', str(uuidlib.uuid4()))
    meta = values.pop('metadata', None)
    with writer() as s:
        row = models.Instance(**values)
        row.metadata_ = meta or {}
        s.add(row)
        s.flush()
        return to_dict(row)


def instance_get(instance_uuid: str, read_deleted: str = 'no') -> dict:
    with reader() as s:
        q = select(models.Instance).where(models.Instance.uuid == instance_uuid)
        if read_deleted == 'no':
            q = q.where(models.Instance.deleted.is_(False))
        row = s.scalars(q).first()
        if row is None:
            raise exception.InstanceNotFound(instance_id=instance_uuid)
        return to_dict(row)


def instance_get_all_by_host(host: str, include_deleted: bool = False) -> list[dict]:
    with reader() as s:
        q = select(models.Instance).where(models.Instance.host == host)
        if not include_deleted:
            q = q.where(models.Instance.deleted.is_(False))
        return [to_dict(r) for r in s.scalars(q)]


def instance_get_all_filtered(**filters) -> list[dict]:
    """Instances matching exact-value filters on columns (None means IS NULL)."""
    with reader() as s:
        q = select(models.Instance).where(models.Instance.deleted.is_(False))
        for key, value in filters.items():
            col = getattr(models.Instance, key)
            if isinstance(value, (list, tuple, set)):
                q = q.where(col.in_(list(value)))
            elif value is None:
                q = q.where(col.is_(None))
            else:
                q = q.where(col == value)
        return [to_dict(r) for r in s.scalars(q)]


def instance_update(instance_uuid: str, values: dict, expected_task_state=_UNSET,
                    expected_vm_state=_UNSET, expected_host=_UNSET) -> dict:
    """Compare-and-swap update of an instance.

    ``expected_task_state`` (a value or list; None included means "no task") must hold
    at the moment of the write, else UnexpectedTaskStateError; likewise the vm_state and
    host expectations. Returns the updated record.
    """
    values = dict(values)
    if 'metadata' in values:
        values['metadata_'] = values.pop('metadata')
    values['updated_at'] = utcnow()
    _coerce(models.Instance, values)
    with writer() as s:
        q = update(models.Instance).where(models.Instance.uuid == instance_uuid,
                                          models.Instance.deleted.is_(False))
        for col, expected in ((models.Instance.task_state, expected_task_state),
                              (models.Instance.vm_state, expected_vm_state),
                              (models.Instance.host, expected_host)):
            if expected is _UNSET:
                continue
            wanted = _as_list(expected) if expected is not None else [None]
            non_null = [w for w in wanted if w is not None]
            cond = col.in_(non_null) if non_null else sa.false()
            if None in wanted:
                cond = sa.or_(cond, col.is_(None))
            q = q.where(cond)
        res = s.execute(q.values(**values).execution_options(synchronize_session=False))
        row = s.scalars(select(models.Instance).where(
            models.Instance.uuid == instance_uuid)).first()
        if res.rowcount != 1:
            if row is None or row.deleted:
                raise exception.InstanceNotFound(instance_id=instance_uuid)
            if expected_task_state is not _UNSET and row.task_state not in (
                    _as_list(expected_task_state) if expected_task_state is not None
                    else [None]):
                raise exception.UnexpectedTaskStateError(
                    instance_uuid=instance_uuid, expected=expected_task_state,
                    actual=row.task_state)
            raise exception.UnexpectedTaskStateError(
                instance_uuid=instance_uuid,
                expected={'vm_state': expected_vm_state if expected_vm_state is not _UNSET
                          else '*', 'host': expected_host if expected_host is not _UNSET
                          else '*'},
                actual={'vm_state': row.vm_state, 'host': row.host})
        return to_dict(row)


def instance_destroy(instance_uuid: str) -> dict:
    """Mark an instance deleted (soft row delete) and drop its allocations."""
    now = utcnow()
    with writer() as s:
        row = s.scalars(select(models.Instance).where(
            models.Instance.uuid == instance_uuid)).first()
        if row is None:
            raise exception.InstanceNotFound(instance_id=instance_uuid)
        row.deleted = True
        row.deleted_at = now
        row.terminated_at = row.terminated_at or now
        row.vm_state = 'deleted'
        row.task_state = None
        row.updated_at = now
        rps = [r for (r,) in s.execute(select(models.Allocation.resource_provider_id).where(
            models.Allocation.consumer_id == instance_uuid).distinct())]
        s.execute(sa.delete(models.Allocation).where(
            models.Allocation.consumer_id == instance_uuid))
        if rps:
            s.execute(update(models.ResourceProvider).where(
                models.ResourceProvider.id.in_(rps)).values(
                generation=models.ResourceProvider.generation + 1))
        s.flush()
        return to_dict(row)


# ---------------------------------------------------------------- request specs

def request_spec_save(instance_uuid: str, spec: dict) -> None:
    with writer() as s:
        row = s.scalars(select(models.RequestSpec).where(
            models.RequestSpec.instance_uuid == instance_uuid)).first()
        if row is None:
            s.add(models.RequestSpec(instance_uuid=instance_uuid, spec=spec))
        else:
            row.spec = spec
            row.updated_at = utcnow()


def request_spec_get(instance_uuid: str) -> dict | None:
    with reader() as s:
        row = s.scalars(select(models.RequestSpec).where(
            models.RequestSpec.instance_uuid == instance_uuid)).first()
        return dict(row.spec) if row else None


# ---------------------------------------------------------------- actions, events, faults

def action_start(instance_uuid: str, action: str, request_id: str, user_id=None,
                 project_id=None) -> dict:
    now = utcnow()
    with writer() as s:
        row = models.InstanceAction(instance_uuid=instance_uuid, action=action,
                                    request_id=request_id, user_id=user_id,
                                    project_id=project_id, start_time=now, updated_at=now)
        s.add(row)
        s.flush()
        return to_dict(row)


def _action_for(s, instance_uuid, request_id):
    return s.scalars(select(models.InstanceAction).where(
        models.InstanceAction.instance_uuid == instance_uuid,
        models.InstanceAction.request_id == request_id)
        .order_by(models.InstanceAction.id.desc())).first()


def action_event_start(instance_uuid: str, request_id: str, event: str, host=None) -> None:
    now = utcnow()
    with writer() as s:
        action = _action_for(s, instance_uuid, request_id)
        if action is None:
            return
        s.add(models.InstanceActionEvent(action_id=action.id, event=event, start_time=now,
                                         host=host, created_at=now))
        action.updated_at = now


def action_event_finish(instance_uuid: str, request_id: str, event: str, result: str,
                        traceback=None, details=None, host=None) -> None:
    """Close the newest open event of that name; ``result`` is Success or Error."""
    now = utcnow()
    with writer() as s:
        action = _action_for(s, instance_uuid, request_id)
        if action is None:
            return
        ev = s.scalars(select(models.InstanceActionEvent).where(
            models.InstanceActionEvent.action_id == action.id,
            models.InstanceActionEvent.event == event,
            models.InstanceActionEvent.finish_time.is_(None))
            .order_by(models.InstanceActionEvent.id.desc())).first()
        if ev is None:
            ev = models.InstanceActionEvent(action_id=action.id, event=event,
                                            start_time=now, host=host, created_at=now)
            s.add(ev)
        ev.finish_time = now
        ev.result = result
        ev.traceback = traceback
        ev.details = details
        ev.updated_at = now
        action.updated_at = now
        if result.lower() == 'error':
            action.message = 'Error'


def actions_get(instance_uuid: str) -> list[dict]:
    with reader() as s:
        return [to_dict(r) for r in s.scalars(select(models.InstanceAction).where(
            models.InstanceAction.instance_uuid == instance_uuid).order_by(
            models.InstanceAction.created_at.desc(), models.InstanceAction.id.desc()))]


def action_get_by_request_id(instance_uuid: str, request_id: str) -> dict:
    with reader() as s:
        row = _action_for(s, instance_uuid, request_id)
        if row is None:
            raise exception.ActionNotFound(request_id=request_id)
        return to_dict(row)


def action_events_get(action_id: int) -> list[dict]:
    with reader() as s:
        return [to_dict(r) for r in s.scalars(select(models.InstanceActionEvent).where(
            models.InstanceActionEvent.action_id == action_id).order_by(
            models.InstanceActionEvent.created_at.desc(),
            models.InstanceActionEvent.id.desc()))]


def fault_create(instance_uuid: str, code: int, message: str, details=None, host=None) -> dict:
    with writer() as s:
        row = models.InstanceFault(instance_uuid=instance_uuid, code=code,
                                   message=(message or '')[:255], details=details, host=host)
        s.add(row)
        s.flush()
        return to_dict(row)


def fault_get_latest(instance_uuids: Iterable[str]) -> dict[str, dict]:
    """Newest fault per instance."""
    uuids = list(instance_uuids)
    if not uuids:
        return {}
    with reader() as s:
        out: dict[str, dict] = {}
        for row in s.scalars(select(models.InstanceFault).where(
                models.InstanceFault.instance_uuid.in_(uuids)).order_by(
                models.InstanceFault.id.desc())):
            out.setdefault(row.instance_uuid, to_dict(row))
        return out


# ---------------------------------------------------------------- migrations

def migration_create(values: dict) -> dict:
    values = dict(values)
    values.setdefault('uuid', str(uuidlib.uuid4()))
    with writer() as s:
        row = models.Migration(**values)
        s.add(row)
        s.flush()
        return to_dict(row)


def migration_get(migration_id) -> dict:
    with reader() as s:
        col = models.Migration.uuid if isinstance(migration_id, str) else models.Migration.id
        row = s.scalars(select(models.Migration).where(col == migration_id)).first()
        if row is None:
            raise exception.MigrationNotFound(migration_id=migration_id)
        return to_dict(row)


def migration_update(migration_id, values: dict, expected_status=_UNSET) -> dict:
    """Update a migration; with ``expected_status`` only from one of those statuses."""
    values = dict(values)
    values['updated_at'] = utcnow()
    _coerce(models.Migration, values)
    with writer() as s:
        col = models.Migration.uuid if isinstance(migration_id, str) else models.Migration.id
        q = update(models.Migration).where(col == migration_id)
        if expected_status is not _UNSET:
            q = q.where(models.Migration.status.in_(_as_list(expected_status)))
        res = s.execute(q.values(**values).execution_options(synchronize_session=False))
        row = s.scalars(select(models.Migration).where(col == migration_id)).first()
        if row is None:
            raise exception.MigrationNotFound(migration_id=migration_id)
        if res.rowcount != 1:
            raise exception.UnexpectedMigrationStatus(migration_id=migration_id,
                                                      actual=row.status,
                                                      expected=expected_status)
        return to_dict(row)


def migration_get_all(instance_uuid=None, status=None, migration_type=None, host=None,
                      source_compute=None, dest_compute=None) -> list[dict]:
    with reader() as s:
        q = select(models.Migration).where(models.Migration.hidden.is_(False))
        if instance_uuid is not None:
            q = q.where(models.Migration.instance_uuid == instance_uuid)
        if status is not None:
            q = q.where(models.Migration.status.in_(_as_list(status)))
        if migration_type is not None:
            q = q.where(models.Migration.migration_type.in_(_as_list(migration_type)))
        if host is not None:
            q = q.where(sa.or_(models.Migration.source_compute == host,
                               models.Migration.dest_compute == host))
        if source_compute is not None:
            q = q.where(models.Migration.source_compute == source_compute)
        if dest_compute is not None:
            q = q.where(models.Migration.dest_compute == dest_compute)
        q = q.order_by(models.Migration.created_at.desc(), models.Migration.id.desc())
        return [to_dict(r) for r in s.scalars(q)]


# ---------------------------------------------------------------- quotas

DEFAULT_QUOTAS = {'instances': 10, 'cores': 20, 'ram': 51200}


def quota_get_all(project_id: str) -> dict[str, int]:
    with reader() as s:
        limits = dict(DEFAULT_QUOTAS)
        for row in s.scalars(select(models.Quota).where(models.Quota.project_id == project_id)):
            limits[row.resource] = row.hard_limit
        return limits


def quota_set(project_id: str, resource: str, hard_limit: int) -> None:
    with writer() as s:
        row = s.scalars(select(models.Quota).where(models.Quota.project_id == project_id,
                                                   models.Quota.resource == resource)).first()
        if row is None:
            s.add(models.Quota(project_id=project_id, resource=resource,
                               hard_limit=hard_limit))
        else:
            row.hard_limit = hard_limit


def quota_usage(project_id: str) -> dict[str, int]:
    """Usage counted from live instances (cores/ram from the larger flavor during a move)."""
    with reader() as s:
        rows = s.execute(select(models.Instance.flavor, models.Instance.new_flavor).where(
            models.Instance.project_id == project_id, models.Instance.deleted.is_(False)))
        usage = {'instances': 0, 'cores': 0, 'ram': 0}
        for flavor, new_flavor in rows:
            usage['instances'] += 1
            cores = max(flavor['vcpus'], (new_flavor or {}).get('vcpus', 0))
            ram = max(flavor['memory_mb'], (new_flavor or {}).get('memory_mb', 0))
            usage['cores'] += cores
            usage['ram'] += ram
        return usage


def quota_check(project_id: str, deltas: dict[str, int]) -> None:
    """Raise OverQuota when adding ``deltas`` to the project's usage passes a limit."""
    limits = quota_get_all(project_id)
    usage = quota_usage(project_id)
    overs = [r for r, d in deltas.items()
             if d > 0 and limits.get(r, -1) >= 0 and usage.get(r, 0) + d > limits[r]]
    if overs:
        raise exception.OverQuota(
            overs=', '.join(overs),
            req=', '.join(str(deltas[r]) for r in overs),
            used=', '.join(str(usage.get(r, 0)) for r in overs),
            allowed=', '.join(str(limits[r]) for r in overs))
