"""Host drains: the drain record, one row per server, and their compare-and-swap writes.

A drain is created in one transaction with its server rows and the disabling of the
host's compute service, under a row lock on that service so two requests cannot both
start a drain of one host. Every later write names the state it expects, so two
conductors (or a conductor and an operator's cancel) never both act on one row.
"""

import uuid as uuidlib

from sqlalchemy import select, update

from novalite import exception
from novalite.compute import states
from novalite.db import models
from novalite.db.common import to_dict
from novalite.db.models import utcnow
from novalite.db.retry import retry_on_transient
from novalite.db.session import reader, writer

DS = states.DrainStatus
SS = states.DrainServerState
COMPUTE = 'novalite-compute'


def disabled_reason(drain_uuid: str) -> str:
    return 'host drain %s' % drain_uuid


def _record(s, row) -> dict:
    out = to_dict(row)
    servers = s.scalars(select(models.HostDrainServer)
                        .where(models.HostDrainServer.drain_id == row.id)
                        .order_by(models.HostDrainServer.id))
    out['servers'] = [to_dict(r) for r in servers]
    return out


def _get(s, drain_id):
    col = models.HostDrain.uuid if isinstance(drain_id, str) else models.HostDrain.id
    row = s.scalars(select(models.HostDrain).where(col == drain_id)).first()
    if row is None:
        raise exception.HostDrainNotFound(drain_id=drain_id)
    return row


@retry_on_transient
def drain_create(host: str, mode: str, max_parallel: int, instance_uuids, user_id=None,
                 project_id=None) -> dict:
    """Start draining ``host``: the drain, a pending row per server, and the host's
    compute service disabled with the drain named as the reason."""
    with writer() as s:
        service = s.scalars(select(models.Service).where(
            models.Service.host == host, models.Service.binary == COMPUTE)
            .with_for_update()).first()
        if service is None:
            raise exception.ComputeHostNotFound(host=host)
        running = s.scalars(select(models.HostDrain).where(
            models.HostDrain.host == host,
            models.HostDrain.status.in_(states.DRAIN_ACTIVE))).first()
        if running is not None:
            raise exception.HostDrainExists(host=host, drain_id=running.uuid)
        row = models.HostDrain(uuid=str(uuidlib.uuid4()), host=host, mode=mode,
                               max_parallel=max_parallel, status=DS.RUNNING,
                               user_id=user_id, project_id=project_id)
        s.add(row)
        s.flush()
        for instance_uuid in dict.fromkeys(instance_uuids):
            s.add(models.HostDrainServer(drain_id=row.id, instance_uuid=instance_uuid,
                                         state=SS.PENDING, attempts=0))
        service.disabled = True
        service.disabled_reason = disabled_reason(row.uuid)
        service.updated_at = utcnow()
        s.flush()
        return _record(s, row)


@retry_on_transient
def drain_get(drain_id) -> dict:
    with reader() as s:
        return _record(s, _get(s, drain_id))


@retry_on_transient
def drain_get_all(host=None, status=None) -> list[dict]:
    """Drains, newest first; of one host and in some statuses when asked."""
    with reader() as s:
        q = select(models.HostDrain).order_by(models.HostDrain.id.desc())
        if host is not None:
            q = q.where(models.HostDrain.host == host)
        if status is not None:
            statuses = [status] if isinstance(status, str) else list(status)
            q = q.where(models.HostDrain.status.in_(statuses))
        return [_record(s, r) for r in s.scalars(q).all()]


@retry_on_transient
def drain_cancel(drain_id) -> dict:
    """Stop a running drain: no new move starts, pending servers are cancelled; the
    drain stays ``cancelling`` until the moves under way have ended."""
    with writer() as s:
        row = _get(s, drain_id)
        done = s.execute(update(models.HostDrain).where(
            models.HostDrain.id == row.id, models.HostDrain.status == DS.RUNNING).values(
            status=DS.CANCELLING, updated_at=utcnow())).rowcount
        if not done:
            s.refresh(row)
            raise exception.HostDrainFinished(drain_id=row.uuid, status=row.status)
        s.execute(update(models.HostDrainServer).where(
            models.HostDrainServer.drain_id == row.id,
            models.HostDrainServer.state == SS.PENDING).values(
            state=SS.CANCELLED, reason='The drain was cancelled.', updated_at=utcnow()))
        s.refresh(row)
        return _record(s, row)


@retry_on_transient
def drain_take(drain_id: int, expected_driver, driver: str) -> bool:
    """Compare-and-swap the conductor driving an active drain."""
    with writer() as s:
        return bool(s.execute(update(models.HostDrain).where(
            models.HostDrain.id == drain_id,
            models.HostDrain.status.in_(states.DRAIN_ACTIVE),
            models.HostDrain.driver.is_(None) if expected_driver is None
            else models.HostDrain.driver == expected_driver).values(
            driver=driver, updated_at=utcnow())).rowcount)


@retry_on_transient
def drain_finish(drain_id: int, driver: str, status: str) -> bool:
    """End an active drain driven by ``driver`` in the final ``status``."""
    with writer() as s:
        return bool(s.execute(update(models.HostDrain).where(
            models.HostDrain.id == drain_id,
            models.HostDrain.status.in_(states.DRAIN_ACTIVE),
            models.HostDrain.driver == driver).values(
            status=status, finished_at=utcnow(), updated_at=utcnow())).rowcount)


@retry_on_transient
def drain_add_servers(drain_id: int, instance_uuids) -> int:
    """Servers found on the host after the drain started (a move into it that was
    under way): pending rows for the ones the drain does not hold yet."""
    with writer() as s:
        known = set(s.scalars(select(models.HostDrainServer.instance_uuid).where(
            models.HostDrainServer.drain_id == drain_id)))
        new = [u for u in dict.fromkeys(instance_uuids) if u not in known]
        for instance_uuid in new:
            s.add(models.HostDrainServer(drain_id=drain_id, instance_uuid=instance_uuid,
                                         state=SS.PENDING, attempts=0))
        return len(new)


@retry_on_transient
def drain_server_update(drain_id: int, instance_uuid: str, expected_state: str,
                        **values) -> bool:
    """Compare-and-swap one server row of an active drain from ``expected_state``."""
    values.setdefault('updated_at', utcnow())
    with writer() as s:
        running = select(models.HostDrain.id).where(
            models.HostDrain.id == drain_id, models.HostDrain.status.in_(states.DRAIN_ACTIVE))
        return bool(s.execute(update(models.HostDrainServer).where(
            models.HostDrainServer.drain_id == drain_id,
            models.HostDrainServer.instance_uuid == instance_uuid,
            models.HostDrainServer.state == expected_state,
            models.HostDrainServer.drain_id.in_(running)).values(**values)).rowcount)


@retry_on_transient
def drain_migrations_under_way(host: str, instance_uuids) -> dict[str, dict]:
    """The newest unfinished migration out of ``host`` of each of these servers."""
    uuids = list(dict.fromkeys(instance_uuids))
    if not uuids:
        return {}
    M = models.Migration
    with reader() as s:
        rows = s.scalars(select(M).where(
            M.source_compute == host, M.instance_uuid.in_(uuids), M.hidden.is_(False),
            M.status.notin_(states.MIGRATION_DONE)).order_by(M.created_at.desc(),
                                                            M.id.desc()))
        out: dict[str, dict] = {}
        for row in rows:
            out.setdefault(row.instance_uuid, to_dict(row))  # newest first
        return out
