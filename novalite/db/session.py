"""Engine and transaction scopes: one engine per process, short explicit transactions."""

import contextlib
import os
import threading
import time

import sqlalchemy as sa
from sqlalchemy import event, orm

from novalite import stats
from novalite.conf import CONF
from novalite.db import retry

_lock = threading.Lock()
# SQLite has one writer at a time, and a writer that finds the lock taken sleeps in
# SQLite's busy handler (1 ms growing to 100 ms a try): under concurrency the waits
# grow far beyond the transactions. Writers of this process queue here instead and
# start the moment the previous one ends; other processes still meet busy_timeout.
_sqlite_writers = threading.Lock()
_engine: sa.Engine | None = None
_sessionmaker: orm.sessionmaker | None = None
# A pooled connection idle for longer than this is pinged when taken from the pool;
# one used more recently goes straight to work (see _ping_idle_connections).
PING_IDLE_SECONDS = 1.0


def default_url(conf=CONF) -> str:
    """The configured database URL, or the embedded SQLite file under state_path."""
    if conf.database.connection:
        return conf.database.connection
    os.makedirs(conf.state_path, exist_ok=True)
    return 'sqlite:///' + os.path.join(conf.state_path, 'novalite.sqlite')


def create_engine(url: str, conf=CONF, connect_args: dict | None = None) -> sa.Engine:
    echo = conf.database.connection_debug
    if url.startswith('sqlite'):
        engine = sa.create_engine(url, echo=echo, connect_args={'check_same_thread': False,
                                                                'timeout': 30},
                                  poolclass=sa.pool.QueuePool if ':memory:' not in url
                                  else sa.pool.StaticPool,
                                  pool_size=20, max_overflow=40)

        @event.listens_for(engine, 'connect')
        def _sqlite_pragmas(dbapi_conn, _record):
            # Let SQLAlchemy issue BEGIN itself (IMMEDIATE for writers, see below).
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            if ':memory:' not in url:
                cur.execute('PRAGMA journal_mode=WAL')
            cur.execute('PRAGMA synchronous=NORMAL')
            cur.execute('PRAGMA foreign_keys=ON')
            cur.execute('PRAGMA busy_timeout=30000')
            cur.close()

        event.listen(engine, 'commit', _count_commit)

        @event.listens_for(engine, 'begin')
        def _sqlite_begin(conn):
            # Writers take the write lock up front so two read-then-write
            # transactions never deadlock on a lock upgrade. A read scope (``reader``)
            # sends no BEGIN: each statement reads a snapshot of its own, as reads on
            # PostgreSQL do (see ``reader``).
            mode = conn.info.get('begin_mode')
            if mode is None and getattr(_read_scope, 'depth', 0):
                return
            conn.exec_driver_sql(f'BEGIN {mode or "DEFERRED"}')
        return engine
    kwargs = dict(echo=echo, pool_size=conf.database.max_pool_size,
                  max_overflow=conf.database.max_overflow,
                  pool_timeout=conf.database.pool_timeout, connect_args=connect_args or {})
    if url.startswith('mysql'):
        kwargs['isolation_level'] = 'READ COMMITTED'
    engine = sa.create_engine(url, **kwargs)
    _ping_idle_connections(engine)
    event.listen(engine, 'commit', _count_commit)
    if os.environ.get('NOVALITE_STATS_DIR'):
        _count_statements(engine)
    return engine


def _ping_idle_connections(engine: sa.Engine) -> None:
    """Replace, at checkout, a pooled connection that has died while it sat idle.

    SQLAlchemy's pool_pre_ping would ping every checkout: two round trips (BEGIN and
    SELECT 1) per transaction, as many as a scheduler's whole claim. Here only a
    connection idle for PING_IDLE_SECONDS or more is pinged, which is where dead
    connections come from (a database restarted or blinking while the pool waited). A
    connection that dies between two transactions less than that apart fails its first
    statement, before any COMMIT, and retry_on_transient runs the transaction again on
    a fresh one: the pool drops every connection older than a disconnect it sees.
    """
    @event.listens_for(engine, 'checkin')
    def _idle_from(dbapi_conn, record):
        record.info['idle_since'] = time.monotonic()

    @event.listens_for(engine, 'checkout')
    def _ping_if_idle(dbapi_conn, record, proxy):
        since = record.info.get('idle_since')
        if since is None or time.monotonic() - since < PING_IDLE_SECONDS:
            return
        try:
            cursor = dbapi_conn.cursor()
            try:
                cursor.execute('SELECT 1')
            finally:
                cursor.close()
            dbapi_conn.rollback()
        except engine.dialect.loaded_dbapi.Error as e:
            # The pool drops this connection and checks out another (documented
            # behaviour of DisconnectionError raised from a checkout listener).
            record.info.pop('idle_since', None)
            raise sa.exc.DisconnectionError(str(e)) from e


def _count_commit(conn):
    stats.count('commit')


def _count_statements(engine: sa.Engine) -> None:
    """For benchmarks (NOVALITE_STATS_DIR set): count every statement sent to the
    server but COMMIT (counted as a commit), with the BEGIN psycopg2 sends before a
    transaction's first statement and the ROLLBACK that ends a transaction."""
    psycopg2 = engine.dialect.driver == 'psycopg2'
    if psycopg2:
        from psycopg2.extensions import STATUS_BEGIN, STATUS_READY

    @event.listens_for(engine, 'before_cursor_execute')
    def _statement(conn, cursor, *_args):
        raw = cursor.connection
        if psycopg2 and not raw.autocommit and raw.status == STATUS_READY:
            stats.count('statement')  # no transaction open: psycopg2 sends BEGIN first
        stats.count('statement')

    @event.listens_for(engine, 'rollback')
    def _rollback(conn):
        raw = conn.connection.dbapi_connection
        if not psycopg2 or (raw is not None and raw.status == STATUS_BEGIN):
            stats.count('statement')


def get_engine() -> sa.Engine:
    with _lock:
        if _engine is None:
            _bind(create_engine(default_url()))
        return _engine


def set_engine(engine: sa.Engine | None) -> None:
    """Replace the process engine (tests, the all-in-one)."""
    with _lock:
        if _engine is not None and _engine is not engine:
            _engine.dispose()
        _bind(engine)


def _bind(engine: sa.Engine | None) -> None:
    global _engine, _sessionmaker
    _engine = engine
    _sessionmaker = (orm.sessionmaker(bind=engine, expire_on_commit=False)
                     if engine is not None else None)


def is_sqlite() -> bool:
    return get_engine().dialect.name == 'sqlite'


@contextlib.contextmanager
def reader():
    """A read-only scope.

    On PostgreSQL its statements run in autocommit: no BEGIN before the first and no
    ROLLBACK after the last, which are two of the three round trips of a one-statement
    read. What the statements see is unchanged: under READ COMMITTED (PostgreSQL's
    default, and ours) every statement of a transaction takes a snapshot of its own
    anyway. psycopg2's autocommit switch is a client-side flag (no round trip), set for
    the scope and cleared before the connection goes back to the pool, so writers
    never run in autocommit. On SQLite likewise: no BEGIN, each statement is a
    transaction (and a snapshot) of its own.
    """
    get_engine()  # binds the session maker on first use
    with _sessionmaker() as session, _autocommit_reads(session.connection):
        yield session


@contextlib.contextmanager
def connection_reader():
    """A read-only scope on a plain Core connection, for the reads of every request
    (a server GET, a boot's flavor, image and limits): Core statements only, without
    the ORM session's bookkeeping, which costs more CPU than executing such a read.
    On PostgreSQL in autocommit, as ``reader``."""
    with get_engine().connect() as conn, _autocommit_reads(lambda: conn):
        yield conn


# Read scopes open in this thread: on SQLite their transactions send no BEGIN.
_read_scope = threading.local()


@contextlib.contextmanager
def _autocommit_reads(connection):
    """On psycopg2, the connection ``connection()`` gives in autocommit for the scope
    (see ``reader``), and out of it again before it goes back to the pool; on SQLite,
    the scope's transactions begin without a BEGIN (the driver runs each statement in
    one of its own); elsewhere nothing (``connection`` is not called: a session's stays
    unopened until used)."""
    driver = get_engine().dialect.driver
    if driver == 'pysqlite':
        _read_scope.depth = getattr(_read_scope, 'depth', 0) + 1
        try:
            yield
        finally:
            _read_scope.depth -= 1
        return
    if driver != 'psycopg2':
        yield
        return
    dbapi_conn = connection().connection.dbapi_connection
    dbapi_conn.autocommit = True
    try:
        yield
    finally:
        if not dbapi_conn.closed:
            dbapi_conn.autocommit = False


@contextlib.contextmanager
def writer():
    """A read-write transaction, committed on success, rolled back on error."""
    engine = get_engine()
    if engine.dialect.name != 'sqlite':
        with _sessionmaker() as session, session.begin():
            yield session
            # Flush first: only a failure of COMMIT itself leaves the outcome unknown.
            session.flush()
            retry.commit_started()
        retry.commit_done()
        return
    queued = _sqlite_writers.acquire(timeout=30)  # as busy_timeout below
    try:
        with _sqlite_writer(engine) as session:
            yield session
    finally:
        if queued:
            _sqlite_writers.release()


@contextlib.contextmanager
def _sqlite_writer(engine):
    with engine.connect() as conn:
        conn.info['begin_mode'] = 'IMMEDIATE'
        try:
            with conn.begin(), orm.Session(bind=conn, expire_on_commit=False) as session:
                yield session
                session.flush()
                retry.commit_started()
            retry.commit_done()
        finally:
            conn.info.pop('begin_mode', None)
