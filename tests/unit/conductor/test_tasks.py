"""Conductor tasks against a real SQLite database, with the scheduler and computes
replaced by small recorders: what each task writes, and what its rollback leaves."""

import types

import pytest

from novalite import context, exception
from novalite.compute import states
from novalite.conductor import reconcile
from novalite.conductor.tasks import base, migrate
from novalite.db import api as db

MS = states.MS
RESOURCES = {'vcpus': 2, 'memory_mb': 2048, 'local_gb': 20}
FLAVOR = {'id': 1, 'flavorid': '1', 'vcpus': 1, 'memory_mb': 1024, 'root_gb': 10,
          'ephemeral_gb': 0, 'swap': 0}
CLAIM = {'VCPU': 1, 'MEMORY_MB': 1024, 'DISK_GB': 10}


@pytest.fixture
def nodes(sqlite_db):
    return sqlite_db(RESOURCES, 'src', 'dst', 'full')


class Scheduler:
    """Claims like the real one: the chosen host for the instance, replacing its claim."""

    def __init__(self, nodes, pick=None, error=None):
        self.nodes, self.pick, self.error = nodes, pick, error

    def select_destinations(self, ctxt, spec, uuids, return_alternates=True):
        if self.error:
            raise self.error
        node = self.nodes[self.pick]
        db.claim_resources(uuids[0], {node['uuid']: CLAIM}, replace=True)
        return [[{'host': self.pick, 'nodename': self.pick, 'compute_node_uuid':
                  node['uuid']}]]


class Computes:
    def __init__(self):
        self.sent = []

    def prep_resize(self, ctxt, host, instance, flavor, migration, spec, alternates):
        self.sent.append(('prep_resize', host, migration['uuid']))


def _manager(scheduler):
    return types.SimpleNamespace(host='conductor-1', scheduler_rpcapi=scheduler,
                                 compute_rpcapi=Computes(),
                                 driven=reconcile.Driven())


def _instance(nodes):
    inst = db.instance_create({'display_name': 'x', 'project_id': 'p', 'user_id': 'u',
                               'host': 'src', 'node': 'src', 'vm_state': states.ACTIVE,
                               'task_state': states.RESIZE_PREP, 'flavor': FLAVOR})
    db.claim_resources(inst['uuid'], {nodes['src']['uuid']: CLAIM}, project_id='p',
                       user_id='u')
    ctxt = context.get_admin_context()
    db.action_start(inst['uuid'], 'migrate', ctxt.request_id)
    return inst, ctxt


def _events(inst, ctxt):
    action = db.action_get_by_request_id(inst['uuid'], ctxt.request_id)
    return sorted((e['event'], e['result']) for e in db.action_events_get(action['id']))


def test_cold_migration_records_the_destination_and_hands_over(nodes):
    inst, ctxt = _instance(nodes)
    manager = _manager(Scheduler(nodes, pick='dst'))
    migrate.MigrationTask(manager, ctxt, inst['uuid'], None).run()
    mig = db.migration_get_all(instance_uuid=inst['uuid'])[0]
    assert (mig['status'], mig['dest_compute'], mig['migration_type']) == \
        (MS.PRE_MIGRATING, 'dst', states.COLD_MIGRATION)
    # The migration holds the source, the instance the destination.
    assert db.get_allocations(mig['uuid']) == {nodes['src']['uuid']: CLAIM}
    assert db.get_allocations(inst['uuid']) == {nodes['dst']['uuid']: CLAIM}
    assert manager.compute_rpcapi.sent == [('prep_resize', 'dst', mig['uuid'])]
    assert _events(inst, ctxt) == [('cold_migrate', 'Success'),
                                   ('conductor_migrate_server', 'Success')]


def test_no_valid_host_rolls_back_in_one_write(nodes):
    inst, ctxt = _instance(nodes)
    error = exception.NoValidHost(reason='none fits', explanation={'RamFilter': {}})
    manager = _manager(Scheduler(nodes, error=error))
    migrate.MigrationTask(manager, ctxt, inst['uuid'], None).run()
    mig = db.migration_get_all(instance_uuid=inst['uuid'])[0]
    assert mig['status'] == MS.ERROR
    assert db.get_allocations(inst['uuid']) == {nodes['src']['uuid']: CLAIM}
    assert db.get_allocations(mig['uuid']) == {}
    after = db.instance_get(inst['uuid'])
    assert (after['vm_state'], after['task_state'], after['host']) == \
        (states.ACTIVE, None, 'src')
    fault = db.fault_get_latest([inst['uuid']])[inst['uuid']]
    assert fault['message'].startswith('No valid host was found')
    assert _events(inst, ctxt) == [('cold_migrate', 'Error'),
                                   ('conductor_migrate_server', 'Error')]
    assert manager.compute_rpcapi.sent == []


def test_a_task_for_an_instance_no_longer_resizing_changes_nothing(nodes):
    inst, ctxt = _instance(nodes)
    db.instance_update(inst['uuid'], {'task_state': None})
    migrate.MigrationTask(_manager(Scheduler(nodes, pick='dst')), ctxt, inst['uuid'],
                          None).run()
    assert db.migration_get_all(instance_uuid=inst['uuid']) == []
    assert db.get_allocations(inst['uuid']) == {nodes['src']['uuid']: CLAIM}


def test_next_alternate_skips_hosts_without_room(nodes):
    inst, _ = _instance(nodes)
    for n in range(2):
        db.claim_resources(f'filler-{n}', {nodes['full']['uuid']: CLAIM})
    alternates = [{'host': h, 'nodename': h, 'compute_node_uuid': nodes[h]['uuid']}
                  for h in ('full', 'dst')]
    chosen = base.claim_next_alternate(inst, FLAVOR, alternates)
    assert chosen['host'] == 'dst' and alternates == []
    assert db.get_allocations(inst['uuid']) == {nodes['dst']['uuid']: CLAIM}
    assert base.claim_next_alternate(inst, FLAVOR, []) is None
