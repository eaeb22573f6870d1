"""Services: registration, heartbeats and liveness."""

import datetime
import uuid as uuidlib

import sqlalchemy as sa
from sqlalchemy import select, update

from novalite import exception
from novalite.db import models
from novalite.db.common import to_dict
from novalite.db.models import utcnow
from novalite.db.retry import retry_on_transient
from novalite.db.session import connection_reader, reader, writer


@retry_on_transient
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


@retry_on_transient
def service_heartbeat(host: str, binary: str) -> dict | None:
    now = utcnow()
    with writer() as s:
        s.execute(update(models.Service).where(
            models.Service.host == host, models.Service.binary == binary).values(
            last_seen_up=now, report_count=models.Service.report_count + 1,
            updated_at=now))
        return to_dict(s.scalars(select(models.Service).where(
            models.Service.host == host, models.Service.binary == binary)).first())


@retry_on_transient
def service_get_all(host=None, binary=None) -> list[dict]:
    """Services, all or those of ``host`` (a name, or a collection of names)."""
    hosts = None if host is None else sorted(host) if isinstance(
        host, (list, tuple, set, frozenset)) else [host]
    with connection_reader() as conn:
        rows = conn.execute(_SERVICES[hosts is not None, binary is not None],
                            {'hosts': hosts, 'binary': binary})
        return [to_dict(r) for r in rows]


def _services_statement(by_host: bool, by_binary: bool):
    svc = models.Service.__table__
    q = select(svc).order_by(svc.c.id)
    if by_host:
        q = q.where(svc.c.host.in_(sa.bindparam('hosts', expanding=True)))
    if by_binary:
        q = q.where(svc.c.binary == sa.bindparam('binary'))
    return q


# Built once (every server GET reads its host's service for the host status): (by host,
# by binary) -> the read, of plain rows.
_SERVICES = {(h, b): _services_statement(h, b) for h in (True, False) for b in (True, False)}


@retry_on_transient
def service_get(service_id) -> dict:
    with reader() as s:
        col = models.Service.uuid if isinstance(service_id, str) else models.Service.id
        row = s.scalars(select(models.Service).where(col == service_id)).first()
        if row is None:
            raise exception.ServiceNotFound(service_id=service_id)
        return to_dict(row)


@retry_on_transient
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


@retry_on_transient
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


@retry_on_transient
def compute_is_up(host: str, down_time: int) -> bool:
    """Whether the compute service of ``host`` exists and is up."""
    with reader() as s:
        row = s.scalars(select(models.Service).where(
            models.Service.host == host, models.Service.binary == 'novalite-compute')
            .order_by(models.Service.id)).first()
        return row is not None and service_is_up(to_dict(row), down_time)


@retry_on_transient
def compute_node_and_up(host: str, nodename: str | None, down_time: int) -> tuple[dict, bool]:
    """``compute_node_get_by_host_and_node`` and ``compute_is_up`` of its host in one
    read: the node, and whether its host's compute service exists and is up."""
    CN, S = models.ComputeNode, models.Service
    with reader() as s:
        q = select(CN, S).outerjoin(S, (S.host == CN.host) &
                                    (S.binary == 'novalite-compute')).where(CN.host == host)
        if nodename:
            q = q.where(CN.hypervisor_hostname == nodename)
        row = s.execute(q.order_by(S.id).limit(1)).first()
        if row is None:
            raise exception.ComputeHostNotFound(host=host)
        node, service = row
        return to_dict(node), service is not None and service_is_up(to_dict(service),
                                                                     down_time)


def service_is_up(service: dict, down_time: int) -> bool:
    if service.get('forced_down'):
        return False
    last = service.get('last_seen_up') or service.get('updated_at') or service.get('created_at')
    if isinstance(last, str):
        last = datetime.datetime.fromisoformat(last.rstrip('Z'))
    if last is None:
        return False
    return (utcnow() - last).total_seconds() <= down_time
