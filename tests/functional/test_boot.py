"""Server create, power actions and delete through REST, end to end."""

from novalite.db import api as db


def test_boot_active_and_allocations(cloud):
    server = cloud.boot('vm1')
    assert server['status'] == 'ACTIVE'
    host = server['OS-EXT-SRV-ATTR:host']
    assert host in cloud.aio.computes
    assert server['id'] in cloud.hypervisor(host).guests
    allocs = db.get_allocations(server['id'])
    assert list(allocs.values()) == [{'VCPU': 1, 'MEMORY_MB': 512, 'DISK_GB': 1}]
