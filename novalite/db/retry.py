"""Transient database errors and the one retry policy every database function runs under.

A lost or refused connection, a restarted or shut-down server, a deadlock or a
serialization failure ends the transaction it hit and nothing else: running the whole
transaction function again is safe, because each db function is one transaction that
either committed or did not. ``retry_on_transient`` does that with exponential backoff and
jitter (tenacity), for at most ``[database] max_retry_seconds``; then it raises
``exception.DatabaseUnavailable``, which carries no SQL text or parameters.

A connection lost during COMMIT itself is not retried: the change may have been saved,
and running it again could apply it twice; the caller gets ``DatabaseUnavailable``
saying so. Deadlocks and serialization failures always mean a rollback and are retried.

Only the outermost decorated call retries: a decorated function called inside another one
(in the same thread) runs once and lets the outer transaction start over, so nested calls
never multiply the attempts or the time spent.
"""

import functools
import logging
import threading

import sqlalchemy as sa
import tenacity

from novalite import exception
from novalite.conf import CONF

LOG = logging.getLogger(__name__)

# MariaDB/MySQL client and server error numbers.
MYSQL_TRANSIENT = frozenset({
    1205,  # lock wait timeout exceeded
    1213,  # deadlock found when trying to get lock
    1927,  # connection was killed (MariaDB)
    2002,  # can't connect through the socket
    2003,  # can't connect to the server
    2006,  # server has gone away
    2013,  # lost connection during query
    2055,  # lost connection (system error)
    4031,  # disconnected by the server because of inactivity (MySQL 8)
})

# SQLSTATE codes, as PostgreSQL reports them (psycopg2 ``pgcode``, psycopg ``sqlstate``);
# PyMySQL reports them too (``sqlstate``): MariaDB's deadlock 1213 comes as 40001.
SQLSTATE_TRANSIENT = frozenset({
    '40001',  # serialization_failure
    '40P01',  # deadlock_detected
    '57P01',  # admin_shutdown (also pg_terminate_backend)
    '57P02',  # crash_shutdown
    '57P03',  # cannot_connect_now (starting up, shutting down)
    '08000', '08001', '08003', '08004', '08006',  # connection exceptions
    '08S01',  # communication link failure (MySQL)
})

# Driver messages of a connection that is gone, for drivers that give no code for it
# (psycopg2 reports a server that closed the socket with neither pgcode nor errno).
DISCONNECT_TEXT = (
    'server closed the connection unexpectedly',
    'terminating connection due to administrator command',
    'connection already closed',
    'connection refused',
    'could not connect to server',
    'connection to server at',
    'ssl connection has been closed unexpectedly',
    'lost connection to',
    'server has gone away',
    'connection reset by peer',
    'broken pipe',
)

# Errors after which the server has certainly rolled the transaction back, even when
# they come from COMMIT itself.
ROLLED_BACK_MYSQL = frozenset({1205, 1213})
ROLLED_BACK_SQLSTATE = frozenset({'40001', '40P01'})

IN_DOUBT_MESSAGE = ('The database connection was lost while a change was being committed; '
                    'it may or may not have been saved. Check before retrying.')

_local = threading.local()


def _mysql_code(orig) -> int | None:
    args = getattr(orig, 'args', ())
    if args and isinstance(args[0], int):
        return args[0]
    return None


def _sqlstate(orig) -> str | None:
    return getattr(orig, 'pgcode', None) or getattr(orig, 'sqlstate', None)


def is_transient(exc: BaseException) -> bool:
    """True when ``exc`` ended its transaction for a reason a fresh attempt may not meet:
    a connection that is lost, refused or invalidated, a server restart or shutdown,
    a deadlock, a lock wait timeout or a serialization failure."""
    if isinstance(exc, sa.exc.DisconnectionError):
        return True
    if not isinstance(exc, sa.exc.DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    orig = exc.orig
    if _sqlstate(orig) in SQLSTATE_TRANSIENT or _mysql_code(orig) in MYSQL_TRANSIENT:
        return True
    # A constraint violation or bad data is never transient, whatever its text says.
    if isinstance(exc, (sa.exc.OperationalError, sa.exc.InterfaceError)):
        text = str(orig).lower()
        return any(marker in text for marker in DISCONNECT_TEXT)
    return False


def commit_started() -> None:
    """Called by the writer scope just before COMMIT: from here until ``commit_done`` a
    lost connection leaves the outcome unknown, so the transaction is not run again."""
    _local.committing = True


def commit_done() -> None:
    _local.committing = False


def _in_doubt(exc: BaseException) -> bool:
    """A transient error during COMMIT that may have followed a successful commit."""
    if not getattr(_local, 'committing', False) or not is_transient(exc):
        return False
    orig = getattr(exc, 'orig', None)
    return not (_sqlstate(orig) in ROLLED_BACK_SQLSTATE or
                _mysql_code(orig) in ROLLED_BACK_MYSQL)


def in_retry_scope() -> bool:
    """True inside a decorated call of this thread (whose outermost call retries)."""
    return getattr(_local, 'depth', 0) > 0


def _reason(exc: BaseException) -> str:
    """A one-line reason for the log: the driver's first line, never the statement."""
    orig = getattr(exc, 'orig', None) or exc
    text = str(orig).strip().splitlines()
    return f'{type(orig).__name__}: {text[0] if text else ""}'


def _log_retry(state: tenacity.RetryCallState) -> None:
    LOG.warning('Transient database error in %s (attempt %d, %.1fs so far), retrying in '
                '%.2fs: %s', state.fn.__qualname__, state.attempt_number,
                state.seconds_since_start, state.upcoming_sleep,
                _reason(state.outcome.exception()))


def _give_up(state: tenacity.RetryCallState):
    exc = state.outcome.exception()
    LOG.error('Database unavailable: %s failed %d times in %.1fs, last error %s',
              state.fn.__qualname__, state.attempt_number, state.seconds_since_start,
              _reason(exc))
    raise exception.DatabaseUnavailable() from exc


def _retrying(conf) -> tenacity.Retrying:
    opts = conf.database
    return tenacity.Retrying(
        retry=tenacity.retry_if_exception(lambda exc: is_transient(exc) and
                                          not _in_doubt(exc)),
        stop=tenacity.stop_before_delay(opts.max_retry_seconds),
        wait=tenacity.wait_exponential_jitter(initial=opts.retry_interval,
                                              max=opts.max_retry_interval,
                                              jitter=opts.retry_interval),
        before_sleep=_log_retry,
        retry_error_callback=_give_up)


def retry_on_transient(fn):
    """Run ``fn`` (one whole transaction) again after a transient database error, with
    backoff, until it succeeds, fails otherwise, or ``max_retry_seconds`` are spent
    (then ``DatabaseUnavailable``). Inside another decorated call it runs once."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        if in_retry_scope():
            return fn(*args, **kwargs)
        _local.depth = 1
        try:
            try:
                return _attempt(fn, *args, **kwargs)
            except Exception as exc:
                if not is_transient(exc) or _in_doubt(exc):
                    raise
                failed = [exc]

            # The first attempt runs without tenacity (it costs some microseconds a
            # call); after a transient failure tenacity paces the rest, starting with
            # that failure replayed as its own first attempt.
            def again(*a, **kw):
                if failed:
                    raise failed.pop()
                return _attempt(fn, *a, **kw)
            again.__qualname__ = fn.__qualname__
            return _retrying(CONF)(again, *args, **kwargs)
        except Exception as exc:
            if _in_doubt(exc):
                LOG.error('Database connection lost during the commit of %s; not run '
                          'again: %s', fn.__qualname__, _reason(exc))
                raise exception.DatabaseUnavailable(IN_DOUBT_MESSAGE) from exc
            raise
        finally:
            _local.depth = 0
            _local.committing = False
    return wrapper


def _attempt(fn, *args, **kwargs):
    _local.committing = False
    return fn(*args, **kwargs)
