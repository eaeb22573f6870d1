import numpy as np
import pytest
from sched_helpers import host, make_conf, spec

from novalite.scheduler.host_state import HostStateArrays
from novalite.scheduler.weights import load_weighers, normalize, weigh


def weights(hosts, names=('RAMWeigher', 'CPUWeigher', 'DiskWeigher'), **overrides):
    ws = load_weighers(list(names), make_conf(**overrides))
    return weigh(ws, HostStateArrays(hosts), np.arange(len(hosts)), spec())


def test_normalize_min_max_and_all_equal():
    assert normalize(np.array([10.0, 20.0, 15.0])).tolist() == [0.0, 1.0, 0.5]
    assert normalize(np.array([7.0, 7.0])).tolist() == [0.0, 0.0]
    assert normalize(np.array([3.0])).tolist() == [0.0]
    assert normalize(np.array([])).tolist() == []


def test_ram_weigher_prefers_free_ram():
    hosts = [host('a', memory_mb_used=0), host('b', memory_mb_used=16384),
             host('c', memory_mb_used=32768)]
    assert weights(hosts, ['RAMWeigher']).tolist() == [1.0, 0.5, 0.0]


def test_multiplier_scales_and_negative_stacks():
    hosts = [host('a', vcpus_used=0), host('b', vcpus_used=8), host('c', vcpus_used=16)]
    assert weights(hosts, ['CPUWeigher'], cpu_weight_multiplier=3.0).tolist() == [
        3.0, 1.5, 0.0]
    stacked = weights(hosts, ['CPUWeigher'], cpu_weight_multiplier=-1.0)
    assert stacked.tolist() == [-1.0, -0.5, 0.0]
    assert int(np.argmax(stacked)) == 2  # the fullest host wins when stacking


def test_weighers_are_summed_and_zero_multiplier_ignored():
    hosts = [host('a', memory_mb_used=0, disk_gb_used=500),
             host('b', memory_mb_used=32768, disk_gb_used=0)]
    assert weights(hosts, ['RAMWeigher', 'DiskWeigher']).tolist() == [1.0, 1.0]
    assert weights(hosts, ['RAMWeigher', 'DiskWeigher'], disk_weight_multiplier=2.0,
                   ram_weight_multiplier=0.0).tolist() == [0.0, 2.0]


def test_all_equal_hosts_weigh_zero():
    assert weights([host('a'), host('b')]).tolist() == [0.0, 0.0]


def test_unknown_weigher_is_an_error():
    with pytest.raises(ValueError, match='Nope'):
        load_weighers(['Nope'], make_conf())
