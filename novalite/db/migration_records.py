"""Migration records: create, read, compare-and-swap update."""

import uuid as uuidlib

import sqlalchemy as sa
from sqlalchemy import select, update

from novalite import exception
from novalite.compute import states
from novalite.db import models
from novalite.db.common import UNSET, as_list, coerce, merged, to_dict
from novalite.db.models import utcnow
from novalite.db.retry import retry_on_transient
from novalite.db.services import service_is_up
from novalite.db.session import reader, writer


@retry_on_transient
def migration_create(values: dict) -> dict:
    values = dict(values)
    values.setdefault('uuid', str(uuidlib.uuid4()))
    with writer() as s:
        row = models.Migration(**values)
        s.add(row)
        s.flush()
        return to_dict(row)


@retry_on_transient
def migration_get(migration_id) -> dict:
    with reader() as s:
        col = models.Migration.uuid if isinstance(migration_id, str) else models.Migration.id
        row = s.scalars(select(models.Migration).where(col == migration_id)).first()
        if row is None:
            raise exception.MigrationNotFound(migration_id=migration_id)
        return to_dict(row)


@retry_on_transient
def migration_update(migration_id, values: dict, expected_status=UNSET) -> dict:
    """Update a migration; with ``expected_status`` only from one of those statuses."""
    with writer() as s:
        return migration_cas(s, migration_id, values, expected_status)


def migration_cas(s, migration_id, values: dict, expected_status=UNSET, row=None) -> dict:
    """``migration_update`` inside the caller's transaction ``s``. With ``row``, the
    migration as this transaction read it, a successful update is not read back."""
    values = dict(values)
    values['updated_at'] = utcnow()
    coerce(models.Migration, values)
    col = models.Migration.uuid if isinstance(migration_id, str) else models.Migration.id
    q = update(models.Migration).where(col == migration_id)
    if expected_status is not UNSET:
        q = q.where(models.Migration.status.in_(as_list(expected_status)))
    res = s.execute(q.values(**values).execution_options(synchronize_session=False))
    if row is not None and res.rowcount == 1:
        return merged(row, values)
    row = s.scalars(select(models.Migration).where(col == migration_id).execution_options(
        populate_existing=True)).first()
    if row is None:
        raise exception.MigrationNotFound(migration_id=migration_id)
    if res.rowcount != 1:
        raise exception.UnexpectedMigrationStatus(migration_id=migration_id,
                                                  actual=row.status,
                                                  expected=expected_status)
    return to_dict(row)


# owner's column (or None) -> UPDATE ... RETURNING of one migration of one instance in
# one of the expected statuses (and naming the caller in that column); the SET clause
# comes from the parameters' keys, as the instances' compare-and-swap does.
_CAS_RETURNING: dict[str | None, sa.Update] = {}


def migration_cas_returning(s, migration_uuid: str, instance_uuid: str, values: dict,
                            expected_status, host_column: str | None = None,
                            host: str | None = None) -> dict | None:
    """``migration_cas`` in one statement, without reading the migration first: the
    updated migration, or None when the migration of ``instance_uuid`` is not there, not
    in ``expected_status`` or (with ``host_column``, 'source_compute' or 'dest_compute')
    does not name ``host`` there; nothing is written then. Only where the database
    returns rows from an UPDATE."""
    values = dict(values)
    values['updated_at'] = utcnow()
    coerce(models.Migration, values)
    stmt = _CAS_RETURNING.get(host_column)
    if stmt is None:
        t = models.Migration.__table__
        stmt = sa.update(t).where(
            t.c.uuid == sa.bindparam('w_uuid'),
            t.c.instance_uuid == sa.bindparam('w_instance'),
            t.c.status.in_(sa.bindparam('w_status', expanding=True)))
        if host_column is not None:
            stmt = stmt.where(t.c[host_column] == sa.bindparam('w_host'))
        stmt = _CAS_RETURNING[host_column] = stmt.returning(*t.columns)
    params = dict(values, w_uuid=migration_uuid, w_instance=instance_uuid,
                  w_status=as_list(expected_status))
    if host_column is not None:
        params['w_host'] = host
    row = s.connection().execute(stmt, params).first()
    return to_dict(row) if row is not None else None


@retry_on_transient
def migration_log_append(migration_id, entries: list, values: dict | None = None) -> dict:
    """Append ``entries`` ({'at', 'decision', 'detail'}) to the migration's policy_log,
    oldest first, with ``values`` written in the same transaction. The row is locked for
    the append so two writers never lose each other's entries."""
    with writer() as s:
        col = models.Migration.uuid if isinstance(migration_id, str) else models.Migration.id
        row = s.scalars(select(models.Migration).where(col == migration_id)
                        .with_for_update()).first()
        if row is None:
            raise exception.MigrationNotFound(migration_id=migration_id)
        changes = dict(values or {}, policy_log=list(row.policy_log or []) + list(entries))
        for key, value in changes.items():
            setattr(row, key, value)
        row.updated_at = utcnow()
        s.flush()
        return to_dict(row)


@retry_on_transient
def live_migrations_in_flight() -> list[dict]:
    """Live migrations that hold a slot under the policies' limits or wait for one,
    oldest first, each with its instance's ``task_driver`` (set while a conductor still
    drives the move: pre-checks, or waiting for a slot)."""
    M, Inst = models.Migration, models.Instance
    with reader() as s:
        rows = s.execute(select(M, Inst.task_driver).join(
            Inst, Inst.uuid == M.instance_uuid).where(
            M.migration_type == states.LIVE_MIGRATION, M.hidden.is_(False),
            M.status.in_(states.LIVE_MIGRATION_SLOT_HOLDING),
            Inst.deleted.is_(False)).order_by(M.id))
        return [dict(to_dict(m), task_driver=driver) for m, driver in rows]


@retry_on_transient
def finished_cold_move(instance_uuid: str, side: str,
                       down_time: int) -> tuple[dict | None, bool]:
    """The instance's newest finished cold move (resize or cold migration) waiting for
    its confirm or revert, and whether the compute service of its ``side`` (
    ``'source_compute'`` or ``'dest_compute'``) is up, in one read: ``(None, False)``
    when there is no such move."""
    M, S = models.Migration, models.Service
    with reader() as s:
        row = s.execute(select(M, S).outerjoin(
            S, (S.host == getattr(M, side)) & (S.binary == 'novalite-compute')).where(
            M.instance_uuid == instance_uuid, M.hidden.is_(False),
            M.status == states.MS.FINISHED,
            M.migration_type.in_(states.COLD_MOVES)).order_by(
            M.created_at.desc(), M.id.desc(), S.id).limit(1)).first()
    if row is None:
        return None, False
    mig, service = row
    return to_dict(mig), service is not None and service_is_up(to_dict(service), down_time)


@retry_on_transient
def migration_get_all(instance_uuid=None, status=None, migration_type=None, host=None,
                      source_compute=None, dest_compute=None) -> list[dict]:
    with reader() as s:
        q = select(models.Migration).where(models.Migration.hidden.is_(False))
        if instance_uuid is not None:
            q = q.where(models.Migration.instance_uuid == instance_uuid)
        if status is not None:
            q = q.where(models.Migration.status.in_(as_list(status)))
        if migration_type is not None:
            q = q.where(models.Migration.migration_type.in_(as_list(migration_type)))
        if host is not None:
            q = q.where(sa.or_(models.Migration.source_compute == host,
                               models.Migration.dest_compute == host))
        if source_compute is not None:
            q = q.where(models.Migration.source_compute == source_compute)
        if dest_compute is not None:
            q = q.where(models.Migration.dest_compute == dest_compute)
        q = q.order_by(models.Migration.created_at.desc(), models.Migration.id.desc())
        return [to_dict(r) for r in s.scalars(q)]
