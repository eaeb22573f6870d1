import dataclasses
import json

import numpy as np
from sched_helpers import host, spec

from novalite.scheduler.host_state import HostStateArrays, RequestSpec, flavor_disk_gb


def test_free_follows_placement_capacity():
    hs = host('a', vcpus_total=10, reserved_vcpus=2, cpu_allocation_ratio=4.0, vcpus_used=5,
              memory_mb_total=4096, reserved_memory_mb=512, ram_allocation_ratio=1.5,
              memory_mb_used=1000, disk_gb_total=100, reserved_disk_gb=10,
              disk_allocation_ratio=1.0, disk_gb_used=30)
    assert hs.free_vcpus == (10 - 2) * 4.0 - 5
    assert hs.free_ram_mb == (4096 - 512) * 1.5 - 1000
    assert hs.free_disk_gb == 60


def test_consume_adds_usage_and_instance():
    hs = host('a')
    hs.consume({'vcpus': 2, 'memory_mb': 2048, 'root_gb': 20, 'ephemeral_gb': 5,
                'swap': 1500}, 'i-1')
    assert (hs.vcpus_used, hs.memory_mb_used, hs.disk_gb_used) == (2, 2048, 27)
    assert hs.num_instances == 1
    assert hs.instance_uuids == {'i-1'}


def test_flavor_disk_rounds_swap_up():
    assert flavor_disk_gb({'root_gb': 1, 'ephemeral_gb': 0, 'swap': 1}) == 2
    assert flavor_disk_gb({'root_gb': 1, 'ephemeral_gb': 0, 'swap': 2048}) == 3
    assert flavor_disk_gb({'root_gb': 1}) == 1


def test_request_spec_resources_and_round_trip():
    s = spec(vcpus=2, memory_mb=4096, root_gb=20, ephemeral_gb=10, swap=512,
             scheduler_hints={'same_host': ['x']}, ignore_hosts=['h1'],
             requested_destination={'host': 'h2', 'node': None}, num_instances=2,
             instance_uuids=['a', 'b'])
    assert s.resources() == {'VCPU': 2, 'MEMORY_MB': 4096, 'DISK_GB': 31}
    wire = json.loads(json.dumps(s.to_dict()))
    back = RequestSpec.from_dict(wire)
    assert back == s
    assert RequestSpec.from_dict({**wire, 'future_field': 1}) == s


def test_request_spec_dict_is_a_copy_as_asdict_makes_it():
    s = spec(scheduler_hints={'same_host': ['x'], 'pair': ('a', 'b')},
             requested_destination={'host': 'h2', 'node': None}, instance_uuids=['a'])
    s.image = {'properties': {'hw': [1, (2, 3)]}}
    data = s.to_dict()
    assert data == dict(dataclasses.asdict(s), version=data['version'])
    data['flavor']['extra_specs']['k'] = 'v'
    data['scheduler_hints']['same_host'].append('y')
    data['image']['properties']['hw'].append(4)
    assert s.flavor['extra_specs'] == {} and s.scheduler_hints['same_host'] == ['x']
    assert s.image['properties']['hw'] == [1, (2, 3)]


def test_hint_list_accepts_single_string():
    s = spec(scheduler_hints={'different_host': 'abc'})
    assert s.hint_list('different_host') == ['abc']
    assert s.hint_list('same_host') == []


def test_arrays_match_properties_and_consume_keeps_them_in_step():
    hosts = [host('a', vcpus_used=3, cpu_allocation_ratio=2.0),
             host('b', memory_mb_used=1000, reserved_memory_mb=512, service_up=False)]
    view = HostStateArrays(hosts)
    assert np.array_equal(view.free_vcpus, [h.free_vcpus for h in hosts])
    assert np.array_equal(view.free_ram_mb, [h.free_ram_mb for h in hosts])
    assert view.service_ok.tolist() == [True, False]
    view.consume(1, {'vcpus': 4, 'memory_mb': 100, 'root_gb': 7}, 'u')
    assert np.array_equal(view.free_ram_mb, [h.free_ram_mb for h in hosts])
    assert view.free_disk_gb[1] == hosts[1].free_disk_gb == 493
    assert view.num_instances[1] == hosts[1].num_instances == 1


def test_empty_arrays():
    view = HostStateArrays([])
    assert view.size == 0 and view.free_ram_mb.shape == (0,)
