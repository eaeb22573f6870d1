"""The allocation audit on a real SQLite file: every rule, every certain repair, and the
compare-and-swap that leaves a record alone when it changed during the audit."""

import datetime
import logging

import pytest

from novalite.compute import states
from novalite.db import api as db
from novalite.db import audit, models, steps
from novalite.db.session import writer

MS = states.MS
RESOURCES = {'vcpus': 4, 'memory_mb': 4096, 'local_gb': 40}
FLAVOR = {'vcpus': 1, 'memory_mb': 1024, 'root_gb': 10}
SMALL = {'VCPU': 1, 'MEMORY_MB': 1024, 'DISK_GB': 10}
BIG = {'VCPU': 4, 'MEMORY_MB': 4096, 'DISK_GB': 40}


@pytest.fixture
def nodes(sqlite_db):
    return {h: n['uuid'] for h, n in sqlite_db(RESOURCES, 'src', 'dst', 'other').items()}


def _instance(host='src', task=None, vm=states.ACTIVE):
    return db.instance_create({'display_name': 'x', 'project_id': 'p', 'user_id': 'u',
                               'host': host, 'node': host, 'vm_state': vm,
                               'task_state': task, 'flavor': dict(FLAVOR)})


def _migration(inst, status, mtype=states.COLD_MIGRATION, src='src', dest='dst'):
    return db.migration_create({'instance_uuid': inst['uuid'], 'status': status,
                                'migration_type': mtype, 'source_compute': src,
                                'source_node': src, 'dest_compute': dest, 'dest_node': dest})


def _claim(consumer, rp, amounts=SMALL):
    db.claim_resources(consumer, {rp: dict(amounts)}, project_id='p', user_id='u')


def _age_everything(seconds=3600):
    """Make every record look untouched for ``seconds``."""
    then = models.utcnow() - datetime.timedelta(seconds=seconds)
    with writer() as s:
        for model in (models.Instance, models.Migration):
            s.query(model).update({'updated_at': then, 'created_at': then},
                                  synchronize_session=False)
        s.query(models.Instance).filter(models.Instance.deleted.is_(True)).update(
            {'deleted_at': then}, synchronize_session=False)
        s.query(models.Allocation).update({'created_at': then}, synchronize_session=False)


def _kinds(findings):
    return sorted((f.kind, f.certain, f.fixed) for f in findings)


def test_a_consistent_cloud_has_no_findings(nodes):
    inst = _instance()
    _claim(inst['uuid'], nodes['src'])
    _instance(host=None, vm=states.ERROR)  # a failed build holds nothing: fine
    assert audit.audit(grace=0) == []


def test_allocation_of_a_deleted_instance_is_dropped(nodes):
    inst = _instance()
    _claim(inst['uuid'], nodes['src'])
    with writer() as s:  # deleted without dropping its allocation: the leak
        s.query(models.Instance).filter_by(uuid=inst['uuid']).update({'deleted': True})
    found = audit.audit(grace=0)
    assert _kinds(found) == [(audit.DELETED_INSTANCE, True, False)]
    assert found[0].provider == nodes['src'] and found[0].host == 'src'
    assert db.get_allocations(inst['uuid'])  # report only: nothing changed
    fixed = audit.audit(fix=True, grace=0)
    assert _kinds(fixed) == [(audit.DELETED_INSTANCE, True, True)]
    assert db.get_allocations(inst['uuid']) == {}
    assert audit.audit(grace=0) == []


def test_allocation_of_nobody_is_dropped(nodes):
    _claim('4f0e4a9e-0000-4000-8000-000000000001', nodes['dst'])
    fixed = audit.audit(fix=True, grace=0)
    assert _kinds(fixed) == [(audit.UNKNOWN_CONSUMER, True, True)]
    assert db.provider_usages(nodes['dst']) == {}


def test_migration_of_a_deleted_instance_is_dropped(nodes):
    inst = _instance(task=states.RESIZE_PREP)
    mig = _migration(inst, MS.PRE_MIGRATING)
    _claim(mig['uuid'], nodes['src'])
    with writer() as s:
        s.query(models.Instance).filter_by(uuid=inst['uuid']).update({'deleted': True})
    assert _kinds(audit.audit(fix=True, grace=0)) == [(audit.DELETED_INSTANCE, True, True)]
    assert db.get_allocations(mig['uuid']) == {}


def test_a_finished_migration_holds_nothing(nodes):
    inst = _instance(host='dst')
    mig = _migration(inst, MS.CONFIRMED)
    _claim(mig['uuid'], nodes['src'])
    _claim(inst['uuid'], nodes['dst'])
    found = audit.audit(grace=0)
    assert _kinds(found) == [(audit.FINISHED_MIGRATION, True, False)]
    assert 'drop it' in found[0].detail and found[0].consumer == mig['uuid']
    audit.audit(fix=True, grace=0)
    assert db.get_allocations(mig['uuid']) == {}
    assert db.get_allocations(inst['uuid']) == {nodes['dst']: SMALL}


def test_a_finished_migration_gives_back_what_its_instance_lacks(nodes):
    # A failed move that never handed the source allocation back to the instance.
    inst = _instance(host='src', vm=states.ERROR)
    mig = _migration(inst, MS.ERROR)
    _claim(mig['uuid'], nodes['src'])
    found = audit.audit(grace=0)
    assert _kinds(found) == [(audit.FINISHED_MIGRATION, True, False)]  # no missing_allocation
    assert 'give it back' in found[0].detail
    audit.audit(fix=True, grace=0)
    assert db.get_allocations(inst['uuid']) == {nodes['src']: SMALL}
    assert audit.audit(grace=0) == []


def test_a_finished_migration_holding_the_only_record_elsewhere_is_uncertain(nodes):
    # revert_failed after revert_resize: the instance's claim is gone, the database
    # still names the destination, the source allocation is all that is left.
    inst = _instance(host='dst', vm=states.ERROR)
    mig = _migration(inst, MS.ERROR, mtype=states.RESIZE)
    _claim(mig['uuid'], nodes['src'])
    found = audit.audit(fix=True, grace=0)
    assert _kinds(found) == [(audit.FINISHED_MIGRATION, False, False)]
    assert 'check where the guest runs' in found[0].detail
    assert db.get_allocations(mig['uuid']) == {nodes['src']: SMALL}


def test_a_reverted_migration_still_owed_its_finish_is_legal(nodes):
    inst = _instance(host='dst', task=states.RESIZE_REVERTING, vm=states.RESIZED)
    mig = _migration(inst, MS.REVERTED, mtype=states.RESIZE)
    _claim(mig['uuid'], nodes['src'])
    assert audit.audit(fix=True, grace=0) == []
    assert db.get_allocations(mig['uuid']) == {nodes['src']: SMALL}


def test_settled_instance_on_the_wrong_provider_moves_home(nodes):
    inst = _instance(host='src')
    _claim(inst['uuid'], nodes['dst'], {'VCPU': 2, 'MEMORY_MB': 2048, 'DISK_GB': 20})
    found = audit.audit(grace=0)
    assert _kinds(found) == [(audit.WRONG_PROVIDER, True, False)]
    assert found[0].provider == nodes['dst'] and found[0].host == 'src'
    audit.audit(fix=True, grace=0)
    # Moved to its host with what its flavor claims.
    assert db.get_allocations(inst['uuid']) == {nodes['src']: SMALL}
    assert db.provider_usages(nodes['dst']) == {}


def test_wrong_provider_with_no_room_at_home_is_reported_not_moved(nodes):
    inst = _instance(host='src')
    _claim(inst['uuid'], nodes['dst'])
    filler = _instance(host='src')
    _claim(filler['uuid'], nodes['src'], BIG)  # inventory says so, the flavor does not
    found = audit.audit(fix=True, grace=0)
    by_consumer = {f.consumer: f for f in found}
    bad = by_consumer[inst['uuid']]
    assert (bad.kind, bad.certain, bad.fixed) == (audit.WRONG_PROVIDER, False, False)
    assert 'not done' in bad.detail
    assert db.get_allocations(inst['uuid']) == {nodes['dst']: SMALL}


def test_extra_provider_of_a_settled_instance_is_dropped(nodes):
    inst = _instance(host='src')
    _claim(inst['uuid'], nodes['src'])
    with writer() as s:  # a stale destination claim beside the real one
        rp = s.query(models.ResourceProvider).filter_by(uuid=nodes['other']).one()
        s.add(models.Allocation(resource_provider_id=rp.id, consumer_id=inst['uuid'],
                                resource_class='VCPU', used=1))
    assert _kinds(audit.audit(fix=True, grace=0)) == [(audit.WRONG_PROVIDER, True, True)]
    assert db.get_allocations(inst['uuid']) == {nodes['src']: SMALL}


def test_missing_allocation_is_reported_as_uncertain(nodes):
    inst = _instance(host='src')
    found = audit.audit(fix=True, grace=0)
    assert _kinds(found) == [(audit.MISSING_ALLOCATION, False, False)]
    assert found[0].consumer == inst['uuid'] and found[0].provider == nodes['src']


def test_instance_on_a_host_without_provider_is_uncertain(nodes):
    inst = _instance(host='gone')
    _claim(inst['uuid'], nodes['src'])
    assert _kinds(audit.audit(fix=True, grace=0)) == [(audit.UNKNOWN_HOST, False, False)]
    assert db.get_allocations(inst['uuid']) == {nodes['src']: SMALL}


def test_settled_instance_without_host_holds_nothing(nodes):
    inst = _instance(host=None, vm=states.ERROR)
    _claim(inst['uuid'], nodes['src'])
    assert _kinds(audit.audit(fix=True, grace=0)) == [(audit.NO_HOST, True, True)]
    assert db.get_allocations(inst['uuid']) == {}


def test_a_build_claim_before_the_host_is_recorded_is_legal(nodes):
    inst = _instance(host=None, task=states.SCHEDULING, vm=states.BUILDING)
    _claim(inst['uuid'], nodes['dst'])
    assert audit.audit(grace=0) == []


# Legal and illegal shapes of a move: (type, status, task, what the instance holds,
# what the migration holds) -> legal.
SHAPES = [
    (states.COLD_MIGRATION, MS.PRE_MIGRATING, states.RESIZE_PREP, (), ('src',), True),
    (states.COLD_MIGRATION, MS.PRE_MIGRATING, states.RESIZE_PREP, ('dst',), ('src',), True),
    (states.COLD_MIGRATION, MS.PRE_MIGRATING, states.RESIZE_PREP, ('other',), ('src',),
     True),  # an alternate claimed before the record names it
    (states.COLD_MIGRATION, MS.MIGRATING, states.RESIZE_MIGRATING, ('dst',), ('src',), True),
    (states.COLD_MIGRATION, MS.MIGRATING, states.RESIZE_MIGRATING, (), ('src',), False),
    (states.COLD_MIGRATION, MS.POST_MIGRATING, states.RESIZE_MIGRATED, ('dst',), ('src',),
     True),
    (states.RESIZE, MS.FINISHED, None, ('dst',), ('src',), True),
    (states.RESIZE, MS.FINISHED, None, ('dst',), (), False),
    (states.RESIZE, MS.FINISHED, None, ('src',), ('src',), False),
    (states.RESIZE, MS.CONFIRMING, None, ('dst',), ('src',), True),
    (states.RESIZE, MS.REVERTING, states.RESIZE_REVERTING, ('dst',), ('src',), True),
    (states.RESIZE, MS.REVERTED, states.RESIZE_REVERTING, (), ('src',), True),
    (states.RESIZE, MS.REVERTED, states.RESIZE_REVERTING, ('dst',), ('src',), False),
    (states.LIVE_MIGRATION, MS.ACCEPTED, states.MIGRATING, (), ('src',), True),
    (states.LIVE_MIGRATION, MS.ACCEPTED, states.MIGRATING, ('dst',), ('src',), True),
    (states.LIVE_MIGRATION, MS.ACCEPTED, states.MIGRATING, ('other',), ('src',), False),
    (states.LIVE_MIGRATION, MS.RUNNING, states.MIGRATING, ('dst',), ('src',), True),
    (states.LIVE_MIGRATION, MS.RUNNING, states.MIGRATING, ('dst', 'src'), ('src',), False),
    (states.LIVE_MIGRATION, MS.POST_MIGRATING, states.MIGRATING, ('dst',), ('src',), True),
    (states.LIVE_MIGRATION, MS.RUNNING, states.MIGRATING, ('dst',), ('dst',), False),
]


@pytest.mark.parametrize('mtype,status,task,inst_holds,mig_holds,legal', SHAPES)
def test_move_shapes(nodes, mtype, status, task, inst_holds, mig_holds, legal):
    vm = states.RESIZED if status in (MS.FINISHED, MS.CONFIRMING, MS.REVERTING,
                                      MS.REVERTED) else states.ACTIVE
    inst = _instance(host='src', task=task, vm=vm)
    mig = _migration(inst, status, mtype=mtype)
    for host in inst_holds:
        _claim(inst['uuid'], nodes[host])
    for host in mig_holds:
        _claim(mig['uuid'], nodes[host])
    before = {c: db.get_allocations(c) for c in (inst['uuid'], mig['uuid'])}
    found = audit.audit(fix=True, grace=0)
    if legal:
        assert found == []
    else:
        assert _kinds(found) == [(audit.MOVE_SHAPE, False, False)]
        assert mig['uuid'] in found[0].detail or 'holds' in found[0].detail
    # A move is never repaired by the audit: its steps and reconcilers own it.
    assert {c: db.get_allocations(c) for c in before} == before


def test_the_shapes_a_real_cold_move_writes_are_legal(nodes):
    inst = _instance(task=states.RESIZE_PREP)
    _claim(inst['uuid'], nodes['src'])
    out = steps.apply_step('cold_move_started', inst['uuid'],
                           new_migration={'instance_uuid': inst['uuid'],
                                          'migration_type': states.COLD_MIGRATION,
                                          'source_compute': 'src', 'source_node': 'src'})
    assert audit.audit(grace=0) == []
    db.claim_resources(inst['uuid'], {nodes['dst']: SMALL}, replace=True)
    db.migration_update(out['migration']['uuid'], {'dest_compute': 'dst',
                                                   'dest_node': 'dst'})
    assert audit.audit(grace=0) == []


def test_two_unfinished_migrations_are_uncertain(nodes):
    inst = _instance(task=states.MIGRATING)
    for _ in range(2):
        _migration(inst, MS.RUNNING, mtype=states.LIVE_MIGRATION)
    _claim(inst['uuid'], nodes['dst'])
    found = audit.audit(grace=0)
    assert _kinds(found) == [(audit.MOVE_SHAPE, False, False)]
    assert '2 unfinished migrations' in found[0].detail


def test_task_without_a_move_holding_elsewhere_is_uncertain(nodes):
    inst = _instance(task=states.REBOOTING)
    _claim(inst['uuid'], nodes['dst'])
    assert _kinds(audit.audit(fix=True, grace=0)) == [(audit.MOVE_SHAPE, False, False)]
    assert db.get_allocations(inst['uuid']) == {nodes['dst']: SMALL}


def test_recent_records_are_left_alone(nodes):
    gone = _instance()
    _claim(gone['uuid'], nodes['src'])
    wrong = _instance(host='src')
    _claim(wrong['uuid'], nodes['dst'])
    _claim('4f0e4a9e-0000-4000-8000-000000000002', nodes['other'])
    with writer() as s:
        s.query(models.Instance).filter_by(uuid=gone['uuid']).update(
            {'deleted': True, 'deleted_at': models.utcnow()})
    assert audit.audit(fix=True) == []  # everything is younger than the grace period
    assert db.get_allocations(gone['uuid'])
    _age_everything()
    assert _kinds(audit.audit(fix=True)) == [(audit.DELETED_INSTANCE, True, True),
                                              (audit.UNKNOWN_CONSUMER, True, True),
                                              (audit.WRONG_PROVIDER, True, True)]


def test_a_repair_is_a_compare_and_swap(nodes):
    inst = _instance(host='src')
    _claim(inst['uuid'], nodes['dst'])
    issues = audit._audit(audit._read(), 0)
    assert [i.finding.kind for i in issues] == [audit.WRONG_PROVIDER]
    # A move starts between the audit's read and its repair.
    db.instance_update(inst['uuid'], {'task_state': states.RESIZE_PREP},
                       expected_task_state=None)
    out = audit._repair(issues[0])
    assert not out.fixed and 'changed while auditing' in out.detail
    assert db.get_allocations(inst['uuid']) == {nodes['dst']: SMALL}


def test_a_repair_leaves_a_migration_that_moved_on(nodes):
    inst = _instance(host='dst', vm=states.RESIZED)
    mig = _migration(inst, MS.REVERTED, mtype=states.RESIZE)
    _claim(mig['uuid'], nodes['src'])
    _claim(inst['uuid'], nodes['dst'])
    issues = audit._audit(audit._read(), 0)
    assert [i.finding.kind for i in issues] == [audit.FINISHED_MIGRATION]
    # The instance starts reverting: the reverted migration's allocation is owed to it.
    db.instance_update(inst['uuid'], {'task_state': states.RESIZE_REVERTING})
    assert not audit._repair(issues[0]).fixed
    assert db.get_allocations(mig['uuid']) == {nodes['src']: SMALL}


def test_negative_grace_is_refused(nodes):
    with pytest.raises(ValueError, match='grace'):
        audit.audit(grace=-1)


def test_run_periodic_fixes_and_logs(nodes, caplog):
    gone = _instance()
    _claim(gone['uuid'], nodes['src'])
    with writer() as s:
        s.query(models.Instance).filter_by(uuid=gone['uuid']).update({'deleted': True})
    _instance(host='dst')  # holds nothing: reported, not fixed
    with caplog.at_level(logging.INFO, logger='novalite.db.audit'):
        found = audit.run_periodic('conductor-1', grace=0)
    assert _kinds(found) == [(audit.DELETED_INSTANCE, True, True),
                             (audit.MISSING_ALLOCATION, False, False)]
    assert audit.summary(found) == {audit.MISSING_ALLOCATION: 1}
    text = caplog.text
    assert 'conductor-1 fixed: deleted_instance' in text
    assert 'missing_allocation' in text and '[uncertain]' in text
