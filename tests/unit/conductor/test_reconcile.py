"""The conductor's reconciler against a real SQLite database: which unfinished work it
takes over (its own after a restart, a dead conductor's, one nobody took), what a dead
compute owner's recovery writes, and that two conductors never both act on one move."""

import datetime
import time

import pytest

from novalite import context, exception
from novalite.compute import states
from novalite.conductor import reconcile
from novalite.conf import CONF
from novalite.db import api as db
from novalite.db import models, session, steps

MS = states.MS
RESOURCES = {'vcpus': 4, 'memory_mb': 4096, 'local_gb': 40}
FLAVOR = {'id': 1, 'flavorid': '1', 'vcpus': 1, 'memory_mb': 1024, 'root_gb': 10,
          'ephemeral_gb': 0, 'swap': 0}
CLAIM = {'VCPU': 1, 'MEMORY_MB': 1024, 'DISK_GB': 10}
LONG_AGO = datetime.datetime(2020, 1, 1)


class Computes:
    def __init__(self):
        self.sent = []

    def finish_revert_resize(self, ctxt, host, instance, migration):
        self.sent.append(('finish_revert_resize', host, instance['uuid']))

    def live_migration_abort(self, ctxt, host, instance, migration):
        self.sent.append(('live_migration_abort', host, instance['uuid']))


@pytest.fixture
def cloud(sqlite_db, conf):
    conf.set_override('service_down_time', 60)
    nodes = sqlite_db(RESOURCES, 'src', 'dst')
    for host in ('src', 'dst'):
        db.service_create(host, 'novalite-compute', 'compute')
    for host in ('conductor-1', 'conductor-2'):
        db.service_create(host, 'novalite-conductor', 'conductor')
    return nodes


def _reconciler(host='conductor-1', computes=None, seen_db_for=3600):
    rec = reconcile.Reconciler(host, computes or Computes(), reconcile.Driven())
    # As if this conductor had seen the database working for ``seen_db_for`` seconds.
    rec._db_ok_since = time.monotonic() - seen_db_for
    rec._last_pass = time.monotonic()
    return rec


def _down(host, binary='novalite-compute'):
    with session.writer() as s:
        s.query(models.Service).filter(models.Service.host == host,
                                       models.Service.binary == binary).update(
            {'last_seen_up': LONG_AGO, 'updated_at': LONG_AGO})


def _age(instance_uuid, migration_uuid=None):
    with session.writer() as s:
        s.query(models.Instance).filter(models.Instance.uuid == instance_uuid).update(
            {'updated_at': LONG_AGO})
        if migration_uuid:
            s.query(models.Migration).filter(models.Migration.uuid == migration_uuid).update(
                {'updated_at': LONG_AGO})


def _instance(nodes, task=None, vm=states.ACTIVE, host='src', **extra):
    inst = db.instance_create(dict({'display_name': 'x', 'project_id': 'p', 'user_id': 'u',
                                    'host': host, 'node': host, 'vm_state': vm,
                                    'task_state': task, 'flavor': FLAVOR,
                                    'power_state': 1}, **extra))
    if host:
        db.claim_resources(inst['uuid'], {nodes[host]['uuid']: CLAIM}, project_id='p',
                           user_id='u')
    return inst


def _cold_move(nodes, driver='conductor-1'):
    """A cold move a conductor recorded and was scheduling when it stopped."""
    inst = _instance(nodes, task=states.RESIZE_PREP)
    out = steps.apply_step('cold_move_started', inst['uuid'], new_migration={
        'instance_uuid': inst['uuid'], 'migration_type': states.COLD_MIGRATION,
        'source_compute': 'src', 'source_node': 'src'}, driver=driver, host=driver)
    return out['instance'], out['migration']


def _fault(uuid):
    return db.fault_get_latest([uuid])[uuid]['message']


def _rolled_back(nodes, inst, mig):
    after = db.instance_get(inst['uuid'])
    assert (after['vm_state'], after['task_state'], after['task_driver'], after['host']) == \
        (states.ACTIVE, None, None, 'src')
    assert db.migration_get(mig['uuid'])['status'] == MS.ERROR
    assert db.get_allocations(inst['uuid']) == {nodes['src']['uuid']: CLAIM}
    assert db.get_allocations(mig['uuid']) == {}


def test_a_restarted_conductor_rolls_back_what_it_was_driving(cloud):
    inst, mig = _cold_move(cloud)
    assert db.instance_get(inst['uuid'])['task_driver'] == 'conductor-1'
    assert _reconciler().run(context.get_admin_context(), at_start=True) == 1
    _rolled_back(cloud, inst, mig)
    assert 'conductor-1' in _fault(inst['uuid'])


def test_work_this_process_drives_is_left_alone(cloud):
    inst, mig = _cold_move(cloud)
    rec = _reconciler()
    with rec.driven.driving([inst['uuid']]):
        assert rec.run(context.get_admin_context()) == 0
    assert db.instance_get(inst['uuid'])['task_state'] == states.RESIZE_PREP
    # Once no task of this process drives it, the next pass takes it over.
    assert rec.run(context.get_admin_context()) == 1
    _rolled_back(cloud, inst, mig)


def test_another_conductors_work_is_taken_over_only_when_it_is_down(cloud):
    inst, mig = _cold_move(cloud, driver='conductor-2')
    rec = _reconciler('conductor-1')
    assert rec.run(context.get_admin_context(), at_start=True) == 0
    assert db.migration_get(mig['uuid'])['status'] == MS.PRE_MIGRATING
    _down('conductor-2', 'novalite-conductor')
    assert rec.run(context.get_admin_context()) == 1
    _rolled_back(cloud, inst, mig)


def test_a_takeover_never_races_the_task_that_moved_on(cloud):
    inst, mig = _cold_move(cloud)
    # The reconciler read the move while the task still drove it; the task then
    # recorded the destination and left.
    steps.apply_step('select_destination', inst['uuid'], mig['uuid'], driver=None,
                     migration_values={'dest_compute': 'dst', 'dest_node': 'dst'})
    with pytest.raises(exception.UnexpectedTaskStateError):
        _reconciler()._conductor_step_lost(context.get_admin_context(), inst, mig)
    assert db.migration_get(mig['uuid'])['status'] == MS.PRE_MIGRATING


def test_work_nobody_took_is_rolled_back_after_the_timeout(cloud, conf):
    conf.set_override('stuck_operation_timeout', 120, group='conductor')
    inst = _instance(cloud, task=states.RESIZE_PREP)  # the API's step; the cast was lost
    rec = _reconciler()
    assert rec.run(context.get_admin_context(), at_start=True) == 0
    _age(inst['uuid'])
    assert rec.run(context.get_admin_context()) == 1
    after = db.instance_get(inst['uuid'])
    assert (after['vm_state'], after['task_state']) == (states.ACTIVE, None)
    assert db.get_allocations(inst['uuid']) == {cloud['src']['uuid']: CLAIM}


def test_a_build_whose_conductor_died_goes_to_error_without_allocations(cloud):
    inst = _instance(cloud, task=states.SCHEDULING, vm=states.BUILDING, host=None)
    assert steps.take_lease([inst['uuid']], 'conductor-2', [states.SCHEDULING]) == \
        [inst['uuid']]
    db.claim_resources(inst['uuid'], {cloud['dst']['uuid']: CLAIM})  # the scheduler's
    _down('conductor-2', 'novalite-conductor')
    assert _reconciler().run(context.get_admin_context()) == 1
    after = db.instance_get(inst['uuid'])
    assert (after['vm_state'], after['task_state']) == (states.ERROR, None)
    assert db.get_allocations(inst['uuid']) == {}
    assert 'scheduling was interrupted' in _fault(inst['uuid'])


def test_a_lease_is_taken_once(cloud):
    inst = _instance(cloud, task=states.SCHEDULING, vm=states.BUILDING, host=None)
    assert steps.take_lease([inst['uuid']], 'conductor-1', [states.SCHEDULING])
    assert steps.take_lease([inst['uuid']], 'conductor-1', [states.SCHEDULING])
    assert steps.take_lease([inst['uuid']], 'conductor-2', [states.SCHEDULING]) == []
    assert steps.take_lease([inst['uuid']], 'conductor-2', [states.MIGRATING],
                            previous='conductor-1') == []


def _finishing(nodes, status=MS.POST_MIGRATING, task=states.RESIZE_MIGRATED):
    """A cold move whose disks are on dst: the instance holds dst, the migration src."""
    inst, mig = _cold_move(nodes)
    db.claim_resources(inst['uuid'], {nodes['dst']['uuid']: CLAIM}, replace=True)
    db.migration_update(mig['uuid'], {'status': status, 'dest_compute': 'dst',
                                      'dest_node': 'dst'})
    db.instance_update(inst['uuid'], {'task_state': task, 'task_driver': None,
                                      'host': 'dst', 'node': 'dst',
                                      'old_flavor': FLAVOR, 'new_flavor': FLAVOR})
    return db.instance_get(inst['uuid']), db.migration_get(mig['uuid'])


def test_a_dead_destination_hands_the_move_back_to_the_source(cloud):
    inst, mig = _finishing(cloud)
    computes = Computes()
    rec = _reconciler(computes=computes)
    assert rec.run(context.get_admin_context()) == 0  # dst is up: it owns the finish
    _down('dst')
    assert rec.run(context.get_admin_context()) == 1
    after = db.instance_get(inst['uuid'])
    assert after['task_state'] == states.RESIZE_REVERTING
    assert db.migration_get(mig['uuid'])['status'] == MS.REVERTED
    # The destination claim is gone; the source allocation waits for the finish.
    assert db.get_allocations(inst['uuid']) == {}
    assert db.get_allocations(mig['uuid']) == {cloud['src']['uuid']: CLAIM}
    assert computes.sent == [('finish_revert_resize', 'src', inst['uuid'])]
    message = _fault(inst['uuid'])
    assert 'compute host dst is down' in message and 'last seen 2020-01-01' in message


def test_a_dead_source_owing_the_end_of_a_revert_leaves_the_server_in_error(cloud):
    inst, mig = _finishing(cloud, status=MS.REVERTED, task=states.RESIZE_REVERTING)
    db.delete_allocations(inst['uuid'])  # revert_resize dropped the destination claim
    _down('src')
    assert _reconciler().run(context.get_admin_context()) == 1
    after = db.instance_get(inst['uuid'])
    assert (after['vm_state'], after['task_state'], after['host']) == \
        (states.ERROR, None, 'src')
    assert db.migration_get(mig['uuid'])['status'] == MS.ERROR
    assert db.get_allocations(inst['uuid']) == {cloud['src']['uuid']: CLAIM}
    assert db.get_allocations(mig['uuid']) == {}


def test_a_confirm_whose_source_is_dead_is_finished_here(cloud):
    inst, mig = _finishing(cloud, status=MS.CONFIRMING, task=None)
    db.instance_update(inst['uuid'], {'vm_state': states.RESIZED})
    _down('src')
    assert _reconciler().run(context.get_admin_context()) == 1
    after = db.instance_get(inst['uuid'])
    assert (after['vm_state'], after['task_state'], after['host']) == \
        (states.ACTIVE, None, 'dst')
    assert db.migration_get(mig['uuid'])['status'] == MS.CONFIRMED
    assert db.get_allocations(mig['uuid']) == {}
    assert db.get_allocations(inst['uuid']) == {cloud['dst']['uuid']: CLAIM}


def _live(nodes, status, driver=None):
    inst = _instance(nodes)
    out = steps.apply_step('live_migration_requested', inst['uuid'], new_migration={
        'instance_uuid': inst['uuid'], 'migration_type': states.LIVE_MIGRATION,
        'source_compute': 'src', 'source_node': 'src'}, driver=driver)
    mig = out['migration']
    if status != MS.ACCEPTED or driver is None:
        db.claim_resources(inst['uuid'], {nodes['dst']['uuid']: CLAIM}, replace=True)
        db.migration_update(mig['uuid'], {'status': status, 'dest_compute': 'dst',
                                          'dest_node': 'dst'})
    return db.instance_get(inst['uuid']), db.migration_get(mig['uuid'])


def test_a_live_migration_whose_conductor_died_in_its_checks_is_rolled_back(cloud):
    inst, mig = _live(cloud, MS.ACCEPTED, driver='conductor-2')
    _down('conductor-2', 'novalite-conductor')
    assert _reconciler().run(context.get_admin_context()) == 1
    after = db.instance_get(inst['uuid'])
    assert (after['vm_state'], after['task_state']) == (states.ACTIVE, None)
    assert db.migration_get(mig['uuid'])['status'] == MS.ERROR
    assert db.get_allocations(inst['uuid']) == {cloud['src']['uuid']: CLAIM}


def test_a_running_live_migration_to_a_dead_destination_is_aborted_by_its_source(cloud):
    inst, mig = _live(cloud, MS.RUNNING)
    computes = Computes()
    rec = _reconciler(computes=computes)
    assert rec.run(context.get_admin_context()) == 0
    assert computes.sent == []
    _down('dst')
    rec.run(context.get_admin_context())
    assert computes.sent == [('live_migration_abort', 'src', inst['uuid'])]


def test_a_live_migration_whose_source_died_after_the_switch_completes(cloud):
    inst, mig = _live(cloud, MS.POST_MIGRATING)
    db.instance_update(inst['uuid'], {'host': 'dst', 'node': 'dst'})
    _down('src')
    assert _reconciler().run(context.get_admin_context()) == 1
    after = db.instance_get(inst['uuid'])
    assert (after['task_state'], after['host']) == (None, 'dst')
    assert db.migration_get(mig['uuid'])['status'] == MS.COMPLETED
    assert db.get_allocations(mig['uuid']) == {}
    assert db.get_allocations(inst['uuid']) == {cloud['dst']['uuid']: CLAIM}


def test_no_host_is_judged_dead_before_heartbeats_could_be_recorded(cloud):
    inst, mig = _finishing(cloud)
    _down('dst')
    # Just started, or just through a database outage: heartbeats have not caught up.
    rec = _reconciler(seen_db_for=0)
    assert rec.run(context.get_admin_context()) == 0
    assert db.migration_get(mig['uuid'])['status'] == MS.POST_MIGRATING
    # A pass that comes much later than its interval closes the judgement again.
    rec = _reconciler()
    rec._last_pass = time.monotonic() - 3600
    assert rec.run(context.get_admin_context()) == 0
    # Once the database has worked for service_down_time, the host is dead.
    rec._db_ok_since = time.monotonic() - CONF.service_down_time
    assert rec.run(context.get_admin_context()) == 1


def test_two_conductors_never_both_act_on_one_move(cloud):
    inst, mig = _finishing(cloud)
    _down('dst')
    first, second = Computes(), Computes()
    assert _reconciler('conductor-1', first).run(context.get_admin_context()) == 1
    assert _reconciler('conductor-2', second).run(context.get_admin_context()) == 0
    assert len(first.sent) == 1 and second.sent == []


def test_a_repeated_compute_step_answers_from_the_record(cloud):
    inst, mig = _finishing(cloud)
    changes = dict(vm_state=states.RESIZED, caller='dst')
    first = steps.apply_step('finish_resize', inst['uuid'], mig['uuid'], **changes)
    again = steps.apply_step('finish_resize', inst['uuid'], mig['uuid'], **changes)
    assert again['migration']['status'] == first['migration']['status'] == MS.FINISHED
    assert again['instance']['vm_state'] == states.RESIZED


def test_a_repeated_opening_step_is_refused(cloud):
    inst, mig = _cold_move(cloud)
    db.migration_update(mig['uuid'], {'dest_compute': 'dst', 'dest_node': 'dst'})
    steps.apply_step('resize_instance', inst['uuid'], mig['uuid'], caller='src')
    with pytest.raises((exception.UnexpectedTaskStateError,
                        exception.UnexpectedMigrationStatus)):
        steps.apply_step('resize_instance', inst['uuid'], mig['uuid'], caller='src')


def test_pending_step_names_who_owes_the_move():
    cold = {'migration_type': states.COLD_MIGRATION, 'status': MS.PRE_MIGRATING,
            'dest_compute': None}
    inst = {'task_state': states.RESIZE_PREP, 'new_flavor': None}
    assert states.pending_step(cold, inst).owner == states.CONDUCTOR
    assert states.pending_step(dict(cold, dest_compute='d'), inst).name == 'prep_resize'
    assert states.pending_step(dict(cold, dest_compute='d'),
                               dict(inst, new_flavor=FLAVOR)).name == 'resize_instance'
    assert states.pending_step(None, inst).name == 'cold_move_started'
    finished = dict(cold, status=MS.FINISHED)
    assert states.pending_step(finished, {'task_state': None}) is None
    live = {'migration_type': states.LIVE_MIGRATION, 'status': MS.RUNNING,
            'dest_compute': 'd'}
    assert states.pending_step(live, {'task_state': states.MIGRATING}).owner == \
        states.SOURCE


def test_the_reconcile_interval_is_a_few_seconds():
    assert CONF.conductor.reconcile_interval <= 10


def _evacuation(nodes, dest=None, driver='conductor-1', rebuilding=False):
    """A server of the dead host ``src`` being evacuated: accepted by the API, maybe
    its destination chosen (and claimed), maybe rebuilding there."""
    inst = _instance(nodes)
    out = steps.apply_step('evacuation_requested', inst['uuid'], new_migration={
        'instance_uuid': inst['uuid'], 'migration_type': states.EVACUATION,
        'source_compute': 'src', 'source_node': 'src'}, driver=driver)
    mig = out['migration']
    if dest:
        db.claim_resources(inst['uuid'], {nodes[dest]['uuid']: CLAIM}, replace=True)
        steps.apply_step('evacuation_destination_chosen', inst['uuid'], mig['uuid'],
                         migration_values={'dest_compute': dest, 'dest_node': dest},
                         driver=None)
    if rebuilding:
        steps.apply_step('evacuation_rebuilding', inst['uuid'], mig['uuid'], caller=dest,
                         instance_values={'host': dest, 'node': dest})
    _down('src')
    return db.instance_get(inst['uuid']), db.migration_get(mig['uuid'])


def _back_on_source(nodes, inst, mig, vm_state, status):
    after = db.instance_get(inst['uuid'])
    assert (after['vm_state'], after['task_state'], after['task_driver'], after['host']) \
        == (vm_state, None, None, 'src')
    assert db.migration_get(mig['uuid'])['status'] == status
    assert db.get_allocations(inst['uuid']) == {nodes['src']['uuid']: CLAIM}
    assert db.get_allocations(mig['uuid']) == {}


def test_an_evacuation_whose_conductor_died_is_rolled_back(cloud):
    inst, mig = _evacuation(cloud, driver='conductor-2')
    rec = _reconciler()
    assert rec.run(context.get_admin_context()) == 0  # conductor-2 is up: its work
    _down('conductor-2', 'novalite-conductor')
    assert rec.run(context.get_admin_context()) == 1
    _back_on_source(cloud, inst, mig, states.ERROR, MS.ERROR)
    assert 'conductor-2' in _fault(inst['uuid'])


def test_an_evacuation_left_to_its_live_destination_is_left_alone(cloud):
    """The dead source is the point of an evacuation: only its destination's death
    counts."""
    inst, mig = _evacuation(cloud, dest='dst')
    assert _reconciler().run(context.get_admin_context()) == 0
    assert db.instance_get(inst['uuid'])['task_state'] == states.REBUILDING
    assert db.migration_get(mig['uuid'])['status'] == MS.ACCEPTED


def test_an_evacuation_whose_destination_died_before_the_rebuild_is_rolled_back(cloud):
    inst, mig = _evacuation(cloud, dest='dst')
    _down('dst')
    assert _reconciler().run(context.get_admin_context()) == 1
    _back_on_source(cloud, inst, mig, states.ERROR, MS.ERROR)
    assert 'compute host dst is down' in _fault(inst['uuid'])


def test_an_evacuation_whose_destination_died_rebuilding_ends_in_error_on_its_source(
        cloud):
    inst, mig = _evacuation(cloud, dest='dst', rebuilding=True)
    assert db.instance_get(inst['uuid'])['host'] == 'dst'
    _down('dst')
    assert _reconciler().run(context.get_admin_context()) == 1
    _back_on_source(cloud, inst, mig, states.ERROR, MS.FAILED)


def test_no_host_is_judged_until_the_bus_has_worked_again_for_a_while(cloud, conf):
    """Heartbeats are lost in a broker outage too: once this conductor could not answer
    its own ping, hosts are judged only after service_down_time plus the broker
    driver's longest reconnect back-off of the bus working again."""
    bus = {'up': True}
    rec = reconcile.Reconciler('conductor-1', Computes(), reconcile.Driven(),
                               bus=lambda: bus['up'])
    rec._load_services()
    rec._db_ok_since = time.monotonic() - 3600
    bus['up'] = False
    rec._check_bus()  # out of reach from the start: no outage seen to begin
    assert rec._bus_grace == 0.0 and not rec._judging()
    bus['up'] = True
    rec._check_bus()
    rec._bus_ok_since = time.monotonic() - 3600
    assert rec._judging()
    bus['up'] = False
    rec._check_bus()
    assert not rec._judging() and rec._bus_grace == 30.0
    bus['up'] = True
    rec._check_bus()
    assert not rec._judging()  # the bus just came back
    rec._bus_ok_since = time.monotonic() - (CONF.service_down_time + 29)
    assert not rec._judging()
    rec._bus_ok_since = time.monotonic() - (CONF.service_down_time + 31)
    assert rec._judging()
    _down('src')
    rec._load_services()
    assert rec._down_since('src') is not None


def test_a_lost_build_is_scheduled_again_once_hosts_have_reported(cloud, conf):
    """At start no heartbeat was recorded while no conductor ran: the build is sent
    again on a later pass, once the computes have reported."""
    conf.set_override('report_interval', 1)
    inst = _instance(cloud, task=states.SCHEDULING, vm=states.BUILDING, host=None)
    steps.take_lease([inst['uuid']], 'conductor-1', [states.SCHEDULING])
    sent = []
    rec = reconcile.Reconciler('conductor-1', Computes(), reconcile.Driven(),
                               rebuild=lambda ctxt, i, spec, image: sent.append(i['uuid']))
    rec.run(context.get_admin_context(), at_start=True)
    assert sent == [] and db.instance_get(inst['uuid'])['task_state'] == states.SCHEDULING
    rec._started_at -= 2.5
    rec.run(context.get_admin_context())
    assert sent == [inst['uuid']]
