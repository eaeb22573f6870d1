"""os-hypervisors shows a claim the moment it is made, not at the next periodic report."""

V = '2.87'


def _by_host(cloud):
    nodes = cloud.get_json('/os-hypervisors/detail', version=V)['hypervisors']
    return {n['service']['host']: n for n in nodes}


def test_usage_reflects_claims_at_once(cloud_factory):
    # Reports every hour: whatever changes below comes from the claims, not a report.
    cloud = cloud_factory(report_interval=3600)
    before = _by_host(cloud)
    flavor = cloud.get_json('/flavors/2', version=V)['flavor']
    server = cloud.boot('claimed', flavor='2')
    host = server['OS-EXT-SRV-ATTR:host']
    after = _by_host(cloud)
    assert after[host]['vcpus_used'] == before[host]['vcpus_used'] + flavor['vcpus']
    assert after[host]['memory_mb_used'] == before[host]['memory_mb_used'] + flavor['ram']
    assert after[host]['local_gb_used'] == before[host]['local_gb_used'] + flavor['disk']
    assert after[host]['free_ram_mb'] == before[host]['free_ram_mb'] - flavor['ram']
    # Nova counts the host's reserved memory as used.
    assert before[host]['memory_mb_used'] == 512
    stats = cloud.get_json('/os-hypervisors/statistics', version=V)['hypervisor_statistics']
    assert stats['vcpus_used'] == sum(n['vcpus_used'] for n in after.values())

    cloud.request('DELETE', f"/servers/{server['id']}", expect=204)
    cloud.wait_until(lambda: _by_host(cloud)[host]['memory_mb_used']
                   == before[host]['memory_mb_used'], message='allocations released')
