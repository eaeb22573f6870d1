"""Bounded waits with separate daemon processes over RabbitMQ and PostgreSQL.

Every daemon exits within ``graceful_shutdown_timeout`` + 5 s of a SIGTERM in the middle
of a move, although its handlers then outlive that timeout (each fake hypervisor
operation takes OP_DELAY seconds, longer than the graceful timeout). And a destination
killed in pre_live_migration costs the source one call attempt and a ping, not the
30-minute ``long_rpc_timeout``.
"""

import signal
import subprocess
import time

import pytest

from novalite.db import api as db
from tests.rest import RestClient

pytestmark = pytest.mark.integration

OP_DELAY = 8.0  # longer than GRACEFUL + 5: a stop that waited for handlers fails
GRACEFUL = 2
ATTEMPT = 3  # call_attempt_timeout: how often a waiting caller checks on its peer
PING = 2


@pytest.fixture
def slow_cluster(start_slow_cluster):
    return start_slow_cluster(OP_DELAY, fake_driver__live_migration_bandwidth_mb_s=20,
                              DEFAULT__graceful_shutdown_timeout=GRACEFUL,
                              DEFAULT__call_attempt_timeout=ATTEMPT,
                              DEFAULT__liveness_ping_timeout=PING)


def boot(client):
    sid = client.boot('bounded', wait=False)['id']
    server = client.wait_for_server(sid, 'ACTIVE', timeout=60)
    return sid, server['OS-EXT-SRV-ATTR:host']


def other(cluster, host):
    return [h for h in cluster.compute_hosts if h != host][0]


def migration(sid):
    return (db.migration_get_all(instance_uuid=sid) or [{}])[0]


def live_migrate(client, sid):
    client.action(sid, {'os-migrateLive': {'host': None, 'block_migration': 'auto'}})


def sigterm_and_time(cluster, name):
    """SIGTERM one daemon; seconds until it exited (fails past the bound)."""
    proc = cluster.procs.pop(name)
    assert proc.poll() is None, f'{name} died before the SIGTERM:\n{cluster.log_tail(name)}'
    start = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(GRACEFUL + 5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        pytest.fail(f'{name} still alive {GRACEFUL + 5} s after SIGTERM:\n'
                    f'{cluster.log_tail(name, 60)}')
    return time.monotonic() - start


def _conductor_in_prechecks(cluster, client):
    """The conductor waits on the destination's pre-check (OP_DELAY s)."""
    sid, _ = boot(client)
    live_migrate(client, sid)
    client.wait_until(lambda: migration(sid).get('status') == 'accepted', timeout=30,
                      message='live migration accepted')
    return 'conductor'


def _destination_in_precheck(cluster, client):
    sid, src = boot(client)
    live_migrate(client, sid)
    client.wait_until(lambda: migration(sid).get('status') == 'accepted', timeout=30,
                      message='live migration accepted')
    return other(cluster, src)


def _source_migrating(cluster, client):
    sid, src = boot(client)
    live_migrate(client, sid)
    client.wait_until(lambda: migration(sid).get('status') in ('preparing', 'running'),
                      timeout=90, message='source migrating')
    return src


def _scheduler_mid_cold_migration(cluster, client):
    sid, _ = boot(client)
    client.action(sid, {'migrate': None})
    client.wait_until(lambda: migration(sid).get('status') is not None, timeout=30,
                      message='cold migration started')
    return 'scheduler'


def _api_mid_resize(cluster, client):
    sid, src = boot(client)
    client.action(sid, {'resize': {'flavorRef': '2'}})
    client.wait_until(lambda: client.server(sid)['OS-EXT-STS:task_state'] is not None,
                      timeout=30, message='resize under way')
    return 'api'


@pytest.mark.parametrize('catch', [_conductor_in_prechecks, _destination_in_precheck,
                                   _source_migrating, _scheduler_mid_cold_migration,
                                   _api_mid_resize],
                         ids=['conductor', 'destination', 'source', 'scheduler', 'api'])
def test_sigterm_mid_move_exits_within_graceful_timeout(slow_cluster, catch):
    client = RestClient(slow_cluster.endpoint)
    name = catch(slow_cluster, client)
    seconds = sigterm_and_time(slow_cluster, name)
    assert seconds <= GRACEFUL + 5, (name, seconds)


def test_destination_killed_in_pre_live_migration_fails_fast(slow_cluster):
    client = RestClient(slow_cluster.endpoint)
    sid, src = boot(client)
    dst = other(slow_cluster, src)
    live_migrate(client, sid)
    client.wait_until(lambda: migration(sid).get('status') == 'preparing', timeout=90,
                      message='pre_live_migration under way')
    slow_cluster.stop_process(dst, sig=signal.SIGKILL)
    # A check (ATTEMPT s) and an unanswered ping (PING s) end pre_live_migration, the
    # same the destination's rollback, then the source writes: nowhere near
    # long_rpc_timeout (1800 s). The slack covers the fake operations and polling.
    bound = 2 * (ATTEMPT + PING) + 4 * OP_DELAY + 15
    client.wait_until(lambda: migration(sid).get('status') in ('error', 'failed'),
                      timeout=bound, message='live migration failed over a dead host')
    server = client.wait_for_server(sid, 'ACTIVE', timeout=30)
    assert server['OS-EXT-SRV-ATTR:host'] == src
    assert server['OS-EXT-STS:task_state'] is None
