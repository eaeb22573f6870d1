"""Fixtures shared by every test suite.

Configuration
-------------
``_restore_conf`` (autouse) snapshots every option's override and set_default value
before each test and puts them back afterwards, then calls ``CONF.clear()`` so the
next test starts with CONF un-parsed (so code under test may register CLI options
and parse again). oslo.config 10 notes: ``CONF.clear()`` alone forgets the parsed
command line and files but keeps overrides; ``CONF.reset()`` also drops defaults set
by libraries (oslo.log, oslo.messaging) at import time, which tests must not lose.
Hence the snapshot. Use ``conf.set_override(...)`` (or ``set_default``) freely.

``conf`` parses CONF with no command line and no config files (a developer's
``~/.novalite/novalite.conf`` or ``/etc/novalite`` never leaks into tests) and points
``state_path`` at the test's tmp_path.

External services
-----------------
``pg_url``, ``mysql_url`` and ``rabbit_url`` probe their service once per session
(2 s timeouts) and skip the test when it is unreachable; with
``NOVALITE_REQUIRE_SERVICES=1`` (CI) they fail it instead. URLs come from
``NOVALITE_TEST_PG_URL``, ``NOVALITE_TEST_MYSQL_URL`` and ``NOVALITE_TEST_RABBIT_URL``;
unset, the ``novalite`` accounts that ``tools/ensure_services.sh`` creates are tried
first, then the usual superuser accounts of a local development server.
``require_service(name, check)`` (also a fixture of that name) applies the same rule
to any other service. ``pg_fresh_url``/``mysql_fresh_url`` create a throwaway
database per test and drop it afterwards; ``any_db_url`` runs a test on SQLite,
PostgreSQL and MariaDB/MySQL.
"""

import os
import shutil
import subprocess
import uuid

import pytest
import sqlalchemy as sa

from novalite.conf import CONF

REQUIRE_SERVICES = os.environ.get('NOVALITE_REQUIRE_SERVICES') == '1'

PG_URLS = ['postgresql+psycopg2://novalite:novalite@127.0.0.1:5432/test',
           'postgresql+psycopg2://postgres@127.0.0.1:5432/test']
MYSQL_URLS = ['mysql+pymysql://novalite:novalite@127.0.0.1:3306/test',
              'mysql+pymysql://root@127.0.0.1:3306/test']
RABBIT_URLS = ['rabbit://guest:guest@127.0.0.1:5672/']

PROBE_TIMEOUT = 2


# --------------------------------------------------------------------------- config

def _opt_infos(conf):
    """(group, name, info dict) of every registered option (oslo.config internals)."""
    for name, info in conf._opts.items():
        yield None, name, info
    for group_name, group in conf._groups.items():
        for name, info in group._opts.items():
            yield group_name, name, info


_MISSING = object()


@pytest.fixture(autouse=True)
def _restore_conf():
    saved = {(g, n): (info.get('default', _MISSING), info.get('override', _MISSING))
             for g, n, info in _opt_infos(CONF)}
    yield
    for group, name, info in list(_opt_infos(CONF)):
        default, override = saved.get((group, name), (_MISSING, _MISSING))
        for key, value in (('default', default), ('override', override)):
            if value is _MISSING:
                info.pop(key, None)
            else:
                info[key] = value
    CONF.clear()  # un-parse; also empties the value cache


@pytest.fixture
def conf(tmp_path):
    """CONF parsed without arguments or config files, state_path in tmp_path."""
    CONF([], project='novalite', default_config_files=[], default_config_dirs=[])
    CONF.set_override('state_path', str(tmp_path / 'state'))
    return CONF


# ------------------------------------------------------------------------- services

_probes: dict[str, tuple[object, str | None]] = {}


def require_service(name, check):
    """Return ``check()``; skip the test (fail with NOVALITE_REQUIRE_SERVICES=1)
    when it raises. Each ``name`` is probed once per test session."""
    if name not in _probes:
        try:
            _probes[name] = (check(), None)
        except Exception as exc:  # any failure means "not usable"
            _probes[name] = (None, str(exc).strip() or type(exc).__name__)
    result, error = _probes[name]
    if error is not None:
        if REQUIRE_SERVICES:
            pytest.fail(f'{error} (NOVALITE_REQUIRE_SERVICES=1)', pytrace=False)
        pytest.skip(error)
    return result


@pytest.fixture(name='require_service')
def _require_service_fixture():
    return require_service


def _safe(url):
    if url.startswith('rabbit://'):
        head, _, rest = url[len('rabbit://'):].rpartition('@')
        return 'rabbit://' + (head.split(':')[0] + ':***@' if head else '') + rest
    return sa.engine.make_url(url).render_as_string(hide_password=True)


def _first_working(label, env, candidates, probe):
    urls = [os.environ[env]] if os.environ.get(env) else candidates

    def check():
        errors = []
        for url in urls:
            try:
                probe(url)
                return url
            except Exception as exc:
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else ''
                errors.append(f'{_safe(url)}: {type(exc).__name__}: {first}')
        raise RuntimeError(f'{label} not reachable at ' + '; '.join(errors)
                           + f' (set {env})')
    return require_service(label, check)


def _probe_sql(url):
    kind = sa.engine.make_url(url).get_backend_name()
    args = {'connect_timeout': PROBE_TIMEOUT}
    if kind == 'mysql':
        args.update(read_timeout=PROBE_TIMEOUT * 5, write_timeout=PROBE_TIMEOUT * 5)
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool, connect_args=args)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text('SELECT 1'))
    finally:
        engine.dispose()


def _probe_rabbit(url):
    import kombu

    with kombu.Connection('amqp://' + url.split('://', 1)[1],
                          connect_timeout=PROBE_TIMEOUT) as conn:
        conn.ensure_connection(max_retries=1, timeout=PROBE_TIMEOUT)


@pytest.fixture(scope='session')
def pg_url():
    """URL of a reachable PostgreSQL database (shared; prefer pg_fresh_url)."""
    return _first_working('PostgreSQL', 'NOVALITE_TEST_PG_URL', PG_URLS, _probe_sql)


@pytest.fixture(scope='session')
def mysql_url():
    """URL of a reachable MariaDB/MySQL database (shared; prefer mysql_fresh_url)."""
    return _first_working('MariaDB/MySQL', 'NOVALITE_TEST_MYSQL_URL', MYSQL_URLS, _probe_sql)


@pytest.fixture(scope='session')
def rabbit_url():
    """oslo.messaging transport URL of a reachable RabbitMQ."""
    return _first_working('RabbitMQ', 'NOVALITE_TEST_RABBIT_URL', RABBIT_URLS, _probe_rabbit)


def _throwaway_database(base_url, create_sql, drop_sql):
    """Yield the URL of a new database on ``base_url``'s server, dropped on close."""
    name = 'novalite_t_' + uuid.uuid4().hex[:12]
    admin = sa.create_engine(base_url, isolation_level='AUTOCOMMIT',
                             poolclass=sa.pool.NullPool)
    with admin.connect() as conn:
        conn.exec_driver_sql(create_sql.format(name=name))
    try:
        yield (sa.engine.make_url(base_url).set(database=name)
               .render_as_string(hide_password=False))
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(drop_sql.format(name=name))
        admin.dispose()


@pytest.fixture
def pg_fresh_url(pg_url):
    """An empty PostgreSQL database of its own, dropped after the test."""
    yield from fresh_pg_database(pg_url)


def fresh_pg_database(pg_url):
    """Generator behind ``pg_fresh_url`` (also used outside pytest)."""
    yield from _throwaway_database(pg_url, 'CREATE DATABASE {name}',
                                   'DROP DATABASE IF EXISTS {name} WITH (FORCE)')


@pytest.fixture
def mysql_fresh_url(mysql_url):
    """An empty MariaDB/MySQL database of its own, dropped after the test."""
    yield from fresh_mysql_database(mysql_url)


def fresh_mysql_database(mysql_url):
    """Generator behind ``mysql_fresh_url`` (also used outside pytest)."""
    yield from _throwaway_database(mysql_url, 'CREATE DATABASE {name} CHARACTER SET utf8mb4',
                                   'DROP DATABASE IF EXISTS {name}')


@pytest.fixture
def sqlite_url(tmp_path):
    """An empty SQLite database file of its own."""
    return 'sqlite:///' + str(tmp_path / 'novalite.sqlite')


@pytest.fixture(params=['sqlite', 'postgresql', 'mysql'])
def any_db_url(request):
    """An empty database of each backend in turn (PostgreSQL/MySQL may skip)."""
    fixture = {'sqlite': 'sqlite_url', 'postgresql': 'pg_fresh_url',
               'mysql': 'mysql_fresh_url'}[request.param]
    return request.getfixturevalue(fixture)


@pytest.fixture
def private_rabbit_url(rabbit_url):
    """rabbit_url on a throwaway vhost when the broker is local and rabbitmqctl works.

    RabbitMQ queue names are per vhost, not per exchange: two clusters on one vhost
    share the 'conductor' and 'compute.<host>' queues whatever their control_exchange.
    """
    yield from private_vhost(rabbit_url)


def private_vhost(rabbit_url):
    """Generator behind ``private_rabbit_url`` (also used outside pytest): yields the
    URL on a new vhost, deleted when the generator is closed."""
    ctl = shutil.which('rabbitmqctl')
    if not ctl or '@127.0.0.1' not in rabbit_url and '@localhost' not in rabbit_url:
        yield rabbit_url
        return
    vhost = 'novalite-lv-' + uuid.uuid4().hex[:8]
    user = rabbit_url.split('://', 1)[1].split(':', 1)[0] or 'guest'
    try:
        subprocess.run([ctl, '-q', 'add_vhost', vhost], check=True, capture_output=True)
        subprocess.run([ctl, '-q', 'set_permissions', '-p', vhost, user, '.*', '.*', '.*'],
                       check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError):
        yield rabbit_url
        return
    try:
        yield rabbit_url.rstrip('/') + '/' + vhost
    finally:
        subprocess.run([ctl, '-q', 'delete_vhost', vhost], check=False, capture_output=True)
