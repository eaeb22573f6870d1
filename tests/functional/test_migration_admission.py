"""Live-migration limits through REST: a move past its policy's cluster-wide, outbound
or inbound limit waits "queued" in the conductor, starts when a slot frees, can be
aborted while it waits, and live_slots_free() tells a drain how many may start."""

import json

import pytest

from novalite.conductor import admission
from novalite.db import api as db

HOSTS = ('compute1', 'compute2', 'compute3')


@pytest.fixture
def limited(cloud_factory, tmp_path):
    def make(**default):
        path = tmp_path / 'policies.yaml'
        path.write_text(json.dumps({'policies': {'default': default}}))
        return cloud_factory(**{'migration.policy_file': str(path),
                                'migration.admission_interval': 0.1,
                                'max_concurrent_live_migrations': 0})
    return make


def _slow(cloud, mb_s):
    for h in HOSTS:
        cloud.hypervisor(h).live_migration_bandwidth_mb_s = mb_s


def _live(cloud, sid, host=None, version='2.34'):
    cloud.request('POST', f'/servers/{sid}/action',
                  {'os-migrateLive': {'host': host, 'block_migration': 'auto'}},
                  version=version, expect=202)


def _mig(cloud, sid, *statuses, timeout=30):
    return cloud.wait_for_migration(sid, 'live-migration', statuses, timeout=timeout)


def _log(mig_uuid):
    return [e['decision'] for e in db.migration_get(mig_uuid)['policy_log']]


def test_cluster_limit_queues_the_second_until_the_first_ends(limited):
    cloud = limited(max_parallel=1)
    a = cloud.boot('a', availability_zone='nova:compute1', flavor='2')['id']
    b = cloud.boot('b', availability_zone='nova:compute2')['id']
    _slow(cloud, 4000)
    _live(cloud, a, 'compute3')
    _mig(cloud, a, 'running')
    assert admission.live_slots_free('compute1') == 0
    assert admission.live_slots_free('compute2') == 0
    _live(cloud, b, 'compute3')
    waiting = _mig(cloud, b, 'queued')
    assert db.instance_get(b)['task_driver']  # the conductor holds it, not compute2
    assert _log(waiting['uuid']) == ['policy_selected', 'waiting_for_slot']
    assert 'allows 1' in db.migration_get(waiting['uuid'])['policy_log'][1]['detail']
    assert cloud.hypervisor('compute3').incoming.get(b) is None
    done = _mig(cloud, a, 'completed')
    assert done['status'] == 'completed'
    _mig(cloud, b, 'completed')
    assert _log(waiting['uuid']) == ['policy_selected', 'waiting_for_slot', 'admitted']
    cloud.wait_until(lambda: cloud.server(b)['OS-EXT-STS:task_state'] is None)
    assert cloud.server(b)['OS-EXT-SRV-ATTR:host'] == 'compute3'
    assert admission.live_slots_free('compute2') == 1


def test_inbound_limit(limited):
    cloud = limited(max_inbound_per_host=1)
    a = cloud.boot('a', availability_zone='nova:compute1', flavor='2')['id']
    b = cloud.boot('b', availability_zone='nova:compute2')['id']
    c = cloud.boot('c', availability_zone='nova:compute2')['id']
    _slow(cloud, 4000)
    _live(cloud, a, 'compute3')
    _mig(cloud, a, 'running')
    _live(cloud, b, 'compute3')
    _mig(cloud, b, 'queued')
    # Another destination is not limited.
    _live(cloud, c, 'compute1')
    _mig(cloud, c, 'completed')
    assert admission.live_slots_free('compute2') == admission.UNLIMITED
    _mig(cloud, b, 'completed')


def test_outbound_limit_and_slots_free(limited):
    cloud = limited(max_outbound_per_host=2)
    servers = [cloud.boot(f's{i}', availability_zone='nova:compute1', flavor='2')['id']
               for i in range(3)]
    assert admission.live_slots_free('compute1') == 2
    _slow(cloud, 4000)
    for sid in servers:
        _live(cloud, sid)
    # Whichever request the conductor took last waits.
    statuses = cloud.wait_until(lambda: (lambda st: st.count('queued') == 1 and
                                         st.count('running') == 2 and st)(
        [cloud.migrations(sid, 'live-migration')[0]['status'] for sid in servers]),
        timeout=20, message='two running, one queued')
    assert sorted(statuses) == ['queued', 'running', 'running']
    assert admission.live_slots_free('compute1') == 0
    assert admission.live_slots_free('compute2') == 2
    for sid in servers:
        _mig(cloud, sid, 'completed')
    assert admission.live_slots_free('compute1') == 2


def test_abort_while_waiting_for_a_slot(limited):
    cloud = limited(max_parallel=1)
    a = cloud.boot('a', availability_zone='nova:compute1', flavor='2')['id']
    b = cloud.boot('b', availability_zone='nova:compute2')['id']
    src_node = db.compute_node_get_by_host_and_node('compute2')['uuid']
    _slow(cloud, 4000)
    _live(cloud, a, 'compute3')
    _mig(cloud, a, 'running')
    _live(cloud, b)
    mig = _mig(cloud, b, 'queued')
    assert cloud.request('DELETE', f"/servers/{b}/migrations/{mig['id']}",
                         version='2.24').status_int == 400
    cloud.request('DELETE', f"/servers/{b}/migrations/{mig['id']}", version='2.65',
                  expect=202)
    assert _mig(cloud, b, 'cancelled')['status'] == 'cancelled'
    server = cloud.wait_until(lambda: (lambda s: s['OS-EXT-STS:task_state'] is None and s)(
        cloud.server(b)))
    assert server['status'] == 'ACTIVE' and server['OS-EXT-SRV-ATTR:host'] == 'compute2'
    assert db.get_allocations(b) == {src_node: {'VCPU': 1, 'MEMORY_MB': 512, 'DISK_GB': 1}}
    assert db.get_allocations(mig['uuid']) == {}
    _mig(cloud, a, 'completed')
    # The waiting conductor let it go: it never started.
    assert all(b not in cloud.hypervisor(h).incoming for h in HOSTS)
    assert db.migration_get(mig['uuid'])['status'] == 'cancelled'


def test_a_restarted_conductor_rolls_back_what_it_held(limited):
    from novalite import context
    cloud = limited(max_parallel=1)
    a = cloud.boot('a', availability_zone='nova:compute1', flavor='2')['id']
    b = cloud.boot('b', availability_zone='nova:compute2')['id']
    _slow(cloud, 4000)
    _live(cloud, a, 'compute3')
    _mig(cloud, a, 'running')
    _live(cloud, b)
    mig = _mig(cloud, b, 'queued')
    conductor = cloud.aio.services[0].manager
    conductor.reconciler.run(context.get_admin_context(), at_start=True)
    assert db.migration_get(mig['uuid'])['status'] == 'error'
    assert db.instance_get(b)['task_state'] is None
    _mig(cloud, a, 'completed')
