"""Helpers shared by the conductor and compute: action events, instance faults, locks."""

import datetime
import logging
import threading
import traceback as tb

from novalite import exception

LOG = logging.getLogger(__name__)


def fault_code(exc: BaseException) -> int:
    if isinstance(exc, exception.DatabaseUnavailable):
        return 503
    if isinstance(exc, exception.NoValidHost):
        return 500
    if isinstance(exc, (exception.Invalid,)):
        return 400
    if isinstance(exc, exception.Conflict):
        return 409
    return 500


GENERIC_NO_VALID_HOST = 'No valid host was found. There are not enough hosts available.'
GENERIC_DB_ERROR = 'A database error occurred; the operation did not complete.'

# Where database errors come from. Compute code never imports the database layer, so
# they are told apart by the module of their class, or, for one that crossed RPC as an
# oslo.messaging RemoteError, by the class name it carries.
_DB_MODULES = ('sqlalchemy', 'psycopg2', 'psycopg', 'pymysql', 'MySQLdb', 'sqlite3',
               'oslo_db', 'alembic')
_DB_ERROR_NAMES = frozenset({
    'DBAPIError', 'StatementError', 'OperationalError', 'IntegrityError', 'DataError',
    'ProgrammingError', 'InterfaceError', 'DatabaseError', 'InternalError',
    'NotSupportedError', 'PendingRollbackError', 'DisconnectionError',
    'InvalidRequestError', 'NoResultFound', 'MultipleResultsFound'})
# What SQLAlchemy puts in an error's text around the statement and its parameters.
_SQL_MARKERS = ('[SQL:', '[parameters:', 'sqlalche.me/e/')


def _chain(exc: BaseException):
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        inner = getattr(exc, 'inner_exception', None)
        exc = inner if isinstance(inner, BaseException) else (
            exc.__cause__ or exc.__context__)


def is_database_error(exc: BaseException) -> bool:
    """True when ``exc`` is a raw database error (or carries one's text), whose message
    may hold SQL statements and their parameters."""
    if isinstance(exc, exception.DatabaseUnavailable):
        return False
    if type(exc).__module__.split('.')[0] in _DB_MODULES:
        return True
    if getattr(exc, 'exc_type', None) in _DB_ERROR_NAMES:  # an RPC RemoteError
        return True
    return any(marker in str(exc) for marker in _SQL_MARKERS)


def _traceback_text(exc: BaseException) -> str:
    """The traceback of ``exc``; when it or an error it was raised from is a database
    error, only where its frames are and its class name, never the statement or
    parameters the chain carries."""
    text = ''.join(tb.format_exception(type(exc), exc, exc.__traceback__))
    if not any(map(is_database_error, _chain(exc))) and \
            not any(m in text for m in _SQL_MARKERS):
        return text
    # Frames without their source lines: code near a query may spell SQL out.
    frames = ''.join(f'  File "{f.filename}", line {f.lineno}, in {f.name}\n'
                     for f in tb.extract_tb(exc.__traceback__))
    return ('Traceback (most recent call last):\n' + frames
            + f'{type(exc).__name__}: {fault_message(exc)}\n')


def fault_message(exc: BaseException) -> str:
    """The fault message everyone may read; a scheduler explanation goes to details."""
    if isinstance(exc, exception.InstanceFaultRollback) and exc.inner_exception:
        exc = exc.inner_exception
    if isinstance(exc, exception.DatabaseUnavailable):
        return str(exc)
    if is_database_error(exc):
        return GENERIC_DB_ERROR
    if isinstance(exc, exception.NoValidHost) and exc.explanation and not isinstance(
            exc, exception.MaxRetriesExceeded):
        from novalite.scheduler.filter_scheduler import format_explanation
        if str(exc) == format_explanation(exc.explanation):
            return GENERIC_NO_VALID_HOST
    return str(exc) or type(exc).__name__


def fault_details(exc: BaseException) -> str:
    """Details stored with a fault: the per-filter explanation for NoValidHost, else the
    traceback (without SQL for a database error)."""
    explanation = getattr(exc, 'explanation', None)
    if explanation:
        from novalite.scheduler.filter_scheduler import format_explanation
        return format_explanation(explanation)
    return _traceback_text(exc)


def add_fault(db, instance_uuid: str, exc: BaseException, host: str | None) -> None:
    try:
        db.fault_create(instance_uuid, fault_code(exc), fault_message(exc),
                        fault_details(exc), host)
    except Exception:
        LOG.warning('Could not record fault for %s', instance_uuid, exc_info=True)


def utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC).replace(tzinfo=None)


def as_datetime(value):
    """A record's time as a naive UTC datetime (it arrives as an ISO string over RPC)."""
    if isinstance(value, str):
        return datetime.datetime.fromisoformat(value.rstrip('Z'))
    return value


def age(*records) -> float:
    """Seconds since the newest of the records last changed (0 when none has a time)."""
    times = [as_datetime(r.get('updated_at') or r.get('created_at')) for r in records if r]
    times = [t for t in times if t]
    return (utcnow() - max(times)).total_seconds() if times else 0.0


def fault_record(exc: BaseException) -> dict:
    """A fault as a step write carries it."""
    return {'code': fault_code(exc), 'message': fault_message(exc),
            'details': fault_details(exc)}


class Hop:
    """The action event of one compute step, carried by the step's own state write(s):
    ``opened()`` with the first write, ``ok()`` or ``error(exc)`` with the last, or only
    one of those with a single write (the event then starts when the hop began)."""

    def __init__(self, context, name: str):
        self.request_id = context.request_id
        self.name = name
        self.start_time = utcnow().isoformat()
        self._opened = False

    def _event(self, **kw):
        return dict(request_id=self.request_id, name=self.name, start_time=self.start_time,
                    **kw)

    def opened(self) -> dict:
        self._opened = True
        return self._event(started=True)

    def ok(self) -> dict:
        return self._event(started=not self._opened, result='Success')

    def error(self, exc: BaseException) -> dict:
        details = fault_details(exc) if getattr(exc, 'explanation', None) else None
        return self._event(started=not self._opened, result='Error', details=details,
                           traceback=_traceback_text(exc))


def start_work(name: str, enter, leave, fn, *args) -> threading.Thread:
    """Run ``fn(*args)`` in a daemon thread counted as work in flight (``enter`` and
    ``leave``, so a graceful stop waits for it); an unexpected error is logged."""
    def run():
        enter()
        try:
            fn(*args)
        except Exception:
            logging.getLogger(__name__).exception('%s failed unexpectedly', name)
        finally:
            leave()

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    return thread


class InstanceLocks:
    """One lock per instance on this host: a step and a reconcile never overlap. Re-entrant,
    so a reconcile holding it can run the step's own handler."""

    def __init__(self):
        self._locks: dict[str, threading.RLock] = {}
        self._guard = threading.Lock()

    def __call__(self, instance_uuid: str) -> threading.RLock:
        with self._guard:
            return self._locks.setdefault(instance_uuid, threading.RLock())


class BackgroundWriter:
    """Runs a progress write off the caller's thread: the copy or the migration job never
    waits for the conductor (a lost conductor or a database outage would stall it). A
    write asked for while the previous one is still in flight is dropped: progress
    figures are only a view, the next one replaces it."""

    def __init__(self, write, name='progress'):
        self._write = write
        self._name = name
        self._busy = threading.Lock()

    def __call__(self, *args, **kwargs):
        if not self._busy.acquire(blocking=False):
            return False
        threading.Thread(target=self._run, args=args, kwargs=kwargs, daemon=True,
                         name=self._name).start()
        return True

    def _run(self, *args, **kwargs):
        try:
            self._write(*args, **kwargs)
        except Exception:  # noqa: BLE001 - a progress figure never fails the work
            logging.getLogger(__name__).debug('Progress write failed', exc_info=True)
        finally:
            self._busy.release()


class OrderedWriter:
    """Runs writes off the caller's thread, each one and in order (unlike
    BackgroundWriter, nothing is dropped): records such as a migration's policy
    decisions. Items queued while a write is in flight go together in the next one."""

    def __init__(self, write, name='writer'):
        self._write = write
        self._name = name
        self._pending = []
        self._busy = False
        self._cond = threading.Condition()

    def __call__(self, item):
        with self._cond:
            self._pending.append(item)
            if self._busy:
                return
            self._busy = True
        threading.Thread(target=self._run, daemon=True, name=self._name).start()

    def _run(self):
        while True:
            with self._cond:
                batch, self._pending = self._pending, []
                if not batch:
                    self._busy = False
                    self._cond.notify_all()
                    return
            try:
                self._write(batch)
            except Exception:  # noqa: BLE001 - a record never fails the work
                logging.getLogger(__name__).warning('%s: a write of %d item(s) failed',
                                                    self._name, len(batch), exc_info=True)

    def flush(self, timeout):
        """Wait (at most ``timeout`` seconds) until everything queued was written."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._busy, timeout)
