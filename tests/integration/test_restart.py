"""Kill a compute (SIGKILL) at each hop of a move, restart it, and check that the
instance, the migration record, the allocations and the guests on both hosts agree.

Every fake hypervisor operation takes OP_DELAY seconds here, so the test can catch a
compute in the middle of the hop it wants to interrupt.
"""

import json
import os
import signal
import time

import pytest

from novalite.db import api as db
from tests.rest import RestClient

pytestmark = pytest.mark.integration

OP_DELAY = 2.0


@pytest.fixture
def slow_cluster(start_slow_cluster):
    return start_slow_cluster(OP_DELAY, fake_driver__live_migration_bandwidth_mb_s=100,
                              DEFAULT__graceful_shutdown_timeout=1)


def guests(cluster, host):
    path = os.path.join(cluster.workdir, 'fake', f'{host}.json')
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:  # a host that never held a guest
        return {'guests': {}, 'resize_backups': {}, 'incoming': {}}


def kill_and_restart(cluster, host):
    cluster.stop_process(host, sig=signal.SIGKILL)
    cluster.start_process(host, 'compute', host)


def node_uuid(host):
    return db.compute_node_get_by_host_and_node(host)['uuid']


def assert_consistent(cluster, client, sid):
    """Exactly one host runs the guest, the one the API names; allocations match."""
    server = client.server(sid)
    assert server['OS-EXT-STS:task_state'] is None
    host = server['OS-EXT-SRV-ATTR:host']
    # Destination clean-ups are casts: give them a moment to land.
    client.wait_until(lambda: not any(sid in guests(cluster, h)['incoming']
                                      for h in cluster.compute_hosts),
                      timeout=15, message='destination cleaned up')
    holders = [h for h in cluster.compute_hosts if sid in guests(cluster, h)['guests']]
    assert holders == [host], (holders, host)
    allocs = db.get_allocations(sid)
    assert list(allocs) == [node_uuid(host)]
    for mig in db.migration_get_all(instance_uuid=sid):
        if mig['status'] in ('confirmed', 'reverted', 'error', 'failed', 'completed',
                             'cancelled'):
            assert db.get_allocations(mig['uuid']) == {}
    return server


def boot(client):
    sid = client.boot('crash', wait=False)['id']
    server = client.wait_for_server(sid, 'ACTIVE', timeout=60)
    return sid, server['OS-EXT-SRV-ATTR:host']


def wait_task(client, sid, task, timeout=30):
    client.wait_until(lambda: client.server(sid)['OS-EXT-STS:task_state'] == task,
                      timeout=timeout, message=f'task {task}')


def other(cluster, host):
    return [h for h in cluster.compute_hosts if h != host][0]


def test_dest_killed_in_prep_resize_rolls_back(slow_cluster):
    client = RestClient(slow_cluster.endpoint)
    sid, src = boot(client)
    client.action(sid, {'migrate': None})
    client.wait_until(lambda: (db.migration_get_all(instance_uuid=sid) or [{}])[0].get(
        'dest_compute'), message='destination chosen')
    # The choice is committed before prep_resize is cast: killed at once, the destination
    # may not have taken the message yet, and its next process then prepares the move
    # as asked (it completes). A quarter of the operation delay later the destination is
    # inside its prepare (OP_DELAY long), which is the kill this test is about.
    time.sleep(OP_DELAY / 4)
    kill_and_restart(slow_cluster, other(slow_cluster, src))
    server = client.wait_for_server(sid, 'ACTIVE', timeout=60)
    assert server['OS-EXT-SRV-ATTR:host'] == src
    assert db.migration_get_all(instance_uuid=sid)[0]['status'] == 'error'
    assert_consistent(slow_cluster, client, sid)


def test_source_killed_in_resize_instance_rolls_back(slow_cluster):
    client = RestClient(slow_cluster.endpoint)
    sid, src = boot(client)
    client.action(sid, {'migrate': None})
    wait_task(client, sid, 'resize_migrating')
    kill_and_restart(slow_cluster, src)
    server = client.wait_for_server(sid, 'ACTIVE', timeout=60)
    assert server['OS-EXT-SRV-ATTR:host'] == src
    assert db.migration_get_all(instance_uuid=sid)[0]['status'] == 'error'
    assert guests(slow_cluster, src)['guests'][sid]['power_state'] == 1
    assert_consistent(slow_cluster, client, sid)


def test_dest_killed_in_finish_resize_completes(slow_cluster):
    client = RestClient(slow_cluster.endpoint)
    sid, src = boot(client)
    dst = other(slow_cluster, src)
    client.action(sid, {'resize': {'flavorRef': '2'}})
    # The disks are on the destination and it is finishing (its one write ends the step).
    wait_task(client, sid, 'resize_migrated')
    kill_and_restart(slow_cluster, dst)
    server = client.wait_for_server(sid, 'VERIFY_RESIZE', timeout=60)
    assert server['OS-EXT-SRV-ATTR:host'] == dst
    assert db.migration_get_all(instance_uuid=sid)[0]['status'] == 'finished'
    assert_consistent(slow_cluster, client, sid)
    client.action(sid, {'confirmResize': None}, expect=204)
    client.wait_for_server(sid, 'ACTIVE', timeout=60)
    client.wait_until(lambda: db.migration_get_all(instance_uuid=sid)[0]['status'] ==
                      'confirmed', message='confirmed')
    assert_consistent(slow_cluster, client, sid)
    assert sid not in guests(slow_cluster, src)['resize_backups']


def test_source_killed_in_confirm_completes(slow_cluster):
    client = RestClient(slow_cluster.endpoint)
    sid, src = boot(client)
    client.action(sid, {'migrate': None})
    client.wait_for_server(sid, 'VERIFY_RESIZE', timeout=60)
    client.action(sid, {'confirmResize': None}, expect=204)
    client.wait_until(lambda: db.migration_get_all(instance_uuid=sid)[0]['status'] ==
                      'confirming', message='confirming')
    kill_and_restart(slow_cluster, src)
    client.wait_until(lambda: db.migration_get_all(instance_uuid=sid)[0]['status'] ==
                      'confirmed', timeout=60, message='confirmed after restart')
    server = client.wait_for_server(sid, 'ACTIVE', timeout=60)
    assert server['OS-EXT-SRV-ATTR:host'] == other(slow_cluster, src)
    assert_consistent(slow_cluster, client, sid)
    assert sid not in guests(slow_cluster, src)['resize_backups']


def test_dest_killed_in_revert_completes(slow_cluster):
    client = RestClient(slow_cluster.endpoint)
    sid, src = boot(client)
    client.action(sid, {'migrate': None})
    client.wait_for_server(sid, 'VERIFY_RESIZE', timeout=60)
    client.action(sid, {'revertResize': None})
    wait_task(client, sid, 'resize_reverting')
    kill_and_restart(slow_cluster, other(slow_cluster, src))
    server = client.wait_for_server(sid, 'ACTIVE', timeout=60)
    assert server['OS-EXT-SRV-ATTR:host'] == src
    client.wait_until(lambda: db.migration_get_all(instance_uuid=sid)[0]['status'] ==
                      'reverted', message='reverted')
    assert_consistent(slow_cluster, client, sid)


def test_source_killed_in_finish_revert_completes(slow_cluster):
    client = RestClient(slow_cluster.endpoint)
    sid, src = boot(client)
    client.action(sid, {'migrate': None})
    client.wait_for_server(sid, 'VERIFY_RESIZE', timeout=60)
    client.action(sid, {'revertResize': None})
    client.wait_until(lambda: db.migration_get_all(instance_uuid=sid)[0]['status'] ==
                      'reverted', timeout=30, message='reverted by the destination')
    kill_and_restart(slow_cluster, src)
    server = client.wait_for_server(sid, 'ACTIVE', timeout=60)
    assert server['OS-EXT-SRV-ATTR:host'] == src
    assert_consistent(slow_cluster, client, sid)


def test_live_migration_source_killed_keeps_guest_on_source(slow_cluster):
    client = RestClient(slow_cluster.endpoint)
    sid, src = boot(client)
    client.action(sid, {'os-migrateLive': {'host': None, 'block_migration': 'auto'}})
    client.wait_until(lambda: (db.migration_get_all(instance_uuid=sid) or [{}])[0].get(
        'status') == 'running', timeout=30, message='running')
    kill_and_restart(slow_cluster, src)
    client.wait_until(lambda: db.migration_get_all(instance_uuid=sid)[0]['status'] ==
                      'error', timeout=60, message='migration error after restart')
    server = client.wait_for_server(sid, 'ACTIVE', timeout=60)
    assert server['OS-EXT-SRV-ATTR:host'] == src
    assert_consistent(slow_cluster, client, sid)


def test_live_migration_dest_killed_still_completes(slow_cluster):
    client = RestClient(slow_cluster.endpoint)
    sid, src = boot(client)
    dst = other(slow_cluster, src)
    client.action(sid, {'os-migrateLive': {'host': None, 'block_migration': 'auto'}})
    client.wait_until(lambda: (db.migration_get_all(instance_uuid=sid) or [{}])[0].get(
        'status') == 'running', timeout=30, message='running')
    kill_and_restart(slow_cluster, dst)
    client.wait_until(lambda: db.migration_get_all(instance_uuid=sid)[0]['status'] in
                      ('completed', 'error', 'failed'), timeout=90, message='migration ended')
    server = client.wait_for_server(sid, 'ACTIVE', timeout=60)
    assert_consistent(slow_cluster, client, sid)
    assert server['OS-EXT-SRV-ATTR:host'] in (src, dst)


def test_compute_killed_while_spawning_builds_elsewhere(slow_cluster):
    # The compute writes nothing before it spawns: killed inside the spawn, its next
    # process finds the build without a guest and no request for it in its queue, and
    # gives it back; the conductor builds it on the other host.
    client = RestClient(slow_cluster.endpoint)
    sid = client.boot('crash', wait=False)['id']
    wait_task(client, sid, 'spawning')
    host = client.server(sid)['OS-EXT-SRV-ATTR:host']
    time.sleep(OP_DELAY / 2)  # inside the spawn (OP_DELAY long), its request taken
    kill_and_restart(slow_cluster, host)
    server = client.wait_for_server(sid, 'ACTIVE', timeout=60)
    assert server['OS-EXT-SRV-ATTR:host'] == other(slow_cluster, host)
    assert_consistent(slow_cluster, client, sid)


def test_build_waiting_in_the_queue_of_a_restarted_compute_is_built_there(slow_cluster):
    # The host was chosen and the request sent while its compute could not take it
    # (stopped, then killed): the next process finds the build without a guest, takes the
    # request from its queue and builds it there; nothing is given back.
    client = RestClient(slow_cluster.endpoint)
    host = slow_cluster.compute_hosts[0]
    slow_cluster.procs[host].send_signal(signal.SIGSTOP)
    sid = client.boot('queued', wait=False, availability_zone=f'nova:{host}')['id']
    wait_task(client, sid, 'spawning')
    assert client.server(sid)['OS-EXT-SRV-ATTR:host'] == host
    time.sleep(0.5)  # the request is in the stopped compute's queue
    kill_and_restart(slow_cluster, host)
    server = client.wait_for_server(sid, 'ACTIVE', timeout=60)
    assert server['OS-EXT-SRV-ATTR:host'] == host
    assert_consistent(slow_cluster, client, sid)
    # Nothing was rescheduled: the build's only compute event is the host's success.
    actions = client.get_json(f'/servers/{sid}/os-instance-actions')['instanceActions']
    create = client.get_json(f"/servers/{sid}/os-instance-actions/{actions[-1]['request_id']}")
    events = [(e['event'], e['result']) for e in create['instanceAction']['events']]
    assert ('compute__do_build_and_run_instance', 'Success') in events
    assert all(result == 'Success' for _, result in events), events
