"""A request no host can satisfy: the per-filter explanation for admins, Nova's generic
message for everyone else, nothing allocated; and the conductor's orphan reconcile."""

import datetime

from novalite import context
from novalite.db import api as db


def _huge_flavor(cloud):
    cloud.request('POST', '/flavors', {'flavor': {'name': 'huge', 'ram': 40000, 'vcpus': 1,
                                                  'disk': 1, 'id': 'huge'}}, expect=200)


def test_explanation_for_admin_generic_for_owner(cloud):
    db.quota_set('demo', 'ram', 10 ** 6)
    _huge_flavor(cloud)
    server = cloud.boot('nope', flavor='huge', wait=False, token='alice:demo')
    sid = server['id']
    owner_view = cloud.wait_for_server(sid, 'ERROR', token='alice:demo')
    assert owner_view['fault']['message'] == (
        'No valid host was found. There are not enough hosts available.')
    assert 'details' not in owner_view['fault'] or 'RamFilter' not in (
        owner_view['fault'].get('details') or '')
    admin_view = cloud.server(sid)
    details = admin_view['fault']['details']
    assert 'RamFilter removed 3 of 3 hosts' in details
    for host in ('compute1', 'compute2', 'compute3'):
        assert f'{host}: free RAM' in details
    assert db.get_allocations(sid) == {}
    # The instance action's event carries the same explanation for admins (2.84+).
    req = cloud.get_json(f'/servers/{sid}/os-instance-actions', version='2.84')[
        'instanceActions'][0]['request_id']
    action = cloud.get_json(f'/servers/{sid}/os-instance-actions/{req}', version='2.84')[
        'instanceAction']
    assert action['message'] == 'Error'
    event = [e for e in action['events']
             if e['event'] == 'conductor_schedule_and_build_instances'][0]
    assert event['result'] == 'Error'
    assert 'RamFilter' in event['details']
    owner_action = cloud.get_json(f'/servers/{sid}/os-instance-actions/{req}', version='2.84',
                                  token='alice:demo')['instanceAction']
    assert all('details' not in e and 'traceback' not in e for e in owner_action['events'])


def test_build_failure_reschedules_then_errors(cloud):
    for host in ('compute1', 'compute2', 'compute3'):
        cloud.hypervisor(host).inject_failure('spawn', f'{host} cannot spawn', count=None)
    server = cloud.boot('fails', wait=False)
    sid = server['id']
    view = cloud.wait_for_server(sid, 'ERROR')
    assert 'Exceeded maximum number of retries' in view['fault']['message']
    assert db.get_allocations(sid) == {}
    assert all(sid not in cloud.hypervisor(h).guests for h in ('compute1', 'compute2',
                                                                  'compute3'))


def test_build_reschedule_succeeds_on_alternate(cloud):
    cloud.hypervisor('compute1').inject_failure('spawn', 'bad host', count=None)
    cloud.hypervisor('compute2').inject_failure('spawn', 'bad host', count=None)
    server = cloud.boot('lucky')
    assert server['OS-EXT-SRV-ATTR:host'] == 'compute3'


def test_conductor_reconciles_orphaned_operations(cloud):
    flavor = db.flavor_record(db.flavor_get_by_flavorid('1'))
    old = datetime.datetime(2020, 1, 1)
    stuck = db.instance_create({'display_name': 'orphan', 'project_id': 'p', 'user_id': 'u',
                                'flavor': flavor, 'vm_state': 'building',
                                'task_state': 'scheduling', 'updated_at': old})
    active = cloud.boot('moving')
    mig = db.migration_create({'instance_uuid': active['id'], 'status': 'pre-migrating',
                               'migration_type': 'migration',
                               'source_compute': active['OS-EXT-SRV-ATTR:host']})
    db.move_allocations(active['id'], mig['uuid'])
    db.instance_update(active['id'], {'task_state': 'resize_prep', 'updated_at': old})
    # updated_at is set by every update; push it back into the past for the test.
    from novalite.db import models, session
    with session.writer() as s:
        s.query(models.Instance).filter(models.Instance.uuid == active['id']).update(
            {'updated_at': old})
        s.query(models.Migration).filter(models.Migration.uuid == mig['uuid']).update(
            {'updated_at': old})
    reconciler = cloud.aio.services[0].manager.reconciler
    # No conductor ever took these (task_driver is empty) and they are older than
    # stuck_operation_timeout: both are rolled back.
    fixed = reconciler.run(context.get_admin_context())
    assert fixed == 2
    # The build nothing drove is scheduled and built again (the table's resend).
    cloud.wait_until(lambda: db.instance_get(stuck['uuid'])['vm_state'] == 'active',
                     message='orphaned build finished')
    assert db.instance_get(stuck['uuid'])['task_driver'] is None
    moved = db.instance_get(active['id'])
    assert (moved['vm_state'], moved['task_state']) == ('active', None)
    assert db.migration_get(mig['uuid'])['status'] == 'error'
    assert db.get_allocations(mig['uuid']) == {}
    assert list(db.get_allocations(active['id']).values()) == [
        {'VCPU': 1, 'MEMORY_MB': 512, 'DISK_GB': 1}]
    # Running it again changes nothing.
    assert reconciler.run(context.get_admin_context()) == 0
