"""A horizontal control plane: two API processes, two schedulers and two conductors
(each its own process, no leader, nothing shared but the database and the bus) in front
of three computes, over RabbitMQ and PostgreSQL.

Boots race in through both APIs until the hosts are full: no provider is ever allocated
beyond its capacity, and every server that went ACTIVE runs on the host it is recorded
on. Then every server is live-migrated at once through both APIs while one conductor is
SIGKILLed: every move settles, with the allocations only where the servers are.
"""

import concurrent.futures
import json
import os
import signal

import pytest
import requests

from novalite.cluster import Cluster, free_port
from novalite.conf import CONF
from novalite.db import api as db
from novalite.db import session
from tests.rest import RestClient

pytestmark = pytest.mark.integration

COMPUTES = 3
BOOTS = 24
FINAL = ('completed', 'failed', 'error', 'cancelled')


@pytest.fixture
def plane(tmp_path, pg_fresh_url, private_rabbit_url):
    # Hosts of 2 GiB (512 MiB reserved): three m1.tiny-sized servers each.
    c = Cluster(tmp_path / 'plane', pg_fresh_url, private_rabbit_url, computes=COMPUTES,
                extra_conf={'fake_driver.memory_mb': 2048,
                            'fake_driver.live_migration_bandwidth_mb_s': 2000,
                            'DEFAULT.graceful_shutdown_timeout': 1})
    port2 = free_port()
    try:
        c.start(timeout=120)
        # The second API listens on a port of its own.
        c.start_process('api2', 'api', 'ctl2', conf={'osapi_compute_listen_port': port2})
        c.start_process('scheduler2', 'scheduler', 'ctl2')
        c.start_process('conductor2', 'conductor', 'ctl2')
        CONF.set_override('connection', pg_fresh_url, group='database')
        session.set_engine(None)
        one = RestClient(c.endpoint, wait_timeout=90.0, poll_interval=0.2)
        two = RestClient(f'http://127.0.0.1:{port2}', wait_timeout=90.0,
                         poll_interval=0.2)
        one.wait_until(lambda: {s['host'] for s in db.service_get_all()
                                if s['binary'] in ('novalite-scheduler', 'novalite-conductor')
                                and s['report_count']} == {'ctl', 'ctl2'},
                       message='both schedulers and conductors consuming')
        two.wait_until(lambda: _answers(two), message='second API answering')
        one.request('PUT', '/os-quota-sets/admin', {'quota_set': {
            'instances': 100, 'cores': 200, 'ram': 10 ** 6}}, expect=200)
        yield c, one, two
    finally:
        c.stop()
        session.set_engine(None)
        CONF.clear_override('connection', group='database')


def _answers(client) -> bool:
    """The API answers (a refused connection: not listening yet)."""
    try:
        return client.request('GET', '/servers').status_int == 200
    except requests.ConnectionError:
        return False


def _guests(cluster, host):
    try:
        with open(os.path.join(cluster.workdir, 'fake', f'{host}.json')) as f:
            return set(json.load(f)['guests'])
    except FileNotFoundError:
        return set()


def _assert_within_capacity():
    for node in db.compute_node_get_all():
        inventories = db.provider_inventories(node['uuid'])
        usages = db.provider_usages(node['uuid'])
        for rc, inv in inventories.items():
            capacity = (inv['total'] - inv['reserved']) * inv['allocation_ratio']
            assert usages.get(rc, 0) <= capacity, (node['host'], rc, usages, inv)


def _assert_placed(cluster, client, sids):
    node_of = {n['host']: n['uuid'] for n in db.compute_node_get_all()}
    holders = {h: _guests(cluster, h) for h in cluster.compute_hosts}
    for sid in sids:
        server = client.server(sid)
        assert server['OS-EXT-STS:task_state'] is None, server
        host = server['OS-EXT-SRV-ATTR:host']
        assert [h for h, g in holders.items() if sid in g] == [host]
        assert list(db.get_allocations(sid)) == [node_of[host]]


def test_two_of_each_never_over_commit_and_settle_after_a_conductor_kill(plane):
    cluster, one, two = plane
    image = db.image_get_all()[0]['uuid']

    def boot(i):
        client = (one, two)[i % 2]
        body = {'server': {'name': f'h-{i}', 'flavorRef': '1', 'networks': 'none',
                           'imageRef': image}}
        return client.request('POST', '/servers', body, expect=202).data['server']['id']

    with concurrent.futures.ThreadPoolExecutor(BOOTS) as pool:
        sids = list(pool.map(boot, range(BOOTS)))

    def settled():
        servers = [one.server(s) for s in sids]
        return all(s['status'] in ('ACTIVE', 'ERROR') for s in servers) and servers
    servers = one.wait_until(settled, message='every boot settled')
    active = [s['id'] for s in servers if s['status'] == 'ACTIVE']
    errors = [s for s in servers if s['status'] == 'ERROR']
    _assert_within_capacity()
    # 3 hosts x 3 servers fit; the rest found no host and hold nothing.
    assert 0 < len(active) <= 9 and len(active) + len(errors) == BOOTS
    assert all('No valid host' in s['fault']['message'] for s in errors)
    assert all(db.get_allocations(s['id']) == {} for s in errors)
    for s in errors:
        one.request('DELETE', f"/servers/{s['id']}", expect=204)
    _assert_placed(cluster, one, active)

    # Free one host's worth of room, then move everything at once through both APIs
    # while a conductor dies.
    for sid in active[:3]:
        two.request('DELETE', f'/servers/{sid}', expect=204)
    moving = active[3:]
    one.wait_until(lambda: all(db.get_allocations(s) == {} for s in active[:3]),
                   message='deleted servers released')

    def live(i_sid):
        i, sid = i_sid
        client = (one, two)[i % 2]
        return client.request('POST', f'/servers/{sid}/action', {'os-migrateLive': {
            'host': None, 'block_migration': 'auto'}}, version='2.34').status_int
    with concurrent.futures.ThreadPoolExecutor(len(moving)) as pool:
        codes = list(pool.map(live, enumerate(moving)))
    assert set(codes) <= {202, 409}, codes
    cluster.stop_process('conductor2', sig=signal.SIGKILL)

    def moves_settled():
        migs = [m for s in moving for m in db.migration_get_all(instance_uuid=s)]
        servers = [one.server(s) for s in moving]
        return (all(m['status'] in FINAL for m in migs)
                and all(s['OS-EXT-STS:task_state'] is None for s in servers))
    one.wait_until(moves_settled, timeout=90, message='every move settled')
    _assert_within_capacity()
    _assert_placed(cluster, one, moving)
    for sid in moving:
        for mig in db.migration_get_all(instance_uuid=sid):
            assert db.get_allocations(mig['uuid']) == {}
