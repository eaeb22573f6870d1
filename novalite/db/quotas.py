"""Quota limits and usage counted from live instances."""


from sqlalchemy import select

from novalite import exception
from novalite.db import models
from novalite.db.session import reader, writer

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
