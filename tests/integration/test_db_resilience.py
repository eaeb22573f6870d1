"""Transient database errors on real servers: lost PostgreSQL backends and MariaDB
deadlocks between concurrent claims end in a completed step or claim, applied once.

Each test works on a throwaway database of its own and terminates only that database's
backends.
"""

import threading

import pytest
import sqlalchemy as sa
from psycopg2.extensions import STATUS_BEGIN, STATUS_READY
from sqlalchemy import event

from novalite import exception, stats
from novalite.compute import states
from novalite.compute import utils as compute_utils
from novalite.db import api as db
from novalite.db import instances, models, session, steps

pytestmark = pytest.mark.integration

MS = states.MS
RESOURCES = {'vcpus': 4, 'memory_mb': 4096, 'local_gb': 40}
RATIOS = {'VCPU': 1.0, 'MEMORY_MB': 1.0, 'DISK_GB': 1.0}
RESERVED = {'VCPU': 0, 'MEMORY_MB': 0, 'DISK_GB': 0}
SMALL = {'VCPU': 1, 'MEMORY_MB': 1024, 'DISK_GB': 10}
SQL_WORDS = ('[SQL:', 'SELECT', 'INSERT', 'UPDATE', '[parameters:', 'sqlalche.me')


def _use_database(conf, url):
    conf.set_override('retry_interval', 0.05, group='database')
    conf.set_override('max_retry_interval', 0.5, group='database')
    conf.set_override('max_retry_seconds', 30, group='database')
    engine = session.create_engine(url)
    models.Base.metadata.create_all(engine)
    session.set_engine(engine)
    return engine


def _nodes(*hosts):
    return {h: db.compute_node_update(h, h, dict(RESOURCES), RATIOS, RESERVED)
            for h in hosts}


@pytest.fixture
def pg(conf, pg_fresh_url):
    engine = _use_database(conf, pg_fresh_url)
    admin = sa.create_engine(pg_fresh_url, isolation_level='AUTOCOMMIT',
                             poolclass=sa.pool.NullPool)
    yield engine, admin
    session.set_engine(None)
    admin.dispose()


def _terminate_others(admin) -> int:
    """Terminate every other backend of this throwaway database; returns how many."""
    with admin.connect() as conn:
        return len(conn.exec_driver_sql(
            'SELECT pg_terminate_backend(pid, 10000) FROM pg_stat_activity '
            'WHERE datname = current_database() AND pid <> pg_backend_pid()').all())


def _terminate_during(engine, admin, prefix):
    """Terminate the backend that is about to run the first statement starting with
    ``prefix``, inside its transaction; returns a list that records each kill."""
    killed = []

    def before(conn, cursor, statement, parameters, context, executemany):
        if killed or not statement.startswith(prefix):
            return
        pid = cursor.connection.get_backend_pid()
        with admin.connect() as c:
            assert c.exec_driver_sql(f'SELECT pg_terminate_backend({int(pid)}, 10000)'
                                     ).scalar()
        killed.append(pid)
    event.listen(engine, 'before_cursor_execute', before)
    return killed


def _move(nodes):
    inst = db.instance_create({'display_name': 'x', 'project_id': 'p', 'user_id': 'u',
                               'host': 'src', 'node': 'src', 'vm_state': states.ACTIVE,
                               'task_state': states.RESIZE_PREP,
                               'flavor': {'vcpus': 1, 'memory_mb': 1024}})
    db.action_start(inst['uuid'], 'migrate', 'req-1')
    mig = db.migration_create({'instance_uuid': inst['uuid'], 'status': MS.PRE_MIGRATING,
                               'migration_type': states.COLD_MIGRATION,
                               'source_compute': 'src', 'source_node': 'src',
                               'dest_compute': 'dst', 'dest_node': 'dst'})
    db.claim_resources(mig['uuid'], {nodes['src']['uuid']: SMALL})
    db.claim_resources(inst['uuid'], {nodes['dst']['uuid']: SMALL})
    return inst, mig


def _fail_move(inst, mig, fault):
    return steps.apply_step(
        'move_failed', inst['uuid'], mig['uuid'], caller='dst', vm_state=states.ACTIVE,
        fault=fault, host='dst',
        events=[{'request_id': 'req-1', 'name': 'compute_prep_resize', 'result': 'Error'}])


def _assert_move_failed_once(nodes, inst, mig):
    assert db.get_allocations(inst['uuid']) == {nodes['src']['uuid']: SMALL}
    assert db.get_allocations(mig['uuid']) == {}
    assert db.provider_usages(nodes['src']['uuid'])['VCPU'] == 1
    assert db.provider_usages(nodes['dst']['uuid']).get('VCPU', 0) == 0
    assert db.migration_get(mig['uuid'])['status'] == MS.ERROR
    assert db.instance_get(inst['uuid'])['task_state'] is None
    action = db.action_get_by_request_id(inst['uuid'], 'req-1')
    assert [e['event'] for e in db.action_events_get(action['id'])] == \
        ['compute_prep_resize']


def _one_pooled_connection(engine):
    engine.dispose()
    with engine.connect() as conn:
        assert conn.exec_driver_sql('SELECT 1').scalar() == 1
    assert engine.pool.checkedin() == 1


def test_pg_idle_connection_that_died_is_replaced_at_checkout(pg, monkeypatch):
    engine, admin = pg
    monkeypatch.setattr(session, 'PING_IDLE_SECONDS', 0.0)
    _one_pooled_connection(engine)
    assert _terminate_others(admin) == 1
    # No retry around this: the checkout pinged the dead connection and replaced it.
    with engine.connect() as conn:
        assert conn.exec_driver_sql('SELECT 2').scalar() == 2


def test_pg_recently_used_connection_is_not_pinged(pg, monkeypatch):
    # The other side of the test above: a connection used within PING_IDLE_SECONDS
    # goes straight to work, so a backend killed under it fails the first statement
    # (where retry_on_transient takes over, as the tests below show).
    engine, admin = pg
    monkeypatch.setattr(session, 'PING_IDLE_SECONDS', 3600.0)
    _one_pooled_connection(engine)
    assert _terminate_others(admin) == 1
    with pytest.raises(sa.exc.DBAPIError) as raised, engine.connect() as conn:
        conn.exec_driver_sql('SELECT 2')
    assert raised.value.connection_invalidated


def _statements(engine):
    """The statements the DB-API is handed, BEGIN and ROLLBACK included: psycopg2 sends
    BEGIN itself before a transaction's first statement, so it is counted from the
    connection's status as the statement starts."""
    seen = []

    def before(conn, cursor, statement, parameters, context, executemany):
        raw = cursor.connection
        if not raw.autocommit and raw.status == STATUS_READY:  # BEGIN goes first
            seen.append('BEGIN')
        seen.append(statement.split()[0])

    def rollback(conn):
        raw = conn.connection.dbapi_connection
        if raw is not None and raw.status == STATUS_BEGIN:  # a ROLLBACK is sent
            seen.append('ROLLBACK')
    event.listen(engine, 'before_cursor_execute', before)
    event.listen(engine, 'rollback', rollback)
    return seen


def test_pg_reader_costs_no_begin_and_no_rollback(pg):
    engine, _admin = pg
    nodes = _nodes('src')
    seen = _statements(engine)
    assert db.compute_node_get_all() and seen == ['SELECT']
    # A writer on the same pooled connection is a transaction still: BEGIN, COMMIT, and
    # an error inside it rolls back everything it wrote.
    assert engine.pool.checkedin() == 1
    seen.clear()
    with pytest.raises(RuntimeError), session.writer() as s:
        s.execute(sa.update(models.ComputeNode).values(vcpus=99))
        raise RuntimeError('abandon')
    assert seen == ['BEGIN', 'UPDATE', 'ROLLBACK']
    assert {n['vcpus'] for n in db.compute_node_get_all()} == {4}
    with session.writer() as s:
        s.execute(sa.update(models.ComputeNode).values(vcpus=8))
    assert {n['vcpus'] for n in db.compute_node_get_all()} == {8}
    # Each statement of a reader sees what is committed when it starts, as in a
    # READ COMMITTED transaction: a write committed between two of them is seen.
    with session.reader() as s:
        first = s.scalar(sa.select(models.ComputeNode.vcpus))
        with session.writer() as w:
            w.execute(sa.update(models.ComputeNode).values(vcpus=2))
        assert (first, s.scalar(sa.select(models.ComputeNode.vcpus))) == (8, 2)
    assert nodes


def test_pg_benchmark_counts_every_round_trip(pg, monkeypatch, tmp_path, pg_fresh_url):
    # What tools/bench_moves.py prints as statements: a reader's one SELECT is one; a
    # writer's BEGIN and UPDATE are two (its COMMIT counts as a commit), a rolled back
    # writer's ROLLBACK one more.
    monkeypatch.setenv('NOVALITE_STATS_DIR', str(tmp_path))
    session.set_engine(session.create_engine(pg_fresh_url))
    _nodes('src')

    def delta(fn):
        before = stats.snapshot()
        try:
            fn()
        except RuntimeError:
            pass
        after = stats.snapshot()
        return {k.split(':')[0]: after[k] - before.get(k, 0) for k in after
                if after[k] != before.get(k, 0)}

    def abandoned():
        with session.writer() as s:
            s.execute(sa.update(models.ComputeNode).values(vcpus=99))
            raise RuntimeError('abandon')

    def written():
        with session.writer() as s:
            s.execute(sa.update(models.ComputeNode).values(vcpus=8))
    assert delta(db.compute_node_get_all) == {'statement': 1}
    assert delta(written) == {'statement': 2, 'commit': 1}
    assert delta(abandoned) == {'statement': 3}


def test_pg_reader_whose_backend_died_leaves_a_clean_pool(pg, monkeypatch):
    # The reader's statement fails on a dead connection; the retry reads on a new one
    # and the pool holds no connection left in autocommit.
    engine, admin = pg
    monkeypatch.setattr(session, 'PING_IDLE_SECONDS', 3600.0)
    _nodes('src')
    _one_pooled_connection(engine)
    assert _terminate_others(admin) == 1
    assert len(db.compute_node_get_all()) == 1
    with engine.connect() as conn:
        assert conn.connection.dbapi_connection.autocommit is False


def test_pg_backends_terminated_between_calls(pg):
    # Pooled connections that died while idle are replaced at checkout (see above);
    # those used a moment ago fail their first statement and the retry runs the
    # transaction again; the tests below kill a backend inside a transaction.
    engine, admin = pg
    nodes = _nodes('src', 'dst')
    inst, mig = _move(nodes)
    assert _terminate_others(admin) >= 1   # the pool's idle connections
    _fail_move(inst, mig, {'code': 500, 'message': 'no room'})
    _assert_move_failed_once(nodes, inst, mig)
    assert _terminate_others(admin) >= 1
    db.claim_resources('consumer-x', {nodes['dst']['uuid']: SMALL})
    assert db.provider_usages(nodes['dst']['uuid'])['VCPU'] == 1


def test_pg_backend_terminated_inside_a_step(pg):
    engine, admin = pg
    nodes = _nodes('src', 'dst')
    inst, mig = _move(nodes)
    killed = _terminate_during(engine, admin, 'UPDATE instances')
    _fail_move(inst, mig, {'code': 500, 'message': 'no room'})
    assert len(killed) == 1
    _assert_move_failed_once(nodes, inst, mig)


def test_pg_backend_terminated_inside_a_claim(pg):
    engine, admin = pg
    nodes = _nodes('src')
    killed = _terminate_during(engine, admin, 'UPDATE resource_providers')
    db.claim_resources('consumer-1', {nodes['src']['uuid']: {'VCPU': 3}})
    assert len(killed) == 1
    assert db.get_allocations('consumer-1') == {nodes['src']['uuid']: {'VCPU': 3}}
    assert db.provider_usages(nodes['src']['uuid']) == {'VCPU': 3}


def test_pg_fault_of_a_database_error_holds_no_sql(pg, conf):
    engine, admin = pg
    nodes = _nodes('src', 'dst')
    inst, mig = _move(nodes)
    # A real driver error that carries its statement and parameters.
    with pytest.raises(sa.exc.ProgrammingError) as raw:
        with session.writer() as s:
            s.execute(sa.text('SELECT secret_column FROM instances WHERE uuid = :u'),
                      {'u': 'secret-param'})
    assert '[SQL:' in str(raw.value)
    # And a budget spent on a terminated backend.
    conf.set_override('max_retry_seconds', 0, group='database')
    _terminate_during(engine, admin, 'SELECT')
    with pytest.raises(exception.DatabaseUnavailable) as gone:
        db.instance_get(inst['uuid'])
    conf.set_override('max_retry_seconds', 30, group='database')
    for exc, code in ((raw.value, 500), (gone.value, 503)):
        fault = compute_utils.fault_record(exc)
        assert fault['code'] == code
        if exc is raw.value:   # through a step, as compute and conductor write them
            _fail_move(inst, mig, fault)
        else:
            db.fault_create(inst['uuid'], **fault)
        stored = db.fault_get_latest([inst['uuid']])[inst['uuid']]
        for text in (stored['message'], stored['details'] or ''):
            assert not any(word in text for word in SQL_WORDS), text
            assert 'secret' not in text
    assert stored['message'] == exception.DatabaseUnavailable.msg_fmt


# ------------------------------------------------------------------ MariaDB deadlock

@pytest.fixture
def maria(conf, mysql_fresh_url):
    engine = _use_database(conf, mysql_fresh_url)
    yield engine
    session.set_engine(None)


@pytest.mark.parametrize('vcpus,winners', [(2, 2), (3, 1)])
def test_mariadb_deadlock_between_two_claims(maria, vcpus, winners):
    """Two claims lock the same two providers in opposite orders and wait for each
    other after their first lock: InnoDB kills one with 1213, it starts over, and both
    claims end correctly without over-committing either provider."""
    nodes = _nodes('a', 'b')
    rp_a, rp_b = nodes['a']['uuid'], nodes['b']['uuid']
    barrier = threading.Barrier(2, timeout=30)
    local = threading.local()
    deadlocks = []

    def after(conn, cursor, statement, parameters, context, executemany):
        if statement.startswith('UPDATE resource_providers') and \
                not getattr(local, 'waited', False):
            local.waited = True
            barrier.wait()

    def on_error(ctx):
        orig = ctx.original_exception
        if getattr(orig, 'args', (None,))[0] == 1213:
            deadlocks.append(orig)

    event.listen(maria, 'after_cursor_execute', after)
    event.listen(maria, 'handle_error', on_error)
    results = {}

    def claim(name, requests):
        try:
            db.claim_resources(name, requests)
            results[name] = 'claimed'
        except exception.InsufficientResources:
            results[name] = 'no room'
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            results[name] = exc

    want = {'VCPU': vcpus}
    threads = [threading.Thread(target=claim, args=('c1', {rp_a: want, rp_b: want})),
               threading.Thread(target=claim, args=('c2', {rp_b: want, rp_a: want}))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads)
    assert deadlocks, 'the two claims did not deadlock'
    assert sorted(results) == ['c1', 'c2'] and all(
        r in ('claimed', 'no room') for r in results.values()), results
    assert list(results.values()).count('claimed') == winners
    for rp in (rp_a, rp_b):
        assert db.provider_usages(rp).get('VCPU', 0) == vcpus * winners <= 4
    for name, outcome in results.items():
        held = db.get_allocations(name)
        assert held == ({rp_a: want, rp_b: want} if outcome == 'claimed' else {})


# ------------------------------------------------------------- a move, on each server

def _cold_move_and_revert():
    """A cold migration to ``dst`` and its revert, step by step as the services write
    them; the server ends where it started, with its allocation only there."""
    nodes = _nodes('src', 'dst')
    src, dst = nodes['src']['uuid'], nodes['dst']['uuid']
    inst = db.instance_create({'display_name': 'x', 'project_id': 'p', 'user_id': 'u',
                               'host': 'src', 'node': 'src', 'vm_state': states.ACTIVE,
                               'flavor': {'vcpus': 1, 'memory_mb': 1024}},
                              request_spec={'num_instances': 1})
    u = inst['uuid']
    db.claim_resources(u, {src: SMALL})
    spec = {'num_instances': 1, 'flavor': {'vcpus': 1}}
    for _ in range(2):   # the same spec again: its UPDATE changes nothing, still matches
        with session.writer() as s:
            instances.save_request_spec(s, u, spec)
    assert db.request_spec_get(u) == spec
    steps.apply_step('resize_requested', u, request_spec=spec,
                     action={'action': 'migrate', 'request_id': 'req-m', 'user_id': 'u',
                             'project_id': 'p'})
    mig = steps.apply_step('cold_move_started', u, new_migration={
        'instance_uuid': u, 'migration_type': states.COLD_MIGRATION,
        'source_compute': 'src', 'source_node': 'src'})['migration']
    m = mig['uuid']
    assert db.get_allocations(m) == {src: SMALL} and db.get_allocations(u) == {}
    db.claim_resources(u, {dst: SMALL})
    steps.apply_step('select_destination', u, m, migration_values={
        'dest_compute': 'dst', 'dest_node': 'dst'})
    steps.apply_step('prep_resize', u, m, caller='dst')
    steps.apply_step('resize_instance', u, m, caller='src')
    steps.apply_step('disks_moved', u, m, caller='src',
                     instance_values={'host': 'dst', 'node': 'dst'})
    steps.apply_step('finish_resize', u, m, caller='dst', vm_state=states.RESIZED)
    steps.apply_step('revert_requested', u, m)
    steps.apply_step('revert_resize', u, m, caller='dst')
    assert db.get_allocations(u) == {}
    done = steps.apply_step('finish_revert_resize', u, m, caller='src',
                            vm_state=states.ACTIVE,
                            instance_values={'host': 'src', 'node': 'src'})
    again = steps.apply_step('finish_revert_resize', u, m, caller='src',
                             vm_state=states.ACTIVE,
                             instance_values={'host': 'src', 'node': 'src'})
    # The step sent again is answered with the record as it stands.
    for key, fields in (('instance', ('host', 'vm_state', 'task_state')),
                        ('migration', ('status', 'dest_compute'))):
        assert [again[key][f] for f in fields] == [done[key][f] for f in fields]
    db.move_allocations(m, u)   # the migration holds nothing: the instance keeps its own
    assert db.get_allocations(u) == {src: SMALL} and db.get_allocations(m) == {}
    inst = db.instance_get(u)
    assert (inst['host'], inst['vm_state'], inst['task_state']) == ('src', states.ACTIVE,
                                                                     None)
    assert db.migration_get(m)['status'] == MS.REVERTED
    assert db.provider_usages(dst).get('VCPU', 0) == 0


def test_pg_cold_move_and_revert(pg):
    _cold_move_and_revert()


def test_mariadb_cold_move_and_revert(maria):
    _cold_move_and_revert()
