"""Moves over a three-node RabbitMQ cluster with quorum queues: SIGKILL the node that
holds the most client connections (and leads some of the queues) while cold and live
migrations are in flight; every move still completes, the queues stay quorum queues
led by the surviving nodes, and instance, migration, allocations and guests agree.
"""

import signal
import time

import pytest

from novalite.cluster import Cluster
from novalite.db import api as db
from novalite.db import session
from tests import rabbit_cluster
from tests.integration.helpers import use_cluster_database
from tests.integration.test_restart import assert_consistent, guests
from tests.rest import RestClient, wait_until

pytestmark = pytest.mark.integration

OP_DELAY = 1.5
FINAL = ('confirmed', 'completed', 'reverted', 'error', 'failed', 'cancelled')


@pytest.fixture
def rabbit(tmp_path, require_service):
    require_service('rabbitmq-server (3-node cluster)', _installed)
    rc = rabbit_cluster.RabbitCluster(tmp_path / 'rabbit')
    rc.start()
    try:
        yield rc
    finally:
        rc.stop()


def _installed():
    if why := rabbit_cluster.missing():
        raise RuntimeError(why)


@pytest.fixture
def quorum_cluster(tmp_path, pg_fresh_url, rabbit):
    c = Cluster(tmp_path / 'cluster', pg_fresh_url, rabbit.transport_url(), computes=2,
                service_down_time=20, extra_conf={
                    # What the README recommends for a clustered broker.
                    'oslo_messaging_rabbit.rabbit_quorum_queue': 'true',
                    'oslo_messaging_rabbit.heartbeat_timeout_threshold': 10,
                    'oslo_messaging_rabbit.kombu_failover_strategy': 'round-robin',
                    'fake_driver.operation_delay': OP_DELAY,
                    'fake_driver.live_migration_bandwidth_mb_s': 100,
                    'DEFAULT.graceful_shutdown_timeout': 1})
    try:
        c.start()
        use_cluster_database(c)
        yield c
    finally:
        # Computes (together) before the conductor, whose answers their graceful stop
        # would await.
        first = ['api', *c.compute_hosts]
        for name in first:
            if name in c.procs and c.procs[name].poll() is None:
                c.procs[name].send_signal(signal.SIGTERM)
        for name in first:
            c.stop_process(name)
        c.stop()
        session.set_engine(None)


def _migration(sid):
    return (db.migration_get_all(instance_uuid=sid) or [{}])[0]


def _leaders(rabbit, node):
    """Quorum queue name -> the node number leading it, as ``node`` sees it."""
    return {row[0]: rabbit.names.index(row[2]) + 1
            for row in rabbit.queues(node, 'name', 'type', 'leader') if row[1] == 'quorum'}


def test_moves_settle_when_a_rabbitmq_node_dies(quorum_cluster, rabbit):
    c = quorum_cluster
    client = RestClient(c.endpoint)
    ids = [client.boot(f'q{i}', wait=False)['id'] for i in range(4)]
    sources = {sid: client.wait_for_server(sid, 'ACTIVE', timeout=60)['OS-EXT-SRV-ATTR:host']
               for sid in ids}
    # One live migration from each host where possible: a host runs one at a time and
    # queues the next, which would only make the test longer.
    live = list({sources[sid]: sid for sid in ids}.values())[:2]
    live += [sid for sid in ids if sid not in live][:2 - len(live)]
    cold = [sid for sid in ids if sid not in live]

    # The topic queues are quorum queues, replicated on all three nodes.
    leaders = _leaders(rabbit, 1)
    assert {'conductor', 'conductor_priority', 'scheduler', 'compute.compute1',
            'compute.compute2', 'compute_priority.compute1'} <= set(leaders)

    for sid in cold:
        client.action(sid, {'migrate': None})
    for sid in live:
        client.action(sid, {'os-migrateLive': {'host': None, 'block_migration': 'auto'}})
    # In flight: a destination chosen for each, a live copy running (a second one
    # from the same source may wait its turn).
    wait_until(lambda: all(_migration(sid).get('dest_compute') for sid in cold) and
               any(_migration(sid).get('status') == 'running' for sid in live),
               timeout=30, interval=0.1, message=lambda: 'every move under way; ' + str(
                   [(m.get('migration_type'), m.get('status')) for m in map(_migration, ids)]))
    assert not any(_migration(sid).get('status') in FINAL for sid in ids)

    # Kill the node holding the daemons' connections and most queue leaders.
    conns = rabbit.connections(1)
    victim = max(conns, key=lambda n: (conns[n], list(leaders.values()).count(n)))
    print(f'connections per node {conns}; killing node {victim}, which leads '
          f'{list(leaders.values()).count(victim)} of {len(leaders)} quorum queues')
    killed_at = time.monotonic()
    rabbit.kill(victim)
    survivor = next(n for n in rabbit.running() if n != victim)

    for sid in cold:
        client.wait_for_server(sid, 'VERIFY_RESIZE', timeout=60)
        client.action(sid, {'confirmResize': None}, expect=204)
    for sid in cold:
        client.wait_until(lambda sid=sid: _migration(sid).get('status') == 'confirmed',
                          timeout=60, message=f'{sid} confirmed')
    for sid in live:
        client.wait_until(lambda sid=sid: _migration(sid).get('status') in FINAL, timeout=60,
                          message=f'{sid} live migration ended')
    settled = time.monotonic() - killed_at

    for sid in ids:
        server = client.wait_for_server(sid, 'ACTIVE', timeout=30)
        assert_consistent(c, client, sid)
        # Nothing lost: every move finished, none was rolled back.
        assert _migration(sid)['status'] in ('confirmed', 'completed'), _migration(sid)
        assert server['OS-EXT-SRV-ATTR:host'] != sources[sid]
        assert sid not in guests(c, sources[sid])['resize_backups']

    # The queues are still quorum queues, now led by the surviving nodes, and drained.
    rows = rabbit.queues(survivor, 'name', 'type', 'leader', 'messages')
    topic = {r[0]: r for r in rows if r[0] in leaders}
    assert set(topic) == set(leaders)
    assert all(r[1] == 'quorum' and r[2] != rabbit.names[victim - 1] for r in topic.values())
    def backlog():  # of RPC requests (nothing consumes notifications here)
        # Ready messages only: heartbeats keep arriving on the priority queues, and one
        # being delivered is not a backlog.
        return {r[0]: r[1:] for r in rabbit.queues(survivor, 'name', 'messages_ready',
                                                   'consumers')
                if r[0] in leaders and 'notifications' not in r[0] and r[1] != '0'}

    wait_until(lambda: not backlog(), timeout=30, interval=0.5,
               message=lambda: f'topic queues drained; left {backlog()}')
    print(f'moves settled {settled:.1f} s after RabbitMQ node {victim} was killed')
