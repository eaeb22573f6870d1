"""Quota limits and usage counted from live instances and server groups."""


import sqlalchemy as sa
from sqlalchemy import select

from novalite import exception
from novalite.db import models
from novalite.db.retry import retry_on_transient
from novalite.db.session import connection_reader, reader, writer

# The resources os-quota-sets knows, in Nova's order; the defaults come from [quota].
QUOTA_RESOURCES = ('instances', 'cores', 'ram', 'metadata_items', 'key_pairs',
                   'server_groups', 'server_group_members', 'injected_files',
                   'injected_file_content_bytes', 'injected_file_path_length')
# Counted from instances; server_groups is counted from the groups of the project and
# server_group_members per group (db/server_groups.py); the others have no usage.
COUNTED_RESOURCES = ('instances', 'cores', 'ram')
DEFAULT_QUOTAS = {'instances': 10, 'cores': 20, 'ram': 51200}


def quota_defaults() -> dict[str, int]:
    """The limits of a project nobody set a quota for: [quota] options."""
    from novalite.conf import CONF
    return {name: getattr(CONF.quota, name) for name in QUOTA_RESOURCES}


_Q = models.Quota.__table__
# Built once: every boot reads its project's limits.
_LIMITS = select(_Q.c.resource, _Q.c.hard_limit).where(_Q.c.project_id == sa.bindparam('p'))


@retry_on_transient
def quota_get_all(project_id: str) -> dict[str, int]:
    with connection_reader() as conn:
        limits = quota_defaults()
        for resource, hard_limit in conn.execute(_LIMITS, {'p': project_id}):
            limits[resource] = hard_limit
        return limits


@retry_on_transient
def quota_delete_all(project_id: str) -> None:
    """Forget a project's own limits: it falls back to the defaults."""
    with writer() as s:
        s.execute(sa.delete(models.Quota).where(models.Quota.project_id == project_id))


@retry_on_transient
def quota_set(project_id: str, resource: str, hard_limit: int) -> None:
    with writer() as s:
        row = s.scalars(select(models.Quota).where(models.Quota.project_id == project_id,
                                                   models.Quota.resource == resource)).first()
        if row is None:
            s.add(models.Quota(project_id=project_id, resource=resource,
                               hard_limit=hard_limit))
        else:
            row.hard_limit = hard_limit


@retry_on_transient
def quota_usage(project_id: str) -> dict[str, int]:
    """Usage counted from live instances (cores/ram from the larger flavor during a move)
    and the project's server groups."""
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
        usage['server_groups'] = int(s.scalar(
            select(sa.func.count(models.ServerGroup.id)).where(
                models.ServerGroup.project_id == project_id)))
        return usage


@retry_on_transient
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


@retry_on_transient
def quota_recheck(project_id: str, limits: dict[str, int] | None = None) -> None:
    """Raise OverQuota when the project's current usage is already past a limit
    (``limits``, as quota_get_all returns them; read now when not given).

    Called after a request wrote its instances, like Nova's [quota]recheck_quota: two
    requests that both passed the first check each see the other's rows here, so at
    least one of them backs out and the limit holds.
    """
    if limits is None:
        limits = quota_get_all(project_id)
    if all(limits.get(r, -1) < 0 for r in COUNTED_RESOURCES):
        return  # nothing counted is limited: no need to count
    usage = quota_usage(project_id)
    overs = [r for r in COUNTED_RESOURCES
             if limits.get(r, -1) >= 0 and usage.get(r, 0) > limits[r]]
    if overs:
        raise exception.OverQuota(
            overs=', '.join(overs), req=', '.join('0' for _ in overs),
            used=', '.join(str(usage[r]) for r in overs),
            allowed=', '.join(str(limits[r]) for r in overs))
