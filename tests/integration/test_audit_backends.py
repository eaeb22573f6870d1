"""The allocation audit and its repairs on every database backend (SQLite, PostgreSQL,
MariaDB/MySQL): the row locks and compare-and-swap re-reads are real SQL on each."""

import threading

import pytest

from novalite.compute import states
from novalite.db import api as db
from novalite.db import audit, migration, models, session

MS = states.MS
RESOURCES = {'vcpus': 4, 'memory_mb': 4096, 'local_gb': 40}
RATIOS = {'VCPU': 1.0, 'MEMORY_MB': 1.0, 'DISK_GB': 1.0}
SMALL = {'VCPU': 1, 'MEMORY_MB': 512, 'DISK_GB': 1}
FLAVOR = {'vcpus': 1, 'memory_mb': 512, 'root_gb': 1}


@pytest.fixture
def nodes(any_db_url):
    migration.upgrade(any_db_url)
    session.set_engine(session.create_engine(any_db_url))
    yield {h: db.compute_node_update(h, h, RESOURCES, RATIOS, {})['uuid']
           for h in ('src', 'dst')}
    session.set_engine(None)


def _instance(host, task=None, vm=states.ACTIVE):
    return db.instance_create({'display_name': 'x', 'project_id': 'p', 'user_id': 'u',
                               'host': host, 'node': host, 'vm_state': vm,
                               'task_state': task, 'flavor': dict(FLAVOR)})['uuid']


def _claim(consumer, rp):
    db.claim_resources(consumer, {rp: dict(SMALL)}, project_id='p', user_id='u')


def test_every_certain_repair(nodes):
    gone = _instance('src')
    _claim(gone, nodes['src'])
    with session.writer() as s:
        s.query(models.Instance).filter_by(uuid=gone).update({'deleted': True})
    _claim('0d6a1c2e-0000-4000-8000-00000000000a', nodes['dst'])
    moved = _instance('dst')
    mig = db.migration_create({'instance_uuid': moved, 'status': MS.CONFIRMED,
                               'migration_type': states.RESIZE, 'source_compute': 'src',
                               'source_node': 'src', 'dest_compute': 'dst',
                               'dest_node': 'dst'})['uuid']
    _claim(mig, nodes['src'])
    _claim(moved, nodes['dst'])
    wrong = _instance('src')
    _claim(wrong, nodes['dst'])
    bare = _instance('dst')
    found = audit.audit(fix=True, grace=0)
    assert sorted((f.kind, f.fixed) for f in found) == [
        (audit.DELETED_INSTANCE, True), (audit.FINISHED_MIGRATION, True),
        (audit.MISSING_ALLOCATION, False), (audit.UNKNOWN_CONSUMER, True),
        (audit.WRONG_PROVIDER, True)]
    assert db.all_consumers() == {moved, wrong}
    assert db.get_allocations(wrong) == {nodes['src']: SMALL}
    assert [f.consumer for f in audit.audit(fix=True, grace=0)] == [bare]


def test_a_repair_racing_a_step_on_the_instance_stands_down(nodes):
    wrong = _instance('src')
    _claim(wrong, nodes['dst'])
    issues = audit._audit(audit._read(), 0)
    assert [i.finding.kind for i in issues] == [audit.WRONG_PROVIDER]
    locked = threading.Event()
    release = threading.Event()

    def move_starts():
        # A step's transaction: the compare-and-swap on the instance, then more work.
        with session.writer() as s:
            s.query(models.Instance).filter_by(uuid=wrong).update(
                {'task_state': states.RESIZE_PREP})
            s.flush()
            locked.set()
            release.wait(30)

    t = threading.Thread(target=move_starts)
    t.start()
    assert locked.wait(30)
    result = {}
    r = threading.Thread(target=lambda: result.update(out=audit._repair(issues[0])))
    r.start()
    release.set()
    t.join(30)
    r.join(30)
    assert not r.is_alive()
    assert not result['out'].fixed and 'changed while auditing' in result['out'].detail
    assert db.get_allocations(wrong) == {nodes['dst']: SMALL}
