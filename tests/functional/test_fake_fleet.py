"""A fake fleet: each compute service manages several fake nodes (a multi-node compute,
as Nova's), each its own compute node and resource provider. Servers land on nodes,
claims go to the node's provider, and moves between hosts work as between single-node
hosts."""

from collections import Counter

from novalite.db import api as db

V = '2.87'


def _allocations(server_id):
    return db.get_allocations(server_id)


def test_nodes_are_hypervisors_and_take_servers(cloud_factory):
    cloud = cloud_factory(compute_hosts=2, **{'fake_driver.nodes': 4,
                                              'fake_driver.vcpus': 1,
                                              'cpu_allocation_ratio': 1.0})
    hypervisors = cloud.get_json('/os-hypervisors/detail', version=V)['hypervisors']
    names = sorted(h['hypervisor_hostname'] for h in hypervisors)
    assert names == sorted(f'compute{h}-{i:05d}' for h in (1, 2) for i in range(4))
    assert {h['service']['host'] for h in hypervisors} == {'compute1', 'compute2'}
    assert all(h['state'] == 'up' and h['vcpus'] == 1 for h in hypervisors)

    # One vCPU per node: eight one-vCPU servers fill the fleet, one on each node.
    servers = [cloud.boot(f'vm{i}', flavor='1') for i in range(8)]
    nodes = Counter(s['OS-EXT-SRV-ATTR:hypervisor_hostname'] for s in servers)
    assert sorted(nodes) == names and set(nodes.values()) == {1}
    by_name = {h['hypervisor_hostname']: h['id'] for h in hypervisors}
    for s in servers:
        node = s['OS-EXT-SRV-ATTR:hypervisor_hostname']
        assert node.startswith(s['OS-EXT-SRV-ATTR:host'] + '-')
        assert list(_allocations(s['id'])) == [by_name[node]]
    # The ninth finds no room on any node.
    ninth = cloud.boot('vm8', flavor='1', wait=False)
    cloud.wait_for_server(ninth['id'], status='ERROR')
    # Each node's own usage, as its fake hypervisor reports it, shows its one guest.
    host = servers[0]['OS-EXT-SRV-ATTR:host']
    usage = cloud.hypervisor(host)
    assert Counter(g['node'] for g in usage.guests.values()) == Counter(
        {n: 1 for n in names if n.startswith(host + '-')})


def test_moves_between_multi_node_hosts(cloud_factory):
    cloud = cloud_factory(compute_hosts=2, **{'fake_driver.nodes': 3})
    server = cloud.boot('mover', flavor='1')
    source = server['OS-EXT-SRV-ATTR:host']

    cloud.action(server['id'], {'migrate': None})
    moved = cloud.wait_for_server(server['id'], status='VERIFY_RESIZE')
    assert moved['OS-EXT-SRV-ATTR:host'] != source
    node = moved['OS-EXT-SRV-ATTR:hypervisor_hostname']
    assert node.startswith(moved['OS-EXT-SRV-ATTR:host'] + '-')
    cloud.action(server['id'], {'confirmResize': None}, expect=204)
    confirmed = cloud.wait_for_server(server['id'])
    dest = db.compute_node_get_by_host_and_node(moved['OS-EXT-SRV-ATTR:host'], node)
    assert list(_allocations(server['id'])) == [dest['uuid']]
    assert cloud.hypervisor(moved['OS-EXT-SRV-ATTR:host']).guests[server['id']]['node'] \
        == node

    cloud.action(server['id'], {'os-migrateLive': {'host': None,
                                                   'block_migration': 'auto'}},
                 version='2.30')
    cloud.wait_for_migration(server['id'], migration_type='live-migration')
    back = cloud.wait_for_server(server['id'])
    assert back['OS-EXT-SRV-ATTR:host'] == source != confirmed['OS-EXT-SRV-ATTR:host']
    node = back['OS-EXT-SRV-ATTR:hypervisor_hostname']
    home = db.compute_node_get_by_host_and_node(source, node)
    assert list(_allocations(server['id'])) == [home['uuid']]
    assert server['id'] in cloud.hypervisor(source).guests
    assert server['id'] not in cloud.hypervisor(confirmed['OS-EXT-SRV-ATTR:host']).guests
