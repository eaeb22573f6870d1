"""Transient database errors: which ones are retried, how often, and what users see.

Failures are injected below SQLAlchemy (a dialect ``do_execute`` listener raising the
driver's own exception), so they take the same path as a real lost connection or
deadlock: SQLAlchemy wraps them, rolls the transaction back and may invalidate the
connection.
"""

import inspect
import sqlite3
import sys
import threading
import time
import uuid

import oslo_messaging
import pytest
import sqlalchemy as sa
from oslo_messaging._drivers import common as rpc_common
from sqlalchemy import event

from novalite import exception
from novalite.compute import utils as compute_utils
from novalite.db import api as db
from novalite.db import models, retry, session, steps
from novalite.db.session import writer
from tests.unit.api import api_fakes

RESOURCES = {'vcpus': 4, 'memory_mb': 4096, 'local_gb': 40}
SQL_WORDS = ('[SQL:', 'SELECT', 'INSERT', 'UPDATE', '[parameters:', 'sqlalche.me')


class Injector:
    """Raise ``make_error()`` from the driver for the first ``times`` statements that
    start with one of ``prefixes`` (``times=None``: every one)."""

    def __init__(self, engine, make_error, times=None,
                 prefixes=('SELECT', 'INSERT', 'UPDATE', 'DELETE')):
        self.engine, self.make_error, self.times = engine, make_error, times
        self.prefixes = prefixes
        self.raised = 0
        self.statements = 0
        event.listen(engine, 'do_execute', self._execute)
        event.listen(engine, 'do_execute_no_params', self._execute_no_params)

    def _check(self, statement):
        if not statement.lstrip().upper().startswith(self.prefixes):
            return
        self.statements += 1
        if self.times is None or self.raised < self.times:
            self.raised += 1
            raise self.make_error()

    def _execute(self, cursor, statement, parameters, context):
        self._check(statement)

    def _execute_no_params(self, cursor, statement, context):
        self._check(statement)

    def remove(self):
        event.remove(self.engine, 'do_execute', self._execute)
        event.remove(self.engine, 'do_execute_no_params', self._execute_no_params)


def lost_connection():
    return sqlite3.OperationalError('server closed the connection unexpectedly')


def closed_database():
    # SQLite's own disconnect: SQLAlchemy invalidates the connection for it.
    return sqlite3.ProgrammingError('Cannot operate on a closed database.')


def deadlock():
    return sqlite3.OperationalError(1213, 'Deadlock found when trying to get lock')


@pytest.fixture
def fast_retry(conf):
    conf.set_override('retry_interval', 0.001, group='database')
    conf.set_override('max_retry_interval', 0.01, group='database')
    conf.set_override('max_retry_seconds', 10, group='database')
    return conf


@pytest.fixture
def engine(sqlite_db, fast_retry):
    return session.get_engine()


def inject(engine, make_error, times=None, **kw):
    return Injector(engine, make_error, times, **kw)


# ------------------------------------------------------------------ classification

class _PgError(Exception):
    def __init__(self, pgcode, text='error'):
        super().__init__(text)
        self.pgcode = pgcode


def _op(orig, cls=sa.exc.OperationalError, invalidated=False):
    return cls('UPDATE t SET x=%(x)s', {'x': 'secret'}, orig,
               connection_invalidated=invalidated)


@pytest.mark.parametrize('exc', [
    _op(Exception('server closed the connection unexpectedly\n\tThis probably means')),
    _op(Exception('terminating connection due to administrator command')),
    _op(Exception('connection to server at "db" (10.0.0.1), port 5432 failed: '
                  'Connection refused')),
    _op(Exception(2006, 'MySQL server has gone away')),
    _op(Exception(2013, 'Lost connection to MySQL server during query')),
    _op(Exception(1213, 'Deadlock found when trying to get lock')),
    _op(Exception(1205, 'Lock wait timeout exceeded')),
    _op(_PgError('40001'), cls=sa.exc.DBAPIError),
    _op(_PgError('40P01'), cls=sa.exc.DBAPIError),
    _op(_PgError('57P01')),
    _op(Exception('anything'), cls=sa.exc.DBAPIError, invalidated=True),
    sa.exc.DisconnectionError('pool'),
], ids=lambda e: str(getattr(e, 'orig', e)).splitlines()[0][:40])
def test_transient_errors(exc):
    assert retry.is_transient(exc)


@pytest.mark.parametrize('exc', [
    _op(Exception('duplicate key: connection refused'), cls=sa.exc.IntegrityError),
    _op(Exception(1062, 'Duplicate entry'), cls=sa.exc.IntegrityError),
    _op(Exception('no such table: instances')),
    _op(_PgError('42P01'), cls=sa.exc.ProgrammingError),
    exception.InstanceNotFound(instance_id='x'),
    exception.DatabaseUnavailable(),
    ValueError('server closed the connection unexpectedly'),
], ids=lambda e: type(e).__name__)
def test_permanent_errors(exc):
    assert not retry.is_transient(exc)


# ------------------------------------------------------------------ retry behaviour

@pytest.mark.parametrize('make_error', [lost_connection, closed_database, deadlock])
def test_whole_transaction_is_run_again(engine, make_error):
    injector = inject(engine, make_error, times=2)
    row = db.service_create('h1', 'novalite-compute', 'compute')
    injector.remove()
    assert injector.raised == 2
    rows = db.service_get_all(host='h1')
    assert [r['uuid'] for r in rows] == [row['uuid']]


def test_claim_retried_after_a_deadlock_claims_once(engine, sqlite_db):
    node = sqlite_db(RESOURCES, 'c1')['c1']
    injector = inject(engine, deadlock, times=1, prefixes=('UPDATE RESOURCE_PROVIDERS',))
    db.claim_resources('consumer-1', {node['uuid']: {'VCPU': 3, 'MEMORY_MB': 512}})
    injector.remove()
    assert injector.raised == 1
    assert db.provider_usages(node['uuid']) == {'VCPU': 3, 'MEMORY_MB': 512}
    with pytest.raises(exception.InsufficientResources):
        db.claim_resources('consumer-2', {node['uuid']: {'VCPU': 2}})


class CommitFails:
    """Fail the next ``times`` COMMITs with ``make_error()``, as the driver would."""

    def __init__(self, engine, make_error, times=1):
        self.engine, self.make_error, self.left = engine, make_error, times
        event.listen(engine, 'commit', self._commit)

    def _commit(self, conn):
        if self.left:
            self.left -= 1
            raise sa.exc.OperationalError('COMMIT', None, self.make_error())

    def remove(self):
        event.remove(self.engine, 'commit', self._commit)


def test_connection_lost_during_commit_is_not_run_again(engine):
    calls = []

    @retry.retry_on_transient
    def create():
        calls.append(1)
        return db.service_create('h1', 'novalite-compute', 'compute')

    failing = CommitFails(engine, lost_connection)
    with pytest.raises(exception.DatabaseUnavailable) as err:
        create()
    failing.remove()
    assert len(calls) == 1
    assert str(err.value) == retry.IN_DOUBT_MESSAGE
    # A lost connection before the commit is retried as usual afterwards.
    injector = inject(engine, lost_connection, times=1)
    db.service_create('h2', 'novalite-compute', 'compute')
    injector.remove()
    assert injector.raised == 1


def test_deadlock_at_commit_is_run_again(engine):
    failing = CommitFails(engine, deadlock)
    db.service_create('h1', 'novalite-compute', 'compute')
    failing.remove()
    assert failing.left == 0
    assert len(db.service_get_all(host='h1')) == 1


def test_spent_budget_raises_database_unavailable(engine, fast_retry):
    fast_retry.set_override('max_retry_seconds', 0.2, group='database')
    injector = inject(engine, lost_connection)
    start = time.monotonic()
    with pytest.raises(exception.DatabaseUnavailable) as err:
        db.instance_get(str(uuid.uuid4()))
    elapsed = time.monotonic() - start
    injector.remove()
    assert injector.raised >= 2
    # Bounded by the budget (generous margin: this is not a speed test).
    assert elapsed < 10
    assert isinstance(err.value.__cause__, sa.exc.OperationalError)
    assert not any(word in str(err.value) for word in SQL_WORDS)
    # The next call, with the database back, works.
    with pytest.raises(exception.InstanceNotFound):
        db.instance_get(str(uuid.uuid4()))


def test_zero_budget_tries_once(engine, fast_retry):
    fast_retry.set_override('max_retry_seconds', 0, group='database')
    injector = inject(engine, lost_connection)
    with pytest.raises(exception.DatabaseUnavailable):
        db.service_get_all()
    injector.remove()
    assert injector.raised == 1


def test_nested_calls_do_not_multiply_retries(engine):
    calls = {'outer': 0, 'inner': 0}
    scopes = []

    @retry.retry_on_transient
    def inner():
        calls['inner'] += 1
        scopes.append(retry.in_retry_scope())
        return db.service_get_all()

    @retry.retry_on_transient
    def outer():
        calls['outer'] += 1
        with writer() as s:
            s.add(models.Service(uuid=str(uuid.uuid4()), host=f'h{calls["outer"]}',
                                 binary='b', topic='t',
                                 report_count=0))
        return inner()

    # The 4th statement fails three times: the outer call's INSERT passes, the inner
    # call's SELECT fails, and only the outer one may start over.
    injector = inject(engine, lost_connection, times=3, prefixes=('SELECT',))
    outer()
    injector.remove()
    assert calls == {'outer': 4, 'inner': 4}
    assert scopes == [True] * 4
    assert not retry.in_retry_scope()
    # Each outer attempt committed its own row before the inner read failed.
    assert len(db.service_get_all(binary='b')) == 4


def test_scope_is_per_thread_and_reset_after_errors(engine):
    seen = []

    @retry.retry_on_transient
    def outer():
        t = threading.Thread(target=lambda: seen.append(retry.in_retry_scope()))
        t.start()
        t.join()
        seen.append(retry.in_retry_scope())
        raise exception.InstanceNotFound(instance_id='x')

    with pytest.raises(exception.InstanceNotFound):
        outer()
    assert seen == [False, True]
    assert not retry.in_retry_scope()


def test_permanent_errors_are_not_retried(engine):
    calls = []

    @retry.retry_on_transient
    def duplicate():
        calls.append(1)
        with writer() as s:
            s.execute(sa.insert(models.Service).values(
                id=1, uuid='u', host='h', binary='b', topic='t', report_count=0))

    duplicate()
    with pytest.raises(sa.exc.IntegrityError):
        duplicate()
    assert len(calls) == 2

    injector = inject(engine, lost_connection, times=0)
    with pytest.raises(exception.InstanceNotFound):
        db.instance_get(str(uuid.uuid4()))
    injector.remove()
    assert injector.statements == 1


def test_every_database_function_retries():
    """Each public function of the db modules that opens its own transaction is
    decorated; helpers taking the caller's session ``s`` are not."""
    pure = {'service_is_up', 'flavor_record', 'quota_defaults', 'as_list', 'coerce',
            'to_dict'}
    names = [n for n in dir(db) if not n.startswith('_')] + \
        ['steps.' + n for n in ('apply_step', 'events_only', 'check_host',
                                'unfinished_migrations', 'destroy_instance',
                                'take_lease', 'unfinished_work')]
    missing = []
    for name in names:
        fn = getattr(steps, name[6:]) if name.startswith('steps.') else getattr(db, name)
        if not inspect.isfunction(fn) or name in pure:
            continue
        if list(inspect.signature(fn).parameters)[:1] == ['s']:
            assert not hasattr(fn, '__wrapped__'), name
            continue
        if not hasattr(fn, '__wrapped__'):
            missing.append(name)
    assert not missing


def test_sqlite_engine_without_ping_and_server_engines_with_the_idle_ping(conf, tmp_path):
    lite = session.create_engine('sqlite:///' + str(tmp_path / 'x.sqlite'))
    with lite.connect() as c:
        assert c.exec_driver_sql('SELECT 1').scalar() == 1
    lite.dispose()
    server = session.create_engine('postgresql+psycopg2://u:p@127.0.0.1:1/x')
    # Every checkout would cost two round trips with pool_pre_ping; the idle ping (its
    # behaviour: tests/integration/test_db_resilience.py) replaces it.
    assert not server.pool._pre_ping
    server.dispose()


# ------------------------------------------------------------------ what users see

def _sql_error():
    return sa.exc.OperationalError(
        'UPDATE instances SET host=%(host)s WHERE uuid = %(uuid)s',
        {'host': 'c9', 'uuid': 'secret-param'}, Exception('no such column: host'))


def _raised(exc):
    try:
        raise exc
    except BaseException as e:  # noqa: BLE001 - we want the traceback attached
        return e


def _assert_no_sql(text):
    assert not any(word in text for word in SQL_WORDS), text
    assert 'secret-param' not in text


def test_fault_of_a_raw_database_error_holds_no_sql():
    fault = compute_utils.fault_record(_raised(_sql_error()))
    assert fault['message'] == compute_utils.GENERIC_DB_ERROR
    assert fault['code'] == 500
    _assert_no_sql(fault['message'])
    _assert_no_sql(fault['details'])
    assert 'OperationalError' in fault['details']
    event = compute_utils.Hop(type('Ctx', (), {'request_id': 'r'})(), 'hop').error(
        _raised(_sql_error()))
    _assert_no_sql(event['traceback'])


def test_fault_of_database_unavailable_holds_no_sql():
    def give_up():
        try:
            raise _sql_error()
        except sa.exc.OperationalError as e:
            raise exception.DatabaseUnavailable() from e
    exc = None
    try:
        give_up()
    except exception.DatabaseUnavailable as e:
        exc = e
    fault = compute_utils.fault_record(exc)
    assert fault['code'] == 503
    assert fault['message'] == exception.DatabaseUnavailable.msg_fmt
    _assert_no_sql(fault['details'])


def test_fault_of_a_database_error_that_crossed_rpc_holds_no_sql():
    text = str(_sql_error())
    assert '[SQL:' in text
    remote = _raised(oslo_messaging.RemoteError('OperationalError', text, 'Traceback ...'))
    fault = compute_utils.fault_record(remote)
    assert fault['message'] == compute_utils.GENERIC_DB_ERROR
    _assert_no_sql(fault['details'])
    wrapped = _raised(exception.MigrationError(reason=text))
    assert compute_utils.fault_message(wrapped) == compute_utils.GENERIC_DB_ERROR


def test_error_raised_while_handling_a_database_error_keeps_its_message():
    def handle():
        try:
            raise _sql_error()
        except sa.exc.OperationalError:
            raise exception.MigrationError(reason='source host gone')  # noqa: B904
    try:
        handle()
    except exception.MigrationError as e:
        exc = e
    fault = compute_utils.fault_record(exc)
    assert fault['message'] == 'Migration error: source host gone'
    _assert_no_sql(fault['details'])


def test_other_faults_keep_their_text_and_traceback():
    exc = _raised(exception.MigrationError(reason='disk full'))
    fault = compute_utils.fault_record(exc)
    assert fault['message'] == 'Migration error: disk full'
    assert 'Migration error: disk full' in fault['details']


def test_database_unavailable_crosses_rpc_as_itself():
    try:
        raise exception.DatabaseUnavailable()
    except exception.DatabaseUnavailable:
        data = rpc_common.serialize_remote_exception(sys.exc_info())
    rebuilt = rpc_common.deserialize_remote_exception(data, exception.REMOTE_ALLOWED)
    assert isinstance(rebuilt, exception.DatabaseUnavailable)


@pytest.fixture
def rest(conf, tmp_path, fast_retry):
    api_fakes.setup_db(tmp_path)
    client, _ = api_fakes.make_client(conf)
    yield client, api_fakes.make_server()
    session.set_engine(None)


def test_rest_database_unavailable_is_503(rest, fast_retry):
    client, server = rest
    fast_retry.set_override('max_retry_seconds', 0.05, group='database')
    injector = inject(session.get_engine(), lost_connection)
    resp = client.request('GET', f'/v2.1/servers/{server["uuid"]}')
    injector.remove()
    assert resp.status_int == 503
    message = resp.data['serviceUnavailable']['message']
    assert message == exception.DatabaseUnavailable.msg_fmt
    _assert_no_sql(resp.text)
    assert client.request('GET', f'/v2.1/servers/{server["uuid"]}').status_int == 200


def test_rest_unexpected_database_error_is_500_without_sql(rest):
    client, server = rest
    injector = inject(session.get_engine(),
                      lambda: sqlite3.OperationalError('no such column: secret-param'))
    resp = client.request('GET', f'/v2.1/servers/{server["uuid"]}')
    injector.remove()
    assert resp.status_int == 500
    assert injector.raised == 1
    _assert_no_sql(resp.text)
    assert 'Unexpected API Error' in resp.data['computeFault']['message']
