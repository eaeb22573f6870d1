"""Collection queries of the REST API: filters, sorting and marker paging.

Exact-value filters and sorting run in SQL; filters SQL cannot express portably
(regular expressions, tags, JSON fields) run on the sorted rows in Python, and the
marker/limit window is cut last so it always matches what the filters kept.
"""

import datetime
import re
from collections.abc import Callable, Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy import select

from novalite import exception
from novalite.db import models
from novalite.db.api import to_dict
from novalite.db.flavors import with_extra_specs
from novalite.db.retry import retry_on_transient
from novalite.db.session import reader

SERVER_SORT_KEYS = {
    'access_ip_v4', 'access_ip_v6', 'auto_disk_config', 'availability_zone',
    'config_drive', 'created_at', 'display_description', 'display_name', 'host',
    'hostname', 'image_ref', 'key_name', 'launch_index', 'launched_at', 'locked_by',
    'node', 'power_state', 'progress', 'project_id', 'task_state', 'terminated_at',
    'updated_at', 'user_id', 'uuid', 'vm_state',
}

FLAVOR_SORT_KEYS = {
    'created_at': 'created_at', 'description': 'description', 'disabled': 'disabled',
    'ephemeral_gb': 'ephemeral_gb', 'flavorid': 'flavorid', 'id': 'id',
    'is_public': 'is_public', 'memory_mb': 'memory_mb', 'name': 'name',
    'root_gb': 'root_gb', 'rxtx_factor': 'rxtx_factor', 'swap': 'swap',
    'updated_at': 'updated_at', 'vcpu_weight': 'id', 'vcpus': 'vcpus',
}


def _window(rows: list[dict], marker, marker_key: str, limit: int | None) -> list[dict]:
    """Rows after the marker row, at most ``limit`` of them; unknown marker is 400."""
    if marker is not None:
        for index, row in enumerate(rows):
            if str(row.get(marker_key)) == str(marker):
                rows = rows[index + 1:]
                break
        else:
            raise exception.Invalid('marker [%s] not found' % marker)
    if limit is not None:
        rows = rows[:limit]
    return rows


def _order(model, keys: Iterable[str], dirs: Iterable[str]) -> list:
    clauses = []
    for key, direction in zip(keys, dirs, strict=True):
        col = getattr(model, key)
        clauses.append(col.desc() if direction == 'desc' else col.asc())
    return clauses


# ---------------------------------------------------------------- servers

@retry_on_transient
def servers(filters: dict[str, Any], sort_keys: list[str] | None = None,
            sort_dirs: list[str] | None = None, limit: int | None = None, marker=None,
            predicate: Callable[[dict], bool] | None = None) -> list[dict]:
    """Instances for GET /servers.

    ``filters``: ``project_id``; ``deleted`` (True/False/None = both);
    ``changes_since``/``changes_before`` (updated_at window); ``exact`` {column: value or
    list}; ``regex`` {column: pattern}; ``flavorid``; ``tags``/``tags_any``/``not_tags``/
    ``not_tags_any`` (lists); ``since`` {column: datetime} lower bounds.
    ``predicate`` filters the rows further (e.g. on the computed status).
    """
    sort_keys = list(sort_keys or ['created_at'])
    sort_dirs = list(sort_dirs or ['desc'] * len(sort_keys))
    inst = models.Instance
    q = select(inst)
    if filters.get('project_id') is not None:
        q = q.where(inst.project_id == filters['project_id'])
    if filters.get('deleted') is not None:
        q = q.where(inst.deleted.is_(bool(filters['deleted'])))
    updated = sa.func.coalesce(inst.updated_at, inst.created_at)
    if filters.get('changes_since') is not None:
        q = q.where(updated >= filters['changes_since'])
    if filters.get('changes_before') is not None:
        q = q.where(updated <= filters['changes_before'])
    for column, value in (filters.get('exact') or {}).items():
        col = inst.metadata_ if column == 'metadata' else getattr(inst, column)
        if isinstance(value, (list, tuple, set)):
            values = list(value)
            cond = col.in_([v for v in values if v is not None])
            if None in values:
                cond = sa.or_(cond, col.is_(None))
            q = q.where(cond)
        elif value is None:
            q = q.where(col.is_(None))
        else:
            q = q.where(col == value)
    for column, value in (filters.get('since') or {}).items():
        q = q.where(getattr(inst, column) >= value)
    q = q.order_by(*_order(inst, sort_keys, sort_dirs))
    if 'created_at' not in sort_keys:
        q = q.order_by(inst.created_at.desc())
    q = q.order_by(inst.id.desc())
    with reader() as s:
        rows = [to_dict(r) for r in s.scalars(q)]
    rows = [r for r in rows if _server_python_filters(r, filters)]
    if predicate is not None:
        rows = [r for r in rows if predicate(r)]
    return _window(rows, marker, 'uuid', limit)


def _regex_match(pattern: str, value) -> bool:
    try:
        return re.search(pattern, value or '') is not None
    except re.error:
        return (pattern in (value or ''))


def _server_python_filters(row: dict, filters: dict) -> bool:
    for column, pattern in (filters.get('regex') or {}).items():
        if not _regex_match(pattern, row.get(column)):
            return False
    if filters.get('flavorid') is not None:
        if str((row.get('flavor') or {}).get('flavorid')) != str(filters['flavorid']):
            return False
    tags = set(row.get('tags') or [])
    if filters.get('tags') and not set(filters['tags']) <= tags:
        return False
    if filters.get('tags_any') and not set(filters['tags_any']) & tags:
        return False
    if filters.get('not_tags') and set(filters['not_tags']) <= tags:
        return False
    if filters.get('not_tags_any') and set(filters['not_tags_any']) & tags:
        return False
    if filters.get('ip_nomatch'):
        return False
    return True


# ---------------------------------------------------------------- migrations

@retry_on_transient
def migrations(instance_uuid=None, status=None, migration_type=None, host=None,
               source_compute=None, project_id=None, user_id=None,
               changes_since: datetime.datetime | None = None,
               changes_before: datetime.datetime | None = None,
               limit: int | None = None, marker=None) -> list[dict]:
    """Visible migrations, newest first (created_at desc, id desc); marker is a uuid."""
    mig = models.Migration
    q = select(mig).where(mig.hidden.is_(False))
    for col, value in ((mig.instance_uuid, instance_uuid), (mig.status, status),
                       (mig.migration_type, migration_type),
                       (mig.source_compute, source_compute), (mig.project_id, project_id),
                       (mig.user_id, user_id)):
        if value is not None:
            q = q.where(col == value)
    if host is not None:
        q = q.where(sa.or_(mig.source_compute == host, mig.dest_compute == host))
    return _newest_first_page(q, mig, changes_since, changes_before, marker, 'uuid', limit)


# ---------------------------------------------------------------- instance actions

@retry_on_transient
def instance_actions(instance_uuid: str, limit: int | None = None, marker=None,
                     changes_since=None, changes_before=None) -> list[dict]:
    """Actions of one server, newest first; marker is a request id."""
    act = models.InstanceAction
    q = select(act).where(act.instance_uuid == instance_uuid)
    return _newest_first_page(q, act, changes_since, changes_before, marker, 'request_id',
                              limit)


def _newest_first_page(q, model, changes_since, changes_before, marker, key, limit):
    """Apply the changes-since/before window on updated_at (created_at when never
    updated), sort newest first and cut the page after ``marker``."""
    updated = sa.func.coalesce(model.updated_at, model.created_at)
    if changes_since is not None:
        q = q.where(updated >= changes_since)
    if changes_before is not None:
        q = q.where(updated <= changes_before)
    q = q.order_by(model.created_at.desc(), model.id.desc())
    with reader() as s:
        rows = [to_dict(r) for r in s.scalars(q)]
    return _window(rows, marker, key, limit)


# ---------------------------------------------------------------- flavors

@retry_on_transient
def flavors(is_public: bool | None = True, include_disabled: bool = True,
            project_id: str | None = None, min_memory_mb: int | None = None,
            min_root_gb: int | None = None, name: str | None = None,
            sort_key: str = 'flavorid', sort_dir: str = 'asc', limit: int | None = None,
            marker=None) -> list[dict]:
    """Flavors with their extra specs.

    ``is_public`` True: public ones plus, when ``project_id`` is given, the private ones
    that project has access to; False: private only; None: all.
    """
    fl = models.Flavor
    q = select(fl)
    if not include_disabled:
        q = q.where(fl.disabled.is_(False))
    if is_public is True:
        if project_id is not None:
            granted = select(models.FlavorProject.flavor_id).where(
                models.FlavorProject.project_id == project_id)
            q = q.where(sa.or_(fl.is_public.is_(True), fl.id.in_(granted)))
        else:
            q = q.where(fl.is_public.is_(True))
    elif is_public is False:
        q = q.where(fl.is_public.is_(False))
    if min_memory_mb is not None:
        q = q.where(fl.memory_mb >= min_memory_mb)
    if min_root_gb is not None:
        q = q.where(fl.root_gb >= min_root_gb)
    if name is not None:
        q = q.where(fl.name == name)
    col = getattr(fl, FLAVOR_SORT_KEYS.get(sort_key, 'flavorid'))
    q = q.order_by(col.desc() if sort_dir == 'desc' else col.asc(),
                   fl.id.desc() if sort_dir == 'desc' else fl.id.asc())
    with reader() as s:
        out = with_extra_specs(s, list(s.scalars(q)))
    return _window(out, marker, 'flavorid', limit)


@retry_on_transient
def flavor_has_access(flavor_db_id: int, project_id: str) -> bool:
    with reader() as s:
        return s.scalars(select(models.FlavorProject.id).where(
            models.FlavorProject.flavor_id == flavor_db_id,
            models.FlavorProject.project_id == project_id)).first() is not None


# ---------------------------------------------------------------- hypervisors

@retry_on_transient
def hypervisors(hostname_pattern: str | None = None, limit: int | None = None, marker=None,
                marker_key: str = 'id') -> list[tuple[dict, dict | None]]:
    """(compute node, its service or None) pairs ordered by node id."""
    cn = models.ComputeNode
    q = select(cn).order_by(cn.id)
    if hostname_pattern is not None:
        escaped = (hostname_pattern.replace('\\', '\\\\').replace('%', '\\%')
                   .replace('_', '\\_'))
        q = q.where(cn.hypervisor_hostname.like('%' + escaped + '%', escape='\\'))
    with reader() as s:
        nodes = [to_dict(r) for r in s.scalars(q)]
        services = {svc.id: to_dict(svc) for svc in s.scalars(select(models.Service))}
    nodes = _window(nodes, marker, marker_key, limit)
    return [(n, services.get(n['service_id'])) for n in nodes]


@retry_on_transient
def provider_usage(node_uuids: list[str]) -> dict[str, tuple[dict, dict]]:
    """Provider uuid -> (resource class -> amount allocated, resource class -> reserved)
    for the providers of ``node_uuids`` that exist, in three reads whatever their number
    (a long list reads every provider's rows and keeps the wanted ones)."""
    rp, alloc, inv = models.ResourceProvider, models.Allocation, models.Inventory
    few = len(node_uuids) <= 500
    with reader() as s:
        q = select(rp.id, rp.uuid)
        ids = dict(s.execute(q.where(rp.uuid.in_(node_uuids)) if few else q).all())
        wanted = set(node_uuids)
        ids = {rp_id: uuid for rp_id, uuid in ids.items() if uuid in wanted}
        out: dict[str, tuple[dict, dict]] = {uuid: ({}, {}) for uuid in ids.values()}
        used = select(alloc.resource_provider_id, alloc.resource_class,
                      sa.func.sum(alloc.used)).group_by(alloc.resource_provider_id,
                                                        alloc.resource_class)
        held = select(inv.resource_provider_id, inv.resource_class, inv.reserved)
        if few:
            used = used.where(alloc.resource_provider_id.in_(list(ids)))
            held = held.where(inv.resource_provider_id.in_(list(ids)))
        for rp_id, rc, amount in s.execute(used):
            if rp_id in ids:
                out[ids[rp_id]][0][rc] = int(amount or 0)
        for rp_id, rc, reserved in s.execute(held):
            if rp_id in ids:
                out[ids[rp_id]][1][rc] = reserved or 0
    return out


@retry_on_transient
def instances_on_node(host: str, node: str) -> list[dict]:
    inst = models.Instance
    with reader() as s:
        return [{'name': r.display_name, 'uuid': r.uuid} for r in s.scalars(
            select(inst).where(inst.host == host, inst.node == node,
                               inst.deleted.is_(False)).order_by(inst.id))]


@retry_on_transient
def instance_count_on_host(host: str) -> int:
    inst = models.Instance
    with reader() as s:
        return s.scalar(select(sa.func.count(inst.id)).where(
            inst.host == host, inst.deleted.is_(False))) or 0
