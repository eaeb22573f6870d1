"""Two claims for members of one anti-affinity group, on PostgreSQL and MariaDB (READ
COMMITTED): the second waits on the group's row while the first is uncommitted, then
sees the first one's allocation and is refused. Nothing here depends on timing: the
first claim holds its transaction open until the database reports the second one
waiting on a lock."""

import threading

import pytest
import sqlalchemy as sa
from sqlalchemy import event

from novalite import exception
from novalite.compute import states
from novalite.db import api as db
from novalite.db import models, session
from tests.rest import wait_until

pytestmark = pytest.mark.integration

RESOURCES = {'vcpus': 4, 'memory_mb': 4096, 'local_gb': 40}
RATIOS = {'VCPU': 1.0, 'MEMORY_MB': 1.0, 'DISK_GB': 1.0}
RESERVED = {'VCPU': 0, 'MEMORY_MB': 0, 'DISK_GB': 0}
SMALL = {'VCPU': 1, 'MEMORY_MB': 1024, 'DISK_GB': 10}

# Counts the sessions of this database waiting for the group's row. On MariaDB (whose
# lock views need the PROCESS privilege) a locking read of server_groups still running
# while the first claim holds the row is one that waits for it.
WAITING = {
    'postgresql': "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                  "AND wait_event_type = 'Lock'",
    'mysql': "SELECT count(*) FROM information_schema.processlist "
             "WHERE db = DATABASE() AND command = 'Query' "
             "AND info LIKE '%FROM server_groups%FOR UPDATE%'",
}


@pytest.fixture(params=['postgresql', 'mysql'])
def backend(request, conf):
    url = request.getfixturevalue({'postgresql': 'pg_fresh_url',
                                   'mysql': 'mysql_fresh_url'}[request.param])
    conf.set_override('retry_interval', 0.05, group='database')
    engine = session.create_engine(url)
    models.Base.metadata.create_all(engine)
    session.set_engine(engine)
    admin = sa.create_engine(url, isolation_level='AUTOCOMMIT', poolclass=sa.pool.NullPool)
    yield engine, admin, WAITING[request.param]
    session.set_engine(None)
    admin.dispose()


def _member(group):
    inst = db.instance_create({'display_name': 'x', 'project_id': 'p', 'user_id': 'u',
                               'vm_state': states.BUILDING,
                               'flavor': {'vcpus': 1, 'memory_mb': 1024, 'root_gb': 10}})
    db.group_add_members(group, [inst['uuid']])
    return inst['uuid']


@pytest.mark.parametrize('second_host', ['h1', 'h2'])
def test_second_claim_of_a_group_waits_for_the_first(backend, second_host):
    engine, admin, waiting_sql = backend
    nodes = {h: db.compute_node_update(h, h, dict(RESOURCES), RATIOS, RESERVED)['uuid']
             for h in ('h1', 'h2')}
    group = db.group_create('g', 'p', 'u', 'anti-affinity')['uuid']
    first, second = _member(group), _member(group)
    first_locked = threading.Event()
    first_thread = {}

    def someone_waits():
        with admin.connect() as conn:
            return conn.execute(sa.text(waiting_sql)).scalar() > 0

    def hold_after_lock(conn, cursor, statement, parameters, context, executemany):
        if (threading.get_ident() == first_thread.get('id') and
                statement.startswith('SELECT') and 'FROM server_groups' in statement and
                'FOR ' in statement and not first_locked.is_set()):
            first_locked.set()
            # Keep this transaction open, holding the group's row, until the second
            # claim is blocked on it.
            wait_until(someone_waits, timeout=60, interval=0.05,
                       message='the second claim waiting on the group row')

    event.listen(engine, 'after_cursor_execute', hold_after_lock)
    results = {}

    def claim(name, consumer, host):
        if name == 'first':
            first_thread['id'] = threading.get_ident()
        try:
            db.claim_resources(consumer, {nodes[host]: dict(SMALL)}, project_id='p',
                               user_id='u')
            results[name] = 'claimed'
        except exception.GroupPolicyViolation as e:
            results[name] = e
        except Exception as e:  # noqa: BLE001 - reported by the assertions below
            results[name] = e

    t1 = threading.Thread(target=claim, args=('first', first, 'h1'))
    t1.start()
    assert first_locked.wait(60)
    t2 = threading.Thread(target=claim, args=('second', second, second_host))
    t2.start()
    for t in (t1, t2):
        t.join(timeout=120)
    assert not t1.is_alive() and not t2.is_alive()
    assert results['first'] == 'claimed', results
    assert db.get_allocations(first) == {nodes['h1']: SMALL}
    with session.reader() as s:
        generation = s.query(models.ServerGroup.generation).filter(
            models.ServerGroup.uuid == group).scalar()
    if second_host == 'h1':
        assert isinstance(results['second'], exception.GroupPolicyViolation), results
        assert db.get_allocations(second) == {}
        assert db.provider_usages(nodes['h1'])['VCPU'] == 1
        assert generation == 1
    else:
        assert results['second'] == 'claimed', results
        assert db.get_allocations(second) == {nodes['h2']: SMALL}
        assert generation == 2
