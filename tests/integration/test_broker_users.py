"""Each compute talks to RabbitMQ as its own user whose permissions reach only its own
queues (the README's security recipe, ``novalite-manage broker compute-user``): moves
still work end to end, and that user cannot read, bind to or publish what is not its own."""

import os
import shutil
import subprocess
import uuid

import kombu
import pytest

from novalite import broker
from novalite.cluster import Cluster
from tests.rest import RestClient

pytestmark = pytest.mark.integration


def _ctl(*args):
    subprocess.run(['rabbitmqctl', '-q', *args], check=True, capture_output=True)


@pytest.fixture
def confined_cluster(tmp_path, pg_fresh_url, private_rabbit_url):
    if not shutil.which('rabbitmqctl') or private_rabbit_url.rstrip('/').count('/') < 3:
        if os.environ.get('NOVALITE_REQUIRE_SERVICES') == '1':
            pytest.fail('rabbitmqctl and a private vhost are needed')
        pytest.skip('rabbitmqctl and a private vhost are needed')
    base, vhost = private_rabbit_url.rstrip('/').rsplit('/', 1)
    hostport = base.split('@', 1)[1]
    c = Cluster(tmp_path / 'cluster', pg_fresh_url, private_rabbit_url, computes=2)
    users = {}
    for host in c.compute_hosts:
        user, password = f'nl-{host}-{uuid.uuid4().hex[:6]}', uuid.uuid4().hex
        _ctl('add_user', user, password)
        for cmd in broker.rabbitmqctl_commands(host, user, vhost, c.exchange):
            _ctl(*cmd)
        users[host] = (user, password)
    c.host_transport_urls = {h: f'rabbit://{u}:{p}@{hostport}/{vhost}'
                             for h, (u, p) in users.items()}
    try:
        c.start()
        yield c, users, f'{hostport}/{vhost}'
    finally:
        c.stop()
        for user, _ in users.values():
            subprocess.run(['rabbitmqctl', '-q', 'delete_user', user], capture_output=True)


def _attempt(url, fn):
    try:
        with kombu.Connection(url, connect_timeout=5) as conn:
            fn(conn.channel())
        return 'allowed'
    except Exception as exc:  # the broker closes the channel with 403 ACCESS_REFUSED
        return 'refused' if 'ACCESS_REFUSED' in str(exc) else f'{type(exc).__name__}: {exc}'


def test_confined_computes_move_and_cannot_reach_each_other(confined_cluster):
    cluster, users, where = confined_cluster
    client = RestClient(cluster.endpoint)
    sid = client.boot('confined', wait=False)['id']
    src = client.wait_for_server(sid)['OS-EXT-SRV-ATTR:host']
    client.action(sid, {'migrate': None})
    dst = client.wait_for_server(sid, 'VERIFY_RESIZE')['OS-EXT-SRV-ATTR:host']
    assert dst != src
    client.action(sid, {'confirmResize': None}, expect=204)
    client.wait_for_server(sid, 'ACTIVE')
    client.action(sid, {'os-migrateLive': {'host': None, 'block_migration': 'auto'}})
    client.wait_until(lambda: client.server(sid)['OS-EXT-SRV-ATTR:host'] == src and
                      client.server(sid)['OS-EXT-STS:task_state'] is None,
                      message='live migration back to the first host')

    user, password = users['compute1']
    url = f'amqp://{user}:{password}@{where}'
    ex = kombu.Exchange(cluster.exchange, type='topic', durable=False)

    def queue(name, key):
        return lambda ch: kombu.Queue(name, ex, routing_key=key, durable=False)(ch).declare()

    def publish(key):
        def send(ch):
            kombu.Producer(ch, exchange=ex).publish({}, routing_key=key)
            ch.basic_qos(0, 1, False)  # a synchronous round trip: a refusal shows here
        return send

    assert _attempt(url, queue('compute.compute1', 'compute.compute1')) == 'allowed'
    assert _attempt(url, queue('compute.compute2', 'compute.compute2')) == 'refused'
    assert _attempt(url, queue('compute.compute1', 'compute.compute2')) == 'refused'
    assert _attempt(url, queue('conductor', 'conductor')) == 'refused'
    assert _attempt(url, publish('conductor')) == 'allowed'
    assert _attempt(url, publish('scheduler')) == 'refused'
