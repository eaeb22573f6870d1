"""Instances (compare-and-swap updates) and their request specs."""

import uuid as uuidlib

import sqlalchemy as sa
from sqlalchemy import select, update

from novalite import exception
from novalite.compute import states
from novalite.db import actions, models, server_groups
from novalite.db.common import UNSET, as_list, coerce, insert_row, merged, to_dict
from novalite.db.models import utcnow
from novalite.db.retry import retry_on_transient
from novalite.db.session import connection_reader, get_engine, reader, writer

_INST = models.Instance
# Built once (building a statement costs more than executing a built one): the live
# instance by uuid, read by every server GET and every step, as a plain row (no ORM
# object: loading one costs several times the row's own decoding).
_ROW = _INST.__table__
LIVE_INSTANCE = select(_ROW).where(_ROW.c.uuid == sa.bindparam('w_uuid'),
                                   _ROW.c.deleted.is_(False))
_ANY_INSTANCE = select(_ROW).where(_ROW.c.uuid == sa.bindparam('w_uuid'))
_FRESH_INSTANCE = select(_INST).where(_INST.uuid == sa.bindparam('w_uuid')).execution_options(
    populate_existing=True)
_INSERT_SPEC = models.RequestSpec.__table__.insert()


def live_instance_row(s, instance_uuid: str):
    """The instance's row (not deleted) in the caller's transaction, or None: a read-only
    row whose columns are its attributes."""
    return s.connection().execute(LIVE_INSTANCE, {'w_uuid': instance_uuid}).first()


@retry_on_transient
def instance_create(values: dict, request_spec: dict | None = None,
                    action: dict | None = None) -> dict:
    """A new instance; with ``request_spec`` its request spec, and with ``action``
    (``{'action', 'request_id', 'user_id', 'project_id'}``) its first action, in the same
    transaction: a boot is recorded whole or not at all, in one commit."""
    values = dict(values)
    values.setdefault('uuid', str(uuidlib.uuid4()))
    values['metadata'] = values.pop('metadata', None) or {}
    unknown = set(values) - set(_ROW.c.keys())
    if unknown:
        raise TypeError('not instance columns: ' + ', '.join(sorted(unknown)))
    # Plain inserts, not ORM objects: the unit of work cost a boot's API several times
    # what the three rows do.
    with writer() as s:
        conn = s.connection()
        out = insert_row(conn, _ROW, values)
        if request_spec is not None:
            conn.execute(_INSERT_SPEC, {'instance_uuid': values['uuid'],
                                        'spec': request_spec})
        if action is not None:
            actions.add_action(s, values['uuid'], **action)
        return out


@retry_on_transient
def instance_get(instance_uuid: str, read_deleted: str = 'no') -> dict:
    with connection_reader() as conn:
        row = conn.execute(LIVE_INSTANCE if read_deleted == 'no' else _ANY_INSTANCE,
                           {'w_uuid': instance_uuid}).first()
        if row is None:
            raise exception.InstanceNotFound(instance_id=instance_uuid)
        return to_dict(row)


_SVC = models.Service.__table__
# Built once: a live instance with what a server GET shows beside it, in one statement:
# its host's service of ``binary`` (columns prefixed svc_) and its server group's uuid.
_VIEW_INSTANCE = (
    select(_ROW, *(c.label('svc_' + c.key) for c in _SVC.columns),
           server_groups.group_uuid_query(_ROW.c.uuid).limit(1)
           .scalar_subquery().label('group_uuid'))
    .select_from(_ROW.outerjoin(_SVC, sa.and_(_SVC.c.host == _ROW.c.host,
                                              _SVC.c.binary == sa.bindparam('binary'))))
    .where(_ROW.c.uuid == sa.bindparam('w_uuid'), _ROW.c.deleted.is_(False)))


@retry_on_transient
def instance_get_for_view(instance_uuid: str, binary: str) -> tuple[dict, dict | None,
                                                                      str | None]:
    """(the live instance, its host's service of ``binary`` or None, the uuid of its
    server group or None), read together: every server GET shows all three."""
    with connection_reader() as conn:
        row = conn.execute(_VIEW_INSTANCE, {'w_uuid': instance_uuid,
                                            'binary': binary}).first()
    if row is None:
        raise exception.InstanceNotFound(instance_id=instance_uuid)
    m = row._mapping
    service = None if m['svc_id'] is None else {
        c.key: m['svc_' + c.key] for c in _SVC.columns}
    return {c.key: m[c.key] for c in _ROW.columns}, service, m['group_uuid']


@retry_on_transient
def instance_get_all_by_host(host: str, include_deleted: bool = False) -> list[dict]:
    with reader() as s:
        q = select(models.Instance).where(models.Instance.host == host)
        if not include_deleted:
            q = q.where(models.Instance.deleted.is_(False))
        return [to_dict(r) for r in s.scalars(q)]


@retry_on_transient
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


@retry_on_transient
def instance_update(instance_uuid: str, values: dict, expected_task_state=UNSET,
                    expected_vm_state=UNSET, expected_host=UNSET,
                    expected_driver=UNSET) -> dict:
    """Compare-and-swap update of an instance.

    ``expected_task_state`` (a value or list; None included means "no task") must hold
    at the moment of the write, else UnexpectedTaskStateError; likewise the vm_state and
    host expectations. Returns the updated record.
    """
    with writer() as s:
        return instance_cas(s, instance_uuid, values, expected_task_state,
                            expected_vm_state, expected_host,
                            expected_driver=expected_driver)


_CAS_COLUMNS = (('task_state', _INST.task_state), ('vm_state', _INST.vm_state),
                ('host', _INST.host), ('task_driver', _INST.task_driver))
_cas_statements: dict[tuple, sa.Update] = {}


def _cas_statement(shape: tuple, returning: bool = False) -> sa.Update:
    """The UPDATE of one instance guarded by the expectations of ``shape``: per checked
    column, whether it may hold one of a list of values and whether it may be NULL. The
    SET clause comes from the parameters' keys, so one statement serves every write of
    that shape (a handful of shapes exist). With ``returning``, the statement returns
    the updated row."""
    if returning:
        stmt = _cas_statements.get((shape, True))
        if stmt is None:
            stmt = _cas_statements[shape, True] = _cas_statement(shape).returning(
                *_ROW.columns)
        return stmt
    stmt = _cas_statements.get(shape)
    if stmt is None:
        stmt = update(_INST).where(_INST.uuid == sa.bindparam('w_uuid'),
                                   _INST.deleted.is_(False))
        for (name, col), (checked, values, null) in zip(_CAS_COLUMNS, shape, strict=True):
            if not checked:
                continue
            cond = col.in_(sa.bindparam('w_' + name, expanding=True)) if values \
                else sa.false()
            stmt = stmt.where(sa.or_(cond, col.is_(None)) if null else cond)
        stmt = _cas_statements[shape] = stmt.execution_options(synchronize_session=False)
    return stmt


def instance_cas(s, instance_uuid: str, values: dict, expected_task_state=UNSET,
                 expected_vm_state=UNSET, expected_host=UNSET, row=None,
                 expected_driver=UNSET) -> dict:
    """``instance_update`` inside the caller's transaction ``s``. With ``row``, the
    instance as this transaction read it, a successful update is not read back."""
    values, params, shape = _cas_params(instance_uuid, values, expected_task_state,
                                        expected_vm_state, expected_host, expected_driver)
    res = s.connection().execute(_cas_statement(shape), params)
    if row is not None and res.rowcount == 1:
        return merged(row, values)
    row = s.scalars(_FRESH_INSTANCE, {'w_uuid': instance_uuid}).first()
    if res.rowcount != 1:
        if row is None or row.deleted:
            raise exception.InstanceNotFound(instance_id=instance_uuid)
        if expected_task_state is not UNSET and row.task_state not in (
                as_list(expected_task_state) if expected_task_state is not None
                else [None]):
            raise exception.UnexpectedTaskStateError(
                instance_uuid=instance_uuid, expected=expected_task_state,
                actual=row.task_state)
        raise exception.UnexpectedTaskStateError(
            instance_uuid=instance_uuid,
            expected={'vm_state': expected_vm_state if expected_vm_state is not UNSET
                      else '*', 'host': expected_host if expected_host is not UNSET
                      else '*', 'task_driver': expected_driver
                      if expected_driver is not UNSET else '*'},
            actual={'vm_state': row.vm_state, 'host': row.host,
                    'task_driver': row.task_driver})
    return to_dict(row)


def instance_cas_returning(s, instance_uuid: str, values: dict, expected_task_state=UNSET,
                           expected_vm_state=UNSET, expected_host=UNSET,
                           expected_driver=UNSET) -> dict | None:
    """``instance_cas`` in one statement, without reading the instance first: the
    updated instance, or None when the instance is not there or not as expected
    (nothing was written; the caller reads it to tell why). Only where the database
    returns rows from an UPDATE (``returning_cas_supported``)."""
    _values, params, shape = _cas_params(instance_uuid, values, expected_task_state,
                                         expected_vm_state, expected_host, expected_driver)
    row = s.connection().execute(_cas_statement(shape, returning=True), params).first()
    return to_dict(row) if row is not None else None


def returning_cas_supported() -> bool:
    """Whether the database returns rows from an UPDATE (PostgreSQL, SQLite; not
    MariaDB): the compare-and-swap then reads nothing first."""
    return get_engine().dialect.update_returning


def _cas_params(instance_uuid, values, *expectations) -> tuple[dict, dict, tuple]:
    """(values as attributes, statement parameters, statement shape) of a CAS write."""
    values = dict(values)
    if 'metadata' in values:
        values['metadata_'] = values.pop('metadata')
    values['updated_at'] = utcnow()
    coerce(_INST, values)
    params = {'metadata' if k == 'metadata_' else k: v for k, v in values.items()}
    params['w_uuid'] = instance_uuid
    shape = []
    for (name, _col), expected in zip(_CAS_COLUMNS, expectations, strict=True):
        if expected is UNSET:
            shape.append((False, False, False))
            continue
        wanted = as_list(expected) if expected is not None else [None]
        non_null = [w for w in wanted if w is not None]
        shape.append((True, bool(non_null), None in wanted))
        if non_null:
            params['w_' + name] = non_null
    return values, params, tuple(shape)


@retry_on_transient
def instance_destroy(instance_uuid: str) -> dict:
    """Mark an instance deleted (soft row delete) and drop its allocations."""
    with writer() as s:
        return destroy_row(s, instance_uuid)


def destroy_row(s, instance_uuid: str) -> dict:
    """``instance_destroy`` inside the caller's transaction ``s``."""
    now = utcnow()
    row = s.scalars(select(models.Instance).where(
        models.Instance.uuid == instance_uuid)).first()
    if row is None:
        raise exception.InstanceNotFound(instance_id=instance_uuid)
    row.deleted = True
    row.deleted_at = now
    row.terminated_at = row.terminated_at or now
    row.vm_state = states.DELETED
    row.task_state = None
    row.updated_at = now
    server_groups.drop_membership(s, instance_uuid)
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

@retry_on_transient
def save_request_spec(s, instance_uuid: str, spec: dict) -> None:
    """Write (create or replace) an instance's request spec in the caller's transaction:
    an UPDATE, and an INSERT only when there was none (rowcount counts the rows matched,
    on MariaDB too: SQLAlchemy connects with FOUND_ROWS)."""
    res = s.execute(update(models.RequestSpec).where(
        models.RequestSpec.instance_uuid == instance_uuid).values(
        spec=spec, updated_at=utcnow()).execution_options(synchronize_session=False))
    if res.rowcount == 0:
        s.add(models.RequestSpec(instance_uuid=instance_uuid, spec=spec))


@retry_on_transient
def request_spec_get(instance_uuid: str) -> dict | None:
    with reader() as s:
        row = s.scalars(select(models.RequestSpec).where(
            models.RequestSpec.instance_uuid == instance_uuid)).first()
        return dict(row.spec) if row else None
