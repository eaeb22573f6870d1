"""A host drain survives its conductor: SIGKILL the only conductor while the drain's
live migrations run (daemons over RabbitMQ + PostgreSQL), start it again, and the drain
finishes with the host empty, each guest on exactly one hypervisor and the allocations
only where the servers are."""

import json
import os
import signal

import pytest

from novalite.db import api as db
from tests.rest import RestClient

pytestmark = pytest.mark.integration

SRC, DEST = 'compute1', 'compute2'


def _guests(cluster, host):
    try:
        with open(os.path.join(cluster.workdir, 'fake', f'{host}.json')) as f:
            return set(json.load(f)['guests'])
    except FileNotFoundError:
        return set()


def test_drain_finishes_after_conductor_sigkill(start_slow_cluster):
    # About 2.5 s per guest (512 MiB of memory and a 1 GiB disk), one at a time per
    # source host: the kill lands while moves run.
    cluster = start_slow_cluster(0, fake_driver__live_migration_bandwidth_mb_s=600,
                                 conductor__drain_interval=0.5,
                                 DEFAULT__graceful_shutdown_timeout=1)
    client = RestClient(cluster.endpoint)
    sids = [client.boot(f'd{i}', wait=False, availability_zone=f'nova:{SRC}')['id']
            for i in range(4)]
    for sid in sids:
        client.wait_for_server(sid, 'ACTIVE', timeout=60)
    drain = client.request('POST', '/os-host-drains',
                           {'drain': {'host': SRC, 'mode': 'live', 'max_parallel': 2}},
                           expect=202).data['drain']

    def show():
        return client.get_json(f"/os-host-drains/{drain['id']}")['drain']
    client.wait_until(lambda: show()['moving'] >= 1, timeout=30, message='moves running')
    cluster.stop_process('conductor', sig=signal.SIGKILL)
    cluster.start_process('conductor', 'conductor', 'ctl')

    done = client.wait_until(lambda: (lambda d: d['status'] != 'running' and d)(show()),
                             timeout=120, message='drain ended')
    assert (done['status'], done['moved'], done['failed']) == ('completed', 4, 0), done
    assert done['conductor'] == 'ctl'
    assert _guests(cluster, SRC) == set()
    assert _guests(cluster, DEST) == set(sids)
    dest_node = db.compute_node_get_by_host_and_node(DEST)['uuid']
    for sid in sids:
        server = client.server(sid)
        assert (server['OS-EXT-SRV-ATTR:host'], server['status']) == (DEST, 'ACTIVE')
        assert server['OS-EXT-STS:task_state'] is None
        assert list(db.get_allocations(sid)) == [dest_node]
    for mig in db.migration_get_all(source_compute=SRC):
        assert mig['status'] in ('completed', 'failed', 'error', 'cancelled'), mig
        assert db.get_allocations(mig['uuid']) == {}
