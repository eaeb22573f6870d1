"""The database side of the state machine on a real SQLite file: compare-and-swap
updates, atomic claims, and one move step in one transaction (all of it or nothing)."""

import pytest
from sqlalchemy import event

from novalite import exception, stats
from novalite.compute import states
from novalite.db import api as db
from novalite.db import session, steps

MS = states.MS
RESOURCES = {'vcpus': 4, 'memory_mb': 4096, 'local_gb': 40}
SMALL = {'VCPU': 1, 'MEMORY_MB': 1024, 'DISK_GB': 10}


@pytest.fixture
def nodes(sqlite_db):
    return sqlite_db(RESOURCES, 'src', 'dst', 'other')


def _instance(host='src', task=None, vm=states.ACTIVE):
    inst = db.instance_create({'display_name': 'x', 'project_id': 'p', 'user_id': 'u',
                               'host': host, 'node': host, 'vm_state': vm,
                               'task_state': task, 'flavor': {'vcpus': 1,
                                                              'memory_mb': 1024}})
    db.action_start(inst['uuid'], 'migrate', 'req-1')
    return inst


def _migration(inst, status=MS.PRE_MIGRATING, dest='dst'):
    return db.migration_create({'instance_uuid': inst['uuid'], 'status': status,
                                'migration_type': states.COLD_MIGRATION,
                                'source_compute': 'src', 'source_node': 'src',
                                'dest_compute': dest, 'dest_node': dest})


def _events(uuid):
    action = db.action_get_by_request_id(uuid, 'req-1')
    return [(e['event'], e['result']) for e in db.action_events_get(action['id'])]


def test_instance_update_is_a_compare_and_swap(nodes):
    inst = _instance(task=states.RESIZE_PREP)
    with pytest.raises(exception.UnexpectedTaskStateError):
        db.instance_update(inst['uuid'], {'task_state': None}, expected_task_state=None)
    assert db.instance_get(inst['uuid'])['task_state'] == states.RESIZE_PREP
    out = db.instance_update(inst['uuid'], {'task_state': None},
                             expected_task_state=[states.RESIZE_PREP],
                             expected_vm_state=states.ACTIVE)
    assert out['task_state'] is None


def test_claims_never_over_commit_and_replace_atomically(nodes):
    src, dst = nodes['src']['uuid'], nodes['dst']['uuid']
    for n in range(4):
        db.claim_resources(f'c{n}', {src: SMALL}, project_id='p', user_id='u')
    with pytest.raises(exception.InsufficientResources):
        db.claim_resources('c4', {src: SMALL}, project_id='p', user_id='u')
    assert db.provider_usages(src)['VCPU'] == 4
    # replace=True drops the consumer's claim elsewhere in the same transaction.
    db.claim_resources('c0', {dst: SMALL}, project_id='p', user_id='u', replace=True)
    assert db.get_allocations('c0') == {dst: SMALL}
    assert db.provider_usages(src)['VCPU'] == 3


def test_a_step_writes_everything_together(nodes):
    inst = _instance(task=states.RESIZE_MIGRATING)
    mig = _migration(inst, MS.MIGRATING)
    db.claim_resources(mig['uuid'], {nodes['src']['uuid']: SMALL})
    db.claim_resources(inst['uuid'], {nodes['dst']['uuid']: SMALL})
    out = steps.apply_step(
        'disks_moved', inst['uuid'], mig['uuid'], caller='src',
        instance_values={'host': 'dst', 'node': 'dst'},
        events=[{'request_id': 'req-1', 'name': 'compute_resize_instance',
                 'result': 'Success'}], host='src')
    assert (out['instance']['task_state'], out['instance']['host']) == \
        (states.RESIZE_MIGRATED, 'dst')
    assert out['migration']['status'] == MS.POST_MIGRATING
    assert _events(inst['uuid']) == [('compute_resize_instance', 'Success')]


def test_a_step_that_loses_its_race_writes_nothing(nodes):
    # The migration and the allocation change pass; the instance is not reverting, so its
    # compare-and-swap fails after them.
    inst = _instance(task=states.RESIZE_PREP)
    mig = _migration(inst, MS.REVERTED)
    db.claim_resources(mig['uuid'], {nodes['src']['uuid']: SMALL})
    db.claim_resources(inst['uuid'], {nodes['dst']['uuid']: SMALL})
    with pytest.raises(exception.UnexpectedTaskStateError):
        steps.apply_step('finish_revert_resize', inst['uuid'], mig['uuid'],
                         vm_state=states.ACTIVE,
                         fault={'code': 500, 'message': 'boom'},
                         events=[{'request_id': 'req-1', 'name': 'x', 'result': 'Error'}])
    # Rolled back as a whole: the migration status, both allocations, no fault, no event.
    assert db.migration_get(mig['uuid'])['status'] == MS.REVERTED
    assert db.get_allocations(mig['uuid']) == {nodes['src']['uuid']: SMALL}
    assert db.get_allocations(inst['uuid']) == {nodes['dst']['uuid']: SMALL}
    assert db.fault_get_latest([inst['uuid']]) == {}
    assert _events(inst['uuid']) == []


def test_move_failed_gives_the_source_allocation_back(nodes):
    inst = _instance(task=states.RESIZE_PREP)
    mig = _migration(inst)
    db.claim_resources(mig['uuid'], {nodes['src']['uuid']: SMALL})
    db.claim_resources(inst['uuid'], {nodes['dst']['uuid']: SMALL})
    steps.apply_step('move_failed', inst['uuid'], mig['uuid'], caller='dst',
                     vm_state=states.ACTIVE, fault={'code': 500, 'message': 'no room'},
                     host='dst')
    assert db.get_allocations(inst['uuid']) == {nodes['src']['uuid']: SMALL}
    assert db.get_allocations(mig['uuid']) == {}
    assert db.migration_get(mig['uuid'])['status'] == MS.ERROR
    inst = db.instance_get(inst['uuid'])
    assert (inst['task_state'], inst['vm_state']) == (None, states.ACTIVE)
    assert db.fault_get_latest([inst['uuid']])[inst['uuid']]['message'] == 'no room'


def test_steps_refuse_hosts_the_move_does_not_name(nodes):
    inst = _instance(task=states.RESIZE_PREP)
    mig = _migration(inst)
    # The source may not take the destination's step, nor may a stranger take any.
    with pytest.raises(exception.HostNotAuthorized):
        steps.apply_step('prep_resize', inst['uuid'], mig['uuid'], caller='src')
    with pytest.raises(exception.HostNotAuthorized):
        steps.apply_step('move_failed', inst['uuid'], mig['uuid'], caller='other',
                         vm_state=states.ACTIVE)
    with pytest.raises(exception.HostNotAuthorized):
        steps.check_host('other', inst['uuid'])
    steps.check_host('dst', inst['uuid'])   # named by the unfinished move
    steps.apply_step('prep_resize', inst['uuid'], mig['uuid'], caller='dst')


def test_a_step_may_only_choose_what_the_table_allows(nodes):
    inst = _instance(task=states.RESIZE_MIGRATED)
    mig = _migration(inst, MS.POST_MIGRATING)
    with pytest.raises(ValueError):
        steps.apply_step('finish_resize', inst['uuid'], mig['uuid'], vm_state=states.ACTIVE)
    with pytest.raises(ValueError):
        steps.apply_step('finish_resize', inst['uuid'], mig['uuid'],
                         vm_state=states.RESIZED, status=MS.CONFIRMED)


@pytest.mark.parametrize('returning', [True, False], ids=['update-returning', 'mysql'])
def test_starting_a_move_creates_the_migration_in_the_same_write(nodes, monkeypatch,
                                                                 returning):
    # Where UPDATE returns rows the instance is not read first; the same either way.
    monkeypatch.setattr(session.get_engine().dialect, 'update_returning', returning)
    inst = _instance(task=None)
    db.claim_resources(inst['uuid'], {nodes['src']['uuid']: SMALL})
    out = steps.apply_step(
        'live_migration_requested', inst['uuid'],
        new_migration={'instance_uuid': inst['uuid'],
                       'migration_type': states.LIVE_MIGRATION, 'source_compute': 'src'},
        action={'action': 'live-migration', 'request_id': 'req-2'})
    mig = out['migration']
    assert mig['status'] == MS.ACCEPTED and out['instance']['task_state'] == states.MIGRATING
    assert db.get_allocations(mig['uuid']) == {nodes['src']['uuid']: SMALL}
    assert db.get_allocations(inst['uuid']) == {}
    assert db.action_get_by_request_id(inst['uuid'], 'req-2')['action'] == 'live-migration'
    assert out['instance'] == db.instance_get(inst['uuid'])
    assert mig == db.migration_get(mig['uuid'])
    # A second request loses the compare-and-swap and creates nothing.
    with pytest.raises(exception.UnexpectedTaskStateError):
        steps.apply_step('live_migration_requested', inst['uuid'],
                         new_migration={'instance_uuid': inst['uuid'],
                                        'migration_type': states.LIVE_MIGRATION})
    assert len(db.migration_get_all(instance_uuid=inst['uuid'])) == 1


def test_destroy_ends_unfinished_moves_and_frees_everything(nodes):
    inst = _instance(task=states.RESIZE_PREP)
    mig = _migration(inst)
    db.claim_resources(mig['uuid'], {nodes['src']['uuid']: SMALL})
    db.claim_resources(inst['uuid'], {nodes['dst']['uuid']: SMALL})
    steps.destroy_instance(inst['uuid'], None, 'src')
    assert db.get_allocations(mig['uuid']) == {} == db.get_allocations(inst['uuid'])
    assert db.migration_get(mig['uuid'])['status'] == MS.ERROR
    with pytest.raises(exception.InstanceNotFound):
        db.instance_get(inst['uuid'])


def test_services_by_host_name_or_names(sqlite_db):
    for host in ('a', 'b', 'c'):
        db.service_create(host, 'novalite-compute', 'compute')
    db.service_create('a', 'novalite-conductor', 'conductor')
    names = lambda rows: sorted(r['host'] for r in rows)  # noqa: E731
    assert names(db.service_get_all(host='b')) == ['b']
    assert names(db.service_get_all(host={'a', 'c', 'gone'})) == ['a', 'a', 'c']
    assert names(db.service_get_all(host={'a', 'c'}, binary='novalite-compute')) == ['a', 'c']
    assert db.service_get_all(host=[]) == []
    assert names(db.service_get_all(binary='novalite-compute')) == ['a', 'b', 'c']


def test_a_node_is_read_with_whether_its_compute_service_is_up(nodes):
    # One read gives what compute_node_get_by_host_and_node and compute_is_up give.
    db.service_create('src', 'novalite-conductor', 'conductor')   # not a compute
    for host in ('src', 'dst'):
        db.service_create(host, 'novalite-compute', 'compute')
    db.service_update(db.service_get_all(host='dst', binary='novalite-compute')[0]['id'],
                      forced_down=True)
    for host, node in (('src', 'src'), ('src', None), ('dst', 'dst'), ('other', None)):
        got, up = db.compute_node_and_up(host, node, 60)
        assert got == db.compute_node_get_by_host_and_node(host, node)
        assert up == db.compute_is_up(host, 60) == (host == 'src')
    with pytest.raises(exception.ComputeHostNotFound):
        db.compute_node_and_up('src', 'no-such-node', 60)
    with pytest.raises(exception.ComputeHostNotFound):
        db.compute_node_and_up('nowhere', None, 60)


def test_a_compute_step_places_a_moving_instance_only_on_a_side_of_its_move(nodes):
    inst = _instance(task=states.RESIZE_MIGRATING)
    mig = _migration(inst, MS.MIGRATING)
    for values in ({'host': 'other', 'node': 'other'}, {'node': 'dst'}, {'host': None}):
        with pytest.raises(exception.Invalid):
            steps.apply_step('disks_moved', inst['uuid'], mig['uuid'], caller='src',
                             instance_values=values)
    assert db.instance_get(inst['uuid'])['host'] == 'src'
    assert db.migration_get(mig['uuid'])['status'] == MS.MIGRATING
    out = steps.apply_step('disks_moved', inst['uuid'], mig['uuid'], caller='src',
                           instance_values={'host': 'dst', 'node': 'dst'})
    assert out['instance']['host'] == 'dst'


def test_a_step_records_several_events_of_one_action(nodes):
    inst = _instance(task=states.RESIZE_MIGRATING)
    mig = _migration(inst, MS.MIGRATING)
    steps.events_only(inst['uuid'], [{'request_id': 'req-1', 'name': 'a', 'started': True}],
                      'src')
    steps.apply_step('disks_moved', inst['uuid'], mig['uuid'], caller='src',
                     instance_values={'host': 'dst', 'node': 'dst'},
                     events=[{'request_id': 'req-1', 'name': 'a', 'result': 'Success'},
                             {'request_id': 'req-1', 'name': 'b', 'result': 'Error'},
                             {'request_id': 'req-gone', 'name': 'c', 'result': 'Success'}])
    assert sorted(_events(inst['uuid'])) == [('a', 'Success'), ('b', 'Error')]
    assert db.action_get_by_request_id(inst['uuid'], 'req-1')['message'] == 'Error'


@pytest.mark.parametrize('returning', [True, False], ids=['update-returning', 'mysql'])
def test_events_touch_each_action_once(nodes, monkeypatch, returning):
    # Where UPDATE returns rows the action is found and touched by one statement; on
    # MariaDB (no UPDATE ... RETURNING) it is read, then touched: same outcome.
    inst = _instance(task=states.RESIZE_MIGRATING)
    mig = _migration(inst, MS.MIGRATING)
    before = db.action_get_by_request_id(inst['uuid'], 'req-1')
    engine = session.get_engine()
    monkeypatch.setattr(engine.dialect, 'update_returning', returning)
    seen = []
    event.listen(engine, 'before_cursor_execute',
                 lambda conn, cur, statement, *a: seen.append(' '.join(statement.split())))
    steps.apply_step('disks_moved', inst['uuid'], mig['uuid'], caller='src',
                     instance_values={'host': 'dst', 'node': 'dst'},
                     events=[{'request_id': 'req-1', 'name': 'a', 'result': 'Success'},
                             {'request_id': 'req-1', 'name': 'b', 'result': 'Error'},
                             {'request_id': 'req-gone', 'name': 'c', 'result': 'Success'}])
    on_actions = [st.split(' WHERE')[0] for st in seen
                  if 'instance_actions ' in st + ' ' and 'instance_actions_events' not in st]
    if returning:
        assert len(on_actions) == 2 and all(st.startswith('UPDATE') for st in on_actions)
    else:  # a read for each request, a touch only for the one that has an action
        assert [st.split()[0] for st in on_actions] == ['SELECT', 'UPDATE', 'SELECT']
    assert sorted(_events(inst['uuid'])) == [('a', 'Success'), ('b', 'Error')]
    after = db.action_get_by_request_id(inst['uuid'], 'req-1')
    assert after['message'] == 'Error' and after['updated_at'] > before['updated_at']


@pytest.mark.parametrize('returning', [True, False], ids=['update-returning', 'mysql'])
def test_events_closed_alike_are_closed_together_and_the_rest_inserted_together(
        nodes, monkeypatch, returning):
    inst = _instance(task=states.RESIZE_MIGRATING)
    mig = _migration(inst, MS.MIGRATING)
    opened = [{'request_id': 'req-1', 'name': n, 'started': True} for n in ('a', 'b')]
    engine = session.get_engine()
    monkeypatch.setattr(engine.dialect, 'update_returning', returning)
    seen = []
    event.listen(engine, 'before_cursor_execute',
                 lambda conn, cur, statement, *a: seen.append(' '.join(statement.split())))
    steps.events_only(inst['uuid'], opened, 'src')
    inserts = [st for st in seen if st.startswith('INSERT INTO instance_actions_events')]
    assert len(inserts) == 1, seen   # both open events in one statement
    del seen[:]
    # 'a' and 'b' are open and close alike; 'c' was never opened: recorded whole.
    steps.apply_step('disks_moved', inst['uuid'], mig['uuid'], caller='src',
                     instance_values={'host': 'dst', 'node': 'dst'},
                     events=[{'request_id': 'req-1', 'name': n, 'result': 'Success'}
                             for n in ('a', 'b', 'c')], host='src')
    on_events = [st.split()[0] for st in seen if 'instance_actions_events' in st]
    assert on_events == (['UPDATE', 'INSERT'] if returning else
                         ['UPDATE', 'UPDATE', 'UPDATE', 'INSERT']), seen
    action = db.action_get_by_request_id(inst['uuid'], 'req-1')
    rows = db.action_events_get(action['id'])
    assert sorted((e['event'], e['result']) for e in rows) == [
        ('a', 'Success'), ('b', 'Success'), ('c', 'Success')]
    assert all(e['finish_time'] is not None and e['host'] == 'src' for e in rows)


@pytest.mark.parametrize('returning', [True, False], ids=['insert-returning', 'read-back'])
def test_a_boot_is_recorded_the_same_with_or_without_insert_returning(
        nodes, monkeypatch, returning):
    monkeypatch.setattr(session.get_engine().dialect, 'insert_returning', returning)
    inst = db.instance_create(
        {'display_name': 'x', 'project_id': 'p', 'user_id': 'u', 'vm_state': states.BUILDING,
         'flavor': {'vcpus': 1}, 'metadata': {'k': 'v'}, 'tags': ['t']},
        request_spec={'num_instances': 1},
        action={'action': 'create', 'request_id': 'req-b', 'user_id': 'u',
                'project_id': 'p'})
    assert inst == db.instance_get(inst['uuid'])
    assert inst['metadata'] == {'k': 'v'} and inst['power_state'] == 0 and not inst['deleted']
    assert db.request_spec_get(inst['uuid']) == {'num_instances': 1}
    lock = db.action_start(inst['uuid'], 'lock', 'req-l', 'u', 'p')
    assert lock == db.action_get_by_request_id(inst['uuid'], 'req-l')
    assert db.action_get_by_request_id(inst['uuid'], 'req-b')['action'] == 'create'
    with pytest.raises(TypeError):
        db.instance_create({'display_name': 'y', 'no_such_column': 1})


@pytest.mark.parametrize('returning', [True, False], ids=['update-returning', 'mysql'])
def test_an_instance_step_is_one_write_without_a_read_first(nodes, monkeypatch, returning):
    # A step of the instance alone is its compare-and-swap, the caller's host in the same
    # WHERE, returning the row: no SELECT first where UPDATE returns rows; on MariaDB the
    # instance is read first. Same record and same answer either way.
    monkeypatch.setattr(session.get_engine().dialect, 'update_returning', returning)
    inst = _instance(host='src', task=states.SPAWNING, vm=states.BUILDING)
    engine = session.get_engine()
    seen = []
    listener = (lambda conn, cur, statement, *a: seen.append(' '.join(statement.split())))
    event.listen(engine, 'before_cursor_execute', listener)
    try:
        out = steps.apply_step('spawned', inst['uuid'], caller='src', vm_state=states.ACTIVE,
                               events=[{'request_id': 'req-1', 'name': 'build',
                                        'started': True, 'result': 'Success'}], host='src')
    finally:
        event.remove(engine, 'before_cursor_execute', listener)
    assert out['migration'] is None
    assert out['instance'] == db.instance_get(inst['uuid'])
    assert out['instance']['task_state'] is None
    assert out['instance']['vm_state'] == states.ACTIVE
    on_instance = [st.split()[0] + (' RETURNING' if ' RETURNING ' in st else '')
                   for st in seen if ' FROM instances ' in st or st.startswith(
                       'UPDATE instances ')]
    assert on_instance == (['UPDATE RETURNING'] if returning else ['SELECT', 'UPDATE'])
    assert _events(inst['uuid']) == [('build', 'Success')]


def test_an_instance_step_that_does_not_match_says_why(nodes):
    # The one-statement write matches nothing: the step reads the instance and answers
    # as before, nothing written.
    inst = _instance(host='src', task=states.SPAWNING, vm=states.BUILDING)
    with pytest.raises(exception.HostNotAuthorized):
        steps.apply_step('spawned', inst['uuid'], caller='other', vm_state=states.ACTIVE)
    with pytest.raises(exception.UnexpectedTaskStateError):
        steps.apply_step('power_action_done', inst['uuid'], caller='src',
                         vm_state=states.ACTIVE)
    with pytest.raises(exception.InstanceNotFound):
        steps.apply_step('spawned', 'no-such-instance', caller='src', vm_state=states.ACTIVE)
    assert db.instance_get(inst['uuid'])['task_state'] == states.SPAWNING
    # A host a move names may act on the instance though it is not on that host.
    moving = _instance(host='src', task=states.SPAWNING, vm=states.BUILDING)
    _migration(moving, MS.MIGRATING, dest='dst')
    out = steps.apply_step('build_rescheduled', moving['uuid'], caller='dst')
    assert out['instance']['task_state'] == states.SCHEDULING
    # A finished step sent again gets the record unchanged.
    done = steps.apply_step('spawned', inst['uuid'], caller='src',
                            vm_state=states.ACTIVE)['instance']
    again = steps.apply_step('spawned', inst['uuid'], caller='src',
                             vm_state=states.ACTIVE)['instance']
    assert again == done and done['vm_state'] == states.ACTIVE


@pytest.mark.parametrize('returning', [True, False], ids=['update-returning', 'mysql'])
def test_a_move_step_is_two_writes_without_a_read_first(nodes, monkeypatch, returning):
    # A compute's step of a move: the migration's compare-and-swap (its status, the
    # caller named as the step's owner) and the instance's return the rows, no SELECT
    # first where UPDATE returns rows; on MariaDB both are read first. Same record and
    # same answer either way.
    monkeypatch.setattr(session.get_engine().dialect, 'update_returning', returning)
    inst = _instance(task=states.RESIZE_MIGRATING)
    mig = _migration(inst, MS.MIGRATING)
    db.claim_resources(mig['uuid'], {nodes['src']['uuid']: SMALL})
    engine = session.get_engine()
    seen = []
    listener = (lambda conn, cur, statement, *a: seen.append(' '.join(statement.split())))
    event.listen(engine, 'before_cursor_execute', listener)
    try:
        out = steps.apply_step(
            'disks_moved', inst['uuid'], mig['uuid'], caller='src',
            instance_values={'host': 'dst', 'node': 'dst'},
            migration_values={'disk_total': 10, 'disk_processed': 10},
            events=[{'request_id': 'req-1', 'name': 'compute_resize_instance',
                     'result': 'Success'}], host='src')
    finally:
        event.remove(engine, 'before_cursor_execute', listener)
    assert out['instance'] == db.instance_get(inst['uuid'])
    assert out['migration'] == db.migration_get(mig['uuid'])
    assert (out['instance']['task_state'], out['instance']['host']) == \
        (states.RESIZE_MIGRATED, 'dst')
    assert (out['migration']['status'], out['migration']['disk_total']) == \
        (MS.POST_MIGRATING, 10)
    state = [st.split()[0] + (' RETURNING' if ' RETURNING ' in st else '') for st in seen
             if any(f' FROM {t} ' in st or st.startswith(f'UPDATE {t} ')
                    for t in ('instances', 'migrations'))]
    assert state == (['UPDATE RETURNING', 'UPDATE RETURNING'] if returning
                     else ['SELECT', 'SELECT', 'UPDATE', 'UPDATE'])
    assert db.get_allocations(mig['uuid']) == {nodes['src']['uuid']: SMALL}
    assert _events(inst['uuid']) == [('compute_resize_instance', 'Success')]


def test_a_move_step_that_does_not_match_says_why(nodes):
    # Either compare-and-swap of the two-write path matches nothing: nothing stays
    # written, and the step answers as the path that reads first does.
    inst = _instance(task=states.RESIZE_MIGRATING)
    mig = _migration(inst, MS.MIGRATING)
    before = (db.instance_get(inst['uuid']), db.migration_get(mig['uuid']))
    with pytest.raises(exception.HostNotAuthorized):   # the destination, not the source
        steps.apply_step('disks_moved', inst['uuid'], mig['uuid'], caller='dst')
    with pytest.raises(exception.HostNotAuthorized):   # another instance's migration
        steps.apply_step('disks_moved', _instance()['uuid'], mig['uuid'], caller='src')
    with pytest.raises(exception.Invalid):   # a host the move does not name
        steps.apply_step('disks_moved', inst['uuid'], mig['uuid'], caller='src',
                         instance_values={'host': 'other', 'node': 'other'})
    with pytest.raises(exception.UnexpectedMigrationStatus):
        steps.apply_step('prep_resize', inst['uuid'], mig['uuid'], caller='dst')
    # The migration matches, the instance does not: the migration's write is undone.
    db.instance_update(inst['uuid'], {'task_state': states.RESIZE_PREP})
    with pytest.raises(exception.UnexpectedTaskStateError):
        steps.apply_step('disks_moved', inst['uuid'], mig['uuid'], caller='src')
    assert db.migration_get(mig['uuid']) == before[1]
    db.instance_update(inst['uuid'], {'task_state': states.RESIZE_MIGRATING})
    # A finished step sent again gets the record unchanged.
    done = steps.apply_step('disks_moved', inst['uuid'], mig['uuid'], caller='src',
                            instance_values={'host': 'dst', 'node': 'dst'})
    again = steps.apply_step('disks_moved', inst['uuid'], mig['uuid'], caller='src',
                             instance_values={'host': 'dst', 'node': 'dst'})
    assert again == done and done['migration']['status'] == MS.POST_MIGRATING
    assert before[0]['task_state'] == states.RESIZE_MIGRATING


def _evacuated(nodes, busy_task=None):
    """A server evacuated from ``src`` (dead) to ``dst``: rebuilt there, the source's
    claim still held by the migration."""
    inst = _instance()
    db.claim_resources(inst['uuid'], {nodes['src']['uuid']: SMALL})
    mig = steps.apply_step('evacuation_requested', inst['uuid'], new_migration={
        'instance_uuid': inst['uuid'], 'migration_type': states.EVACUATION,
        'source_compute': 'src', 'source_node': 'src'})['migration']
    db.claim_resources(inst['uuid'], {nodes['dst']['uuid']: SMALL}, replace=True)
    steps.apply_step('evacuation_destination_chosen', inst['uuid'], mig['uuid'],
                     migration_values={'dest_compute': 'dst', 'dest_node': 'dst'})
    steps.apply_step('evacuation_rebuilding', inst['uuid'], mig['uuid'], caller='dst',
                     instance_values={'host': 'dst', 'node': 'dst'})
    steps.apply_step('evacuation_done', inst['uuid'], mig['uuid'], caller='dst',
                     vm_state=states.ACTIVE)
    if busy_task:
        db.instance_update(inst['uuid'], {'task_state': busy_task})
    return db.instance_get(inst['uuid']), db.migration_get(mig['uuid'])


def test_the_returning_source_finishes_an_evacuation_whatever_the_server_does(nodes):
    inst, mig = _evacuated(nodes, busy_task=states.RESIZE_PREP)
    assert mig['status'] == MS.DONE
    assert db.get_allocations(mig['uuid']) == {nodes['src']['uuid']: SMALL}
    # The source may read the server (to see where it went) and owes the clean-up.
    steps.check_host('src', inst['uuid'])
    assert [m['uuid'] for m in steps.unfinished_migrations('src')] == [mig['uuid']]
    with pytest.raises(exception.HostNotAuthorized):
        steps.apply_step('evacuation_cleaned', inst['uuid'], mig['uuid'], caller='other')
    out = steps.apply_step('evacuation_cleaned', inst['uuid'], mig['uuid'], caller='src')
    # Only the migration moved: the server's own task is untouched.
    assert out['migration']['status'] == MS.COMPLETED
    after = db.instance_get(inst['uuid'])
    assert (after['task_state'], after['host']) == (states.RESIZE_PREP, 'dst')
    assert db.get_allocations(mig['uuid']) == {}
    assert db.get_allocations(inst['uuid']) == {nodes['dst']['uuid']: SMALL}
    # Done: a repeat answers from the record, and the source may no longer see it.
    steps.apply_step('evacuation_cleaned', inst['uuid'], mig['uuid'], caller='src')
    assert steps.unfinished_migrations('src') == []
    with pytest.raises(exception.HostNotAuthorized):
        steps.check_host('src', inst['uuid'])


def test_deleting_an_evacuated_server_releases_the_dead_sources_claim(nodes):
    inst, mig = _evacuated(nodes)
    steps.destroy_instance(inst['uuid'], None, 'dst')
    assert db.migration_get(mig['uuid'])['status'] == MS.COMPLETED
    assert db.get_allocations(mig['uuid']) == {}
    assert db.get_allocations(inst['uuid']) == {}


# ------------------------------------------------------------------ a boot's record

BOOT = {'display_name': 'b', 'project_id': 'p', 'user_id': 'u', 'vm_state': states.BUILDING,
        'task_state': states.SCHEDULING, 'flavor': {'vcpus': 1, 'memory_mb': 1024}}


def _commits():
    return sum(n for key, n in stats.snapshot().items() if key.startswith('commit:'))


def test_boot_record_instance_spec_and_action_in_one_commit(nodes):
    before = _commits()
    inst = db.instance_create(dict(BOOT), request_spec={'num_instances': 1},
                              action={'action': 'create', 'request_id': 'req-b',
                                      'user_id': 'u', 'project_id': 'p'})
    assert _commits() - before == 1
    assert db.request_spec_get(inst['uuid']) == {'num_instances': 1}
    action = db.action_get_by_request_id(inst['uuid'], 'req-b')
    assert (action['action'], action['user_id'], action['project_id']) == ('create', 'u', 'p')


def test_boot_record_is_whole_or_nothing(nodes):
    uuid = 'a0000000-0000-4000-8000-000000000001'
    with pytest.raises(TypeError):
        db.instance_create(dict(BOOT, uuid=uuid), request_spec={'num_instances': 1},
                           action={'action': 'create', 'request_id': 'req-b',
                                   'no_such_field': 1})
    with pytest.raises(exception.InstanceNotFound):
        db.instance_get(uuid)
    assert db.request_spec_get(uuid) is None


def test_allocations_are_handed_over_only_by_a_consumer_that_holds_some(nodes):
    # The target's allocations are replaced by the source's; a source that holds
    # nothing (the hand-over happened already) changes nothing, the target keeps its own.
    src, dst = nodes['src']['uuid'], nodes['dst']['uuid']
    db.claim_resources('target', {dst: SMALL})
    db.move_allocations('nobody', 'target')
    assert db.get_allocations('target') == {dst: SMALL}
    db.claim_resources('source', {src: dict(SMALL, VCPU=2)})
    db.move_allocations('source', 'target')
    assert db.get_allocations('target') == {src: dict(SMALL, VCPU=2)}
    assert db.get_allocations('source') == {}
    assert db.provider_usages(dst).get('VCPU', 0) == 0
    db.move_allocations('source', 'target')
    assert db.get_allocations('target') == {src: dict(SMALL, VCPU=2)}
