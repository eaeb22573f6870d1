"""Instance actions, their events, and instance faults."""

from collections.abc import Iterable

from sqlalchemy import bindparam, insert, select, update

from novalite import exception
from novalite.db import models
from novalite.db.common import coerce, insert_row, to_dict
from novalite.db.models import utcnow
from novalite.db.retry import retry_on_transient
from novalite.db.session import reader, writer


@retry_on_transient
def action_start(instance_uuid: str, action: str, request_id: str, user_id=None,
                 project_id=None) -> dict:
    with writer() as s:
        return add_action(s, instance_uuid, action, request_id, user_id, project_id)


def add_action(s, instance_uuid: str, action: str, request_id: str, user_id=None,
               project_id=None) -> dict:
    """``action_start`` inside the caller's transaction ``s``: a plain insert (every
    boot and every API step writes one), the row read back by RETURNING where the
    database has it."""
    now = utcnow()
    values = dict(instance_uuid=instance_uuid, action=action, request_id=request_id,
                  user_id=user_id, project_id=project_id, start_time=now, updated_at=now)
    return insert_row(s.connection(), _ACTION.__table__, values)


def _action_for(s, instance_uuid, request_id):
    return s.scalars(select(models.InstanceAction).where(
        models.InstanceAction.instance_uuid == instance_uuid,
        models.InstanceAction.request_id == request_id)
        .order_by(models.InstanceAction.id.desc())).first()


@retry_on_transient
def action_event_start(instance_uuid: str, request_id: str, event: str, host=None) -> None:
    with writer() as s:
        record_event(s, instance_uuid, request_id, event, host=host, started=True)


@retry_on_transient
def action_event_finish(instance_uuid: str, request_id: str, event: str, result: str,
                        traceback=None, details=None, host=None) -> None:
    """Close the newest open event of that name; ``result`` is Success or Error."""
    with writer() as s:
        record_event(s, instance_uuid, request_id, event, host=host, result=result,
                     traceback=traceback, details=details)


def record_event(s, instance_uuid: str, request_id: str, event: str, host=None,
                 started=False, result=None, traceback=None, details=None,
                 start_time=None) -> None:
    """Open an event (``started``), close it (``result``), or both at once, inside the
    caller's transaction. Closing closes the open event of that name, or records one
    starting at ``start_time`` (now when not given)."""
    record_events(s, instance_uuid, [{
        'request_id': request_id, 'name': event, 'started': started, 'result': result,
        'traceback': traceback, 'details': details, 'start_time': start_time}], host)


_ACTION = models.InstanceAction
_EVENT = models.InstanceActionEvent
# Built once: a step writes one or two events, and building a statement costs several
# times what executing a built one does.
_NEWEST_ACTION = (select(_ACTION.id).where(_ACTION.instance_uuid == bindparam('iu'),
                                           _ACTION.request_id == bindparam('rid'))
                  .order_by(_ACTION.id.desc()).limit(1))
_OPEN_EVENT = insert(_EVENT)
_CLOSE_EVENT = (update(_EVENT).where(_EVENT.action_id == bindparam('a_id'),
                                     _EVENT.event == bindparam('ev_name'),
                                     _EVENT.finish_time.is_(None))
                .values(finish_time=bindparam('finish_time'), result=bindparam('result'),
                        traceback=bindparam('traceback'), details=bindparam('details'),
                        updated_at=bindparam('updated_at')))
_CLOSE_EVENTS = (update(_EVENT).where(_EVENT.action_id == bindparam('a_id'),
                                      _EVENT.event.in_(bindparam('ev_names', expanding=True)),
                                      _EVENT.finish_time.is_(None))
                 .values(finish_time=bindparam('finish_time'), result=bindparam('result'),
                         traceback=bindparam('traceback'), details=bindparam('details'),
                         updated_at=bindparam('updated_at'))
                 .returning(_EVENT.event))
_TOUCH_ACTION = update(_ACTION).where(_ACTION.id == bindparam('a_id')).values(
    updated_at=bindparam('updated_at'))
_FAIL_ACTION = update(_ACTION).where(_ACTION.id == bindparam('a_id')).values(
    updated_at=bindparam('updated_at'), message='Error')
_TOUCH_NEWEST = {error: update(_ACTION).where(_ACTION.id == _NEWEST_ACTION.scalar_subquery())
                 .values(updated_at=bindparam('updated_at'),
                         **({'message': 'Error'} if error else {})).returning(_ACTION.id)
                 for error in (False, True)}


def record_events(s, instance_uuid: str, events, host=None) -> None:
    """Several events (``{'request_id', 'name', 'started', 'result', 'traceback',
    'details', 'start_time'}``) inside the caller's transaction: each action is looked up
    and touched once, whatever the number of its events; the events closed alike are
    closed by one statement, and the rest inserted by one. Plain statements, no ORM
    objects: every move step writes one or two of these."""
    if not events:
        return
    now = utcnow()
    conn = s.connection()
    failed: dict[str, bool] = {}   # request_id -> one of its events is an error
    for ev in events:
        failed[ev['request_id']] = failed.get(ev['request_id'], False) or \
            (ev.get('result') or '').lower() == 'error'
    actions = _touch_actions(conn, instance_uuid, failed, now)
    rows = []
    closing: dict[tuple, list] = {}   # (action, what closes them) -> [(name, row)]
    for ev in events:
        action_id = actions[ev['request_id']]
        if action_id is None:
            continue
        result = ev.get('result')
        start = coerce(_EVENT, {'start_time': ev.get('start_time')})['start_time'] or now
        row = {'action_id': action_id, 'event': ev['name'], 'start_time': start,
               'host': host, 'created_at': now, 'finish_time': None, 'result': None,
               'traceback': None, 'details': None, 'updated_at': None}
        if result is not None:
            row.update(finish_time=now, result=result, traceback=ev.get('traceback'),
                       details=ev.get('details'), updated_at=now)
        if result is None or ev.get('started'):
            rows.append(row)
        else:
            # Closing needs no look-up: the update finds the open event (a re-sent
            # step's duplicates too), or nothing, and then the event is recorded whole.
            key = (action_id, result, ev.get('traceback'), ev.get('details'))
            closing.setdefault(key, []).append((ev['name'], row))
    for (action_id, result, traceback, details), named in closing.items():
        closed = _close_events(conn, action_id, [name for name, _ in named], dict(
            finish_time=now, result=result, traceback=traceback, details=details,
            updated_at=now))
        rows.extend(row for name, row in named if name not in closed)
    if rows:
        conn.execute(_OPEN_EVENT, rows)


def _close_events(conn, action_id: int, names: list[str], closing: dict) -> set[str]:
    """Close the open events of ``action_id`` named ``names``; the names closed. One
    statement where the database returns rows from an UPDATE (PostgreSQL, SQLite) or for
    a single name."""
    if len(names) == 1:
        n = conn.execute(_CLOSE_EVENT, dict(closing, a_id=action_id,
                                            ev_name=names[0])).rowcount
        return set(names) if n else set()
    if conn.dialect.update_returning:
        return set(conn.execute(_CLOSE_EVENTS, dict(closing, a_id=action_id,
                                                    ev_names=names)).scalars())
    return {name for name in names if conn.execute(_CLOSE_EVENT, dict(
        closing, a_id=action_id, ev_name=name)).rowcount}


def _touch_actions(conn, instance_uuid: str, failed: dict[str, bool], now) -> dict:
    """request_id -> the id of the instance's newest action of that request (None if it
    has none), its updated_at set to ``now`` and, where ``failed``, its message to
    Error. Where the database returns rows from an UPDATE (PostgreSQL, SQLite) the
    look-up and the touch are one statement."""
    ids = {}
    for request_id, error in failed.items():
        params = {'iu': instance_uuid, 'rid': request_id, 'updated_at': now}
        if conn.dialect.update_returning:
            ids[request_id] = conn.execute(_TOUCH_NEWEST[error], params).scalar()
            continue
        action_id = ids[request_id] = conn.execute(_NEWEST_ACTION, params).scalar()
        if action_id is not None:
            conn.execute(_FAIL_ACTION if error else _TOUCH_ACTION,
                         {'a_id': action_id, 'updated_at': now})
    return ids


@retry_on_transient
def actions_get(instance_uuid: str) -> list[dict]:
    with reader() as s:
        return [to_dict(r) for r in s.scalars(select(models.InstanceAction).where(
            models.InstanceAction.instance_uuid == instance_uuid).order_by(
            models.InstanceAction.created_at.desc(), models.InstanceAction.id.desc()))]


@retry_on_transient
def action_get_by_request_id(instance_uuid: str, request_id: str) -> dict:
    with reader() as s:
        row = _action_for(s, instance_uuid, request_id)
        if row is None:
            raise exception.ActionNotFound(request_id=request_id)
        return to_dict(row)


@retry_on_transient
def action_events_get(action_id: int) -> list[dict]:
    with reader() as s:
        return [to_dict(r) for r in s.scalars(select(models.InstanceActionEvent).where(
            models.InstanceActionEvent.action_id == action_id).order_by(
            models.InstanceActionEvent.created_at.desc(),
            models.InstanceActionEvent.id.desc()))]


@retry_on_transient
def fault_create(instance_uuid: str, code: int, message: str, details=None, host=None) -> dict:
    with writer() as s:
        return add_fault(s, instance_uuid, code, message, details, host)


def add_fault(s, instance_uuid: str, code: int, message: str, details=None,
              host=None) -> dict:
    """``fault_create`` inside the caller's transaction ``s``."""
    row = models.InstanceFault(instance_uuid=instance_uuid, code=code,
                               message=(message or '')[:255], details=details, host=host)
    s.add(row)
    s.flush()
    return to_dict(row)


@retry_on_transient
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
