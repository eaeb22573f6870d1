import datetime

import numpy as np
import pytest
from sched_helpers import host, make_conf, spec

from novalite.scheduler.filters import load_filters
from novalite.scheduler.filters.targets import apply_targets
from novalite.scheduler.host_state import HostStateArrays


def run(name, hosts, request, **conf_overrides):
    """Run one filter; return (passing host names, {removed host: reason})."""
    flt = load_filters([name], make_conf(**conf_overrides))[0]
    view = HostStateArrays(hosts)
    idx = np.arange(len(hosts))
    assert flt.enabled_for(request)
    mask = flt.passes(view, idx, request)
    passed = [hosts[i].host for i in idx[mask]]
    removed = {hosts[i].host: flt.reason(view, i, request) for i in idx[~mask]}
    return passed, removed


def test_unknown_filter_is_an_error():
    with pytest.raises(ValueError, match='NoSuchFilter'):
        load_filters(['RamFilter', 'NoSuchFilter'], make_conf())


def test_compute_filter_disabled_and_down():
    old = datetime.datetime.now(datetime.UTC).replace(tzinfo=None) - datetime.timedelta(
        seconds=75)
    hosts = [host('ok'), host('off', service_disabled=True, disabled_reason='maintenance'),
             host('down', service_up=False, last_heartbeat=old),
             host('forced', service_up=False, forced_down=True)]
    passed, removed = run('ComputeFilter', hosts, spec())
    assert passed == ['ok']
    assert removed['off'] == 'service disabled: maintenance'
    assert removed['down'] in ('host is down (last heartbeat 75 s ago)',
                               'host is down (last heartbeat 76 s ago)')
    assert removed['forced'] == 'service forced down'


def test_availability_zone_filter():
    hosts = [host('a', availability_zone='az1'), host('b', availability_zone='az2')]
    passed, removed = run('AvailabilityZoneFilter', hosts, spec(availability_zone='az1'))
    assert passed == ['a']
    assert removed == {'b': "in availability zone 'az2', not 'az1'"}
    flt = load_filters(['AvailabilityZoneFilter'], make_conf())[0]
    assert not flt.enabled_for(spec())
    passed, _ = run('AvailabilityZoneFilter', hosts, spec(availability_zone='nowhere'))
    assert passed == []


def test_ram_filter_uses_reserved_and_ratio():
    hosts = [host('big', memory_mb_total=4096, reserved_memory_mb=512),
             host('small', memory_mb_total=2048, reserved_memory_mb=512,
                  memory_mb_used=1024),
             host('overcommit', memory_mb_total=2048, reserved_memory_mb=512,
                  ram_allocation_ratio=2.0, memory_mb_used=1024)]
    passed, removed = run('RamFilter', hosts, spec(memory_mb=2048))
    assert passed == ['big', 'overcommit']
    assert removed == {'small': 'free RAM 512 MB < requested 2048 MB'}


def test_ram_filter_exact_fit_passes():
    passed, _ = run('RamFilter', [host('a', memory_mb_total=2048)], spec(memory_mb=2048))
    assert passed == ['a']


def test_core_filter():
    hosts = [host('a', vcpus_total=4, vcpus_used=3),
             host('b', vcpus_total=4, vcpus_used=3, cpu_allocation_ratio=4.0)]
    passed, removed = run('CoreFilter', hosts, spec(vcpus=2))
    assert passed == ['b']
    assert removed == {'a': 'free vCPUs 1 < requested 2'}


def test_disk_filter_counts_ephemeral_and_swap():
    hosts = [host('a', disk_gb_total=20), host('b', disk_gb_total=22)]
    passed, removed = run('DiskFilter', hosts, spec(root_gb=10, ephemeral_gb=10, swap=1024))
    assert passed == ['b']
    assert removed == {'a': 'free disk 20 GB < requested 21 GB'}


def test_same_host_filter():
    hosts = [host('a', instance_uuids={'i1'}), host('b', instance_uuids={'i2'}), host('c')]
    request = spec(scheduler_hints={'same_host': ['i1', 'i2']})
    passed, removed = run('SameHostFilter', hosts, request)
    assert passed == ['a', 'b']
    assert removed == {'c': 'holds none of the instances in hint same_host'}
    flt = load_filters(['SameHostFilter'], make_conf())[0]
    assert not flt.enabled_for(spec())


def test_different_host_filter():
    hosts = [host('a', instance_uuids={'i1', 'x'}), host('b', instance_uuids={'i3'})]
    passed, removed = run('DifferentHostFilter', hosts,
                          spec(scheduler_hints={'different_host': ['i1']}))
    assert passed == ['b']
    assert removed == {'a': 'holds instance i1 named in hint different_host'}


def test_image_properties_filter():
    hosts = [host('kvm', hypervisor_type='QEMU', cpu_arch='x86_64'),
             host('arm', hypervisor_type='QEMU', cpu_arch='aarch64'),
             host('fake', hypervisor_type='fake', cpu_arch='x86_64'),
             host('unknown-arch', hypervisor_type='qemu', cpu_arch=None)]
    request = spec(image={'id': 'img', 'properties': {'hypervisor_type': 'qemu',
                                                      'hw_architecture': 'amd64'}})
    passed, removed = run('ImagePropertiesFilter', hosts, request)
    assert passed == ['kvm', 'unknown-arch']
    assert removed == {'arm': 'architecture aarch64, image requires x86_64',
                       'fake': 'hypervisor type fake, image requires qemu'}
    flt = load_filters(['ImagePropertiesFilter'], make_conf())[0]
    assert not flt.enabled_for(spec(image={'id': 'img', 'properties': {}}))


def test_num_instances_filter():
    hosts = [host('a', num_instances=2), host('b', num_instances=1)]
    passed, removed = run('NumInstancesFilter', hosts, spec(), max_instances_per_host=2)
    assert passed == ['b']
    assert removed == {'a': 'holds 2 instances, limit is 2'}


def targets(hosts, request):
    view = HostStateArrays(hosts)
    idx, steps, forced = apply_targets(view, np.arange(len(hosts)), request)
    names = [hosts[i].host for i in idx]
    explained = {s.name: {hosts[i].host: s.reason(i) for i in s.removed} for s in steps}
    return names, explained, forced


def test_ignore_hosts_step():
    hosts = [host('a'), host('b'), host('c')]
    names, explained, forced = targets(hosts, spec(ignore_hosts=['b']))
    assert names == ['a', 'c'] and not forced
    assert explained == {'IgnoreHosts': {'b': 'in ignore_hosts of the request'}}


def test_force_hosts_and_nodes_skip_filters():
    hosts = [host('a'), host('b', nodename='b-node'), host('c')]
    names, explained, forced = targets(hosts, spec(force_hosts=['B']))
    assert names == ['b'] and forced
    assert set(explained['ForceHosts']) == {'a', 'c'}
    names, _, forced = targets(hosts, spec(force_nodes=['b-node']))
    assert names == ['b'] and forced


def test_requested_destination_is_filtered_not_forced():
    hosts = [host('a'), host('b')]
    names, explained, forced = targets(hosts, spec(requested_destination={'host': 'b'}))
    assert names == ['b'] and not forced
    assert explained['RequestedDestination'] == {'a': 'not the requested destination b'}
