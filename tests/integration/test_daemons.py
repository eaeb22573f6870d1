"""Every daemon its own OS process over real RabbitMQ and PostgreSQL (and MariaDB)."""

import signal

import pytest

from novalite.cluster import Cluster
from tests.rest import RestClient

pytestmark = pytest.mark.integration


def _hypervisor_states(client):
    return {h['hypervisor_hostname']: h['state']
            for h in client.get_json('/os-hypervisors')['hypervisors']}


def test_boot_resize_migrate_live_and_delete(cluster):
    client = RestClient(cluster.endpoint)
    assert _hypervisor_states(client) == {'compute1': 'up', 'compute2': 'up'}
    services = client.get_json('/os-services')['services']
    assert {s['binary'] for s in services} >= {'novalite-compute', 'novalite-conductor',
                                                'novalite-scheduler'}
    assert all(s['state'] == 'up' for s in services)

    sid = client.boot('int-1', wait=False)['id']
    server = client.wait_for_server(sid, 'ACTIVE')
    src = server['OS-EXT-SRV-ATTR:host']

    client.action(sid, {'resize': {'flavorRef': '2'}})
    server = client.wait_for_server(sid, 'VERIFY_RESIZE')
    assert server['OS-EXT-SRV-ATTR:host'] != src
    client.action(sid, {'confirmResize': None}, expect=204)
    server = client.wait_for_server(sid, 'ACTIVE')
    assert server['flavor']['original_name'] == 'm1.small'
    moved = server['OS-EXT-SRV-ATTR:host']

    client.action(sid, {'migrate': None})
    server = client.wait_for_server(sid, 'VERIFY_RESIZE')
    assert server['OS-EXT-SRV-ATTR:host'] != moved
    client.action(sid, {'revertResize': None})
    server = client.wait_for_server(sid, 'ACTIVE')
    assert server['OS-EXT-SRV-ATTR:host'] == moved

    client.action(sid, {'os-migrateLive': {'host': None, 'block_migration': 'auto'}})
    client.wait_until(lambda: client.server(sid)['OS-EXT-SRV-ATTR:host'] != moved and
                      client.server(sid)['OS-EXT-STS:task_state'] is None, message='live move')
    migs = client.get_json(f'/os-migrations?instance_uuid={sid}')['migrations']
    by_type = {}
    for m in migs:
        by_type.setdefault(m['migration_type'], []).append(m['status'])
    assert by_type == {'resize': ['confirmed'], 'migration': ['reverted'],
                       'live-migration': [client.wait_for_migration(
                           sid, 'live-migration')['status']]}

    client.request('DELETE', f'/servers/{sid}', expect=204)
    client.wait_for_server(sid, 'DELETED')


def test_compute_killed_and_restarted(cluster):
    client = RestClient(cluster.endpoint)
    sids = [client.boot(f'k-{i}', wait=False)['id'] for i in range(3)]
    hosts = {sid: client.wait_for_server(sid, 'ACTIVE')['OS-EXT-SRV-ATTR:host'] for sid in sids}
    victim = 'compute1'
    cluster.stop_process(victim, sig=signal.SIGKILL)
    client.wait_until(lambda: _hypervisor_states(client)[victim] == 'down', timeout=30,
                      message='compute1 reported down')
    # A server on the dead host cannot be stopped: 409, nothing changes.
    on_victim = [s for s, h in hosts.items() if h == victim]
    for sid in on_victim:
        r = client.action(sid, {'os-stop': None}, expect=None)
        assert r.status_int in (202, 409)
    cluster.start_process(victim, 'compute', victim)
    client.wait_until(lambda: _hypervisor_states(client)[victim] == 'up', timeout=30,
                      message='compute1 back up')
    for sid in sids:
        server = client.server(sid)
        assert server['status'] in ('ACTIVE', 'SHUTOFF')
    # The restarted compute found its guests again (fake state persisted on disk).
    for sid in on_victim:
        client.wait_until(lambda s=sid: client.server(s)['OS-EXT-STS:task_state'] is None,
                          message='stop settled')
    sid = client.boot('after-restart', wait=False)['id']
    client.wait_for_server(sid, 'ACTIVE')


def test_heartbeats_advance(cluster):
    client = RestClient(cluster.endpoint)
    first = {s['host'] + s['binary']: s['updated_at']
             for s in client.get_json('/os-services')['services']}
    client.wait_until(lambda: all(
        s['updated_at'] != first[s['host'] + s['binary']]
        for s in client.get_json('/os-services')['services']), timeout=15,
        message='every service heartbeat to advance')


def test_boot_on_mariadb(tmp_path, mysql_fresh_url, private_rabbit_url):
    c = Cluster(tmp_path / 'cluster', mysql_fresh_url, private_rabbit_url, computes=1)
    c.start()
    try:
        client = RestClient(c.endpoint)
        sid = client.boot('maria', wait=False)['id']
        assert client.wait_for_server(sid, 'ACTIVE')['OS-EXT-SRV-ATTR:host'] == 'compute1'
    finally:
        c.stop()


def test_eventlet_mode_boots_a_server(tmp_path, pg_fresh_url, private_rabbit_url):
    c = Cluster(tmp_path / 'cluster', pg_fresh_url, private_rabbit_url, computes=1)
    c.start(env={'NOVALITE_EVENTLET': '1'})
    try:
        for name in ('api', 'conductor', 'scheduler', 'compute1'):
            assert 'under eventlet green threads' in c.log_tail(name, 400), name
        client = RestClient(c.endpoint)
        sid = client.boot('green', wait=False)['id']
        assert client.wait_for_server(sid, 'ACTIVE')['status'] == 'ACTIVE'
    finally:
        c.stop()
