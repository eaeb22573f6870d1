"""The host-drain loop against a real SQLite database, with the API side recorded: the
move it picks, the lease between two conductors, a lost write after a move started,
retries up to the limit with the fault as the reason, and cancel."""

import pytest

from novalite import exception
from novalite.compute import states
from novalite.conductor import drain
from novalite.db import api as db

DS, SS = states.DrainStatus, states.DrainServerState
RESOURCES = {'vcpus': 8, 'memory_mb': 8192, 'local_gb': 80}
FLAVOR = {'id': 1, 'flavorid': '1', 'vcpus': 1, 'memory_mb': 512, 'root_gb': 1,
          'ephemeral_gb': 0, 'swap': 0}


class Api:
    """The API side as the drain sees it: a move start is the instance's task set."""

    def __init__(self, refuse=None):
        self.calls = []
        self.refuse = refuse

    def _start(self, kind, inst, task):
        self.calls.append((kind, inst['uuid']))
        if self.refuse:
            raise self.refuse
        db.instance_update(inst['uuid'], {'task_state': task}, expected_task_state=[None])

    def live_migrate(self, context, inst, host, block, over_commit, force, async_=True,
                     drain_id=None):
        assert drain_id is not None and context.is_admin
        self._start('live', inst, states.MIGRATING)
        return 'mig-' + inst['uuid']

    def resize(self, context, inst, flavor_id=None):
        assert flavor_id is None
        self._start('cold', inst, states.RESIZE_PREP)

    def confirm_resize(self, context, inst):
        self.calls.append(('confirm', inst['uuid']))
        db.instance_update(inst['uuid'], {'vm_state': states.ACTIVE})


class Peers:
    def __init__(self):
        self.lost = set()

    def conductor_lost(self, host):
        return host in self.lost


@pytest.fixture
def hosts(sqlite_db, conf):
    nodes = sqlite_db(RESOURCES, 'src', 'dst')
    for host in nodes:
        db.service_create(host, 'novalite-compute', 'compute')
    return nodes


def _instance(vm=states.ACTIVE, host='src'):
    return db.instance_create({'display_name': 'x', 'project_id': 'p', 'user_id': 'u',
                               'host': host, 'node': host, 'vm_state': vm,
                               'task_state': None, 'flavor': FLAVOR,
                               'power_state': 1})['uuid']


def _drain(mode='auto', max_parallel=2):
    uuids = [i['uuid'] for i in db.instance_get_all_by_host('src')]
    return db.drain_create('src', mode, max_parallel, uuids, user_id='admin',
                           project_id='admin')


def _rows(d):
    return {r['instance_uuid']: r for r in db.drain_get(d['id'])['servers']}


def _arrive(uuid, host='dst', vm=states.ACTIVE):
    """The move ended on ``host``."""
    db.instance_update(uuid, {'host': host, 'node': host, 'task_state': None,
                              'vm_state': vm})


@pytest.mark.parametrize('mode, vm, last, attempts, expect', [
    ('auto', states.ACTIVE, None, 0, 'live'),
    ('auto', states.PAUSED, None, 0, 'live'),
    ('auto', states.STOPPED, None, 0, 'cold'),
    ('auto', states.ACTIVE, 'live', 1, 'cold'),     # live failed: cold where it must
    ('auto', states.PAUSED, 'live', 1, 'live'),     # a paused server cannot go cold
    ('auto', states.ACTIVE, 'cold', 1, 'live'),
    ('live', states.ACTIVE, 'live', 2, 'live'),
    ('live', states.STOPPED, None, 0, None),
    ('cold', states.ACTIVE, None, 0, 'cold'),
    ('cold', states.PAUSED, None, 0, None),
    ('auto', states.ERROR, None, 0, None),
    ('auto', states.SUSPENDED, None, 0, None),
])
def test_choose_move(mode, vm, last, attempts, expect):
    move, why = drain.choose_move(mode, vm, last, attempts)
    assert move == expect
    assert (why is None) == (expect is not None)
    if why:
        assert vm in why


def test_disables_the_host_and_refuses_a_second_drain(hosts):
    _instance()
    d = _drain()
    svc = db.service_get_all(host='src', binary='novalite-compute')[0]
    assert svc['disabled'] and d['uuid'] in svc['disabled_reason']
    with pytest.raises(exception.HostDrainExists):
        _drain()
    with pytest.raises(exception.ComputeHostNotFound):
        db.drain_create('nowhere', 'auto', 1, [])


def test_moves_within_max_parallel_then_completes(hosts):
    uuids = [_instance() for _ in range(3)] + [_instance(vm=states.STOPPED)]
    d = _drain(max_parallel=2)
    api = Api()
    drainer = drain.Drainer('c1', api, Peers())
    assert drainer.run() == 1
    assert len(api.calls) == 2
    rows = _rows(d)
    assert sorted(r['state'] for r in rows.values()) == [SS.MOVING] * 2 + [SS.PENDING] * 2
    drainer.run()
    assert len(api.calls) == 2  # nothing ended: no slot
    for _, uuid in api.calls:
        _arrive(uuid)
    drainer.run()
    assert len(api.calls) == 4
    cold = [u for k, u in api.calls if k == 'cold']
    assert cold == [uuids[3]]
    for kind, uuid in api.calls[2:]:
        _arrive(uuid, vm=states.RESIZED if kind == 'cold' else states.ACTIVE)
    drainer.run()  # the cold move is confirmed, not yet counted
    assert ('confirm', uuids[3]) in api.calls
    drainer.run()
    d = db.drain_get(d['id'])
    assert d['status'] == DS.COMPLETED and d['finished_at'] is not None
    assert {r['state'] for r in d['servers']} == {SS.MOVED}


def test_a_live_conductor_keeps_its_drain_a_dead_ones_is_taken_over(hosts):
    _instance()
    _instance()
    d = _drain(max_parallel=1)
    peers = Peers()
    first, second = Api(), Api()
    assert drain.Drainer('c1', first, peers).run() == 1
    assert drain.Drainer('c2', second, peers).run() == 0
    assert second.calls == [] and db.drain_get(d['id'])['driver'] == 'c1'
    _arrive(first.calls[0][1])
    peers.lost.add('c1')
    assert drain.Drainer('c2', second, peers).run() == 1
    assert db.drain_get(d['id'])['driver'] == 'c2'
    assert len(second.calls) == 1 and second.calls[0] != first.calls[0]


def test_a_move_started_whose_row_was_not_written_counts_against_the_limit(hosts):
    a, b = _instance(), _instance()
    d = _drain(max_parallel=1)
    # A conductor started a's move and died before recording it.
    db.instance_update(a, {'task_state': states.MIGRATING})
    api = Api()
    drainer = drain.Drainer('c1', api, Peers())
    drainer.run()
    assert api.calls == [] and _rows(d)[a]['state'] == SS.PENDING
    _arrive(a)
    drainer.run()
    assert _rows(d)[a]['state'] == SS.MOVED
    assert api.calls == [('live', b)]


def test_failed_moves_are_retried_then_reported_with_the_fault(hosts, conf):
    conf.set_override('drain_max_attempts', 2, group='conductor')
    uuid = _instance()
    d = _drain(mode='live')
    api = Api()
    drainer = drain.Drainer('c1', api, Peers())
    for attempt in (1, 2):
        drainer.run()
        assert api.calls[-1] == ('live', uuid) and len(api.calls) == attempt
        # The move fails back on the source with a fault and its explanation.
        db.fault_create(uuid, 400, 'No valid host was found.',
                        details='No valid host was found. ComputeFilter removed 1 of 1 '
                                'hosts (dst: disabled).')
        db.instance_update(uuid, {'task_state': None})
        drainer.run()
    row = _rows(d)[uuid]
    assert (row['state'], row['attempts']) == (SS.FAILED, 2)
    assert 'ComputeFilter removed 1 of 1' in row['reason']
    d = db.drain_get(d['id'])
    assert d['status'] == DS.FAILED


def test_a_refused_start_is_an_attempt_with_its_reason(hosts, conf):
    conf.set_override('drain_max_attempts', 1, group='conductor')
    uuid = _instance()
    d = _drain()
    api = Api(refuse=exception.ServiceUnavailable())
    drain.Drainer('c1', api, Peers()).run()
    row = _rows(d)[uuid]
    assert (row['state'], row['attempts'], row['move']) == (SS.FAILED, 1, 'live')
    assert row['reason'] == str(exception.ServiceUnavailable())
    assert db.drain_get(d['id'])['status'] == DS.FAILED


def test_cancel_lets_moves_under_way_finish(hosts):
    a, b = _instance(), _instance()
    d = _drain(max_parallel=1)
    api = Api()
    drainer = drain.Drainer('c1', api, Peers())
    drainer.run()
    moving = api.calls[0][1]
    db.drain_cancel(d['id'])
    with pytest.raises(exception.HostDrainFinished):
        db.drain_cancel(d['id'])
    assert db.drain_get(d['id'])['status'] == DS.CANCELLING
    drainer.run()
    assert db.drain_get(d['id'])['status'] == DS.CANCELLING and len(api.calls) == 1
    _arrive(moving)
    drainer.run()
    d = db.drain_get(d['id'])
    assert d['status'] == DS.CANCELLED
    rows = {r['instance_uuid']: r['state'] for r in d['servers']}
    assert rows == {moving: SS.MOVED, ({a, b} - {moving}).pop(): SS.CANCELLED}


def test_deleted_and_arriving_servers(hosts):
    a = _instance()
    d = _drain(max_parallel=1)
    db.instance_destroy(a)
    late = _instance()  # a move into the host that was under way
    drainer = drain.Drainer('c1', Api(), Peers())
    drainer.run()
    rows = _rows(d)
    assert rows[a]['state'] == SS.GONE and late in rows
