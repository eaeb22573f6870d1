"""A fake fleet over RabbitMQ and PostgreSQL: two compute processes of 300 fake nodes each
report in batches (conductor 2.4), the API lists all 600 hypervisors, servers spread over
the nodes, a cold move crosses from one process to the other, and a restarted compute
process finds its nodes again instead of making new ones."""

import pytest
import sqlalchemy as sa

from novalite.cluster import Cluster
from tests.rest import RestClient, wait_until

pytestmark = pytest.mark.integration

NODES = 300


def _node_rows(db_url):
    engine = sa.create_engine(db_url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            return conn.exec_driver_sql(
                'SELECT host, count(*), count(DISTINCT uuid) FROM compute_nodes '
                'GROUP BY host ORDER BY host').all()
    finally:
        engine.dispose()


def test_a_fleet_of_600_nodes_in_two_processes(tmp_path, pg_fresh_url, private_rabbit_url):
    c = Cluster(tmp_path / 'cluster', pg_fresh_url, private_rabbit_url, computes=2,
                extra_conf={'fake_driver.nodes': NODES, 'compute.resource_report_batch': 100,
                            'quota.instances': -1, 'quota.cores': -1, 'quota.ram': -1})
    c.start(timeout=120)
    try:
        client = RestClient(c.endpoint)

        def statistics():
            return client.get_json('/os-hypervisors/statistics')['hypervisor_statistics']
        # The cluster is ready once each process's first batch is in; the rest follow.
        wait_until(lambda: statistics()['count'] == 2 * NODES, timeout=60,
                   message='every node reported')
        stats = statistics()
        assert stats['vcpus'] == 2 * NODES * 16
        listed = client.get_json('/os-hypervisors')['hypervisors']
        assert sum(h['state'] == 'up' for h in listed) == 2 * NODES

        servers = [client.boot(f'fleet{i}', wait=False)['id'] for i in range(12)]
        placed = [client.wait_for_server(sid, 'ACTIVE') for sid in servers]
        nodes = {s['OS-EXT-SRV-ATTR:hypervisor_hostname'] for s in placed}
        assert len(nodes) == 12  # the weighers spread them over empty nodes
        for s in placed:
            assert s['OS-EXT-SRV-ATTR:hypervisor_hostname'].startswith(
                s['OS-EXT-SRV-ATTR:host'] + '-')

        mover = placed[0]
        client.action(mover['id'], {'migrate': None})
        moved = client.wait_for_server(mover['id'], 'VERIFY_RESIZE')
        assert moved['OS-EXT-SRV-ATTR:host'] != mover['OS-EXT-SRV-ATTR:host']
        client.action(mover['id'], {'confirmResize': None}, expect=204)
        client.wait_for_server(mover['id'], 'ACTIVE')

        # A restarted compute process reports the same nodes, not new ones.
        c.stop_process('compute1')
        c.start_process('compute1', 'compute', 'compute1')
        wait_until(lambda: sum(h['state'] == 'up' for h in client.get_json(
            '/os-hypervisors')['hypervisors']) == 2 * NODES, timeout=60,
            message='every node up again')
        assert _node_rows(pg_fresh_url) == [('compute1', NODES, NODES),
                                            ('compute2', NODES, NODES)]
        server = client.boot('after-restart', wait=False)
        assert client.wait_for_server(server['id'], 'ACTIVE')['status'] == 'ACTIVE'
    finally:
        c.stop()
