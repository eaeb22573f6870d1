import json
import random

import pytest
from sched_helpers import host, make_conf, spec

from novalite.scheduler.filter_scheduler import (
    FilterScheduler,
    NoValidHost,
    format_explanation,
)


def scheduler(seed=0, **overrides):
    return FilterScheduler(make_conf(**overrides), rng=random.Random(seed))


def spread_hosts(n):
    # host i has i GB of RAM used: h0 is the emptiest and weighs best.
    return [host('h%d' % i, memory_mb_used=1024 * i) for i in range(n)]


def names(hosts):
    return [h.host for h in hosts]


def test_best_host_first_then_alternates_in_weight_order():
    result = scheduler().select(spec(), spread_hosts(5), num_alternates=2)
    assert len(result) == 1
    assert names(result[0]) == ['h0', 'h1', 'h2']


def test_alternates_capped_by_passing_hosts_and_no_duplicate_hosts():
    hosts = spread_hosts(3) + [host('h0', nodename='h0-node2', uuid='u-h0-2')]
    result = scheduler().select(spec(), hosts, num_alternates=10)
    picked = names(result[0])
    assert picked[0] == 'h0'
    assert len(picked) == len(set(picked)) == 3


def test_negative_multiplier_stacks_on_fullest_host():
    result = scheduler(ram_weight_multiplier=-1.0).select(spec(), spread_hosts(5), 0)
    assert names(result[0]) == ['h4']


def test_host_subset_size_picks_only_among_top_n():
    sched = scheduler(seed=1, host_subset_size=3)
    seen = {sched.select(spec(), spread_hosts(10), 0)[0][0].host for _ in range(200)}
    assert seen == {'h0', 'h1', 'h2'}


def test_host_subset_larger_than_candidates():
    sched = scheduler(seed=2, host_subset_size=50)
    seen = {sched.select(spec(), spread_hosts(3), 0)[0][0].host for _ in range(100)}
    assert seen == {'h0', 'h1', 'h2'}


def test_shuffle_best_same_weighed_hosts():
    def hosts():
        return [host('a'), host('b'), host('c', memory_mb_used=4096)]
    assert {scheduler().select(spec(), hosts(), 0)[0][0].host for _ in range(30)} == {'a'}
    sched = scheduler(seed=3, shuffle_best_same_weighed_hosts=True)
    seen = {sched.select(spec(), hosts(), 0)[0][0].host for _ in range(60)}
    assert seen == {'a', 'b'}


def test_multi_instance_consumes_between_instances():
    hosts = [host('a', memory_mb_total=4096), host('b', memory_mb_total=3072)]
    request = spec(memory_mb=2048, num_instances=3, instance_uuids=['i1', 'i2', 'i3'])
    result = scheduler().select(request, hosts, num_alternates=1)
    assert [r[0].host for r in result] == ['a', 'b', 'a']
    assert hosts[0].memory_mb_used == 4096 and hosts[1].memory_mb_used == 2048
    assert hosts[0].instance_uuids == {'i1', 'i3'}
    assert hosts[0].num_instances == 2
    # once a is full only b is left for the last instance's alternates: none
    with pytest.raises(NoValidHost):
        scheduler().select(spec(memory_mb=2048), hosts, 1)


def test_claim_failure_moves_to_next_host_and_release_on_failure():
    hosts = spread_hosts(4)
    calls = []

    def claim(hs, index):
        calls.append((hs.host, index))
        return hs.host != 'h0'

    result = scheduler().select(spec(), hosts, num_alternates=2, claim=claim)
    assert calls == [('h0', 0), ('h1', 0)]
    assert names(result[0]) == ['h1', 'h2', 'h3']
    assert hosts[0].memory_mb_used == 0  # the lost race did not consume anything

    released = []
    two = spec(memory_mb=1024, num_instances=2, instance_uuids=['x', 'y'])
    with pytest.raises(NoValidHost) as err:
        scheduler().select(two, [host('solo')], 0,
                           claim=lambda hs, i: i == 0,
                           release=lambda hs, i: released.append((hs.host, i)))
    assert released == [('solo', 0)]
    assert err.value.explanation['claims_failed'] == {
        'solo': 'resource claim failed (taken by a concurrent request)'}
    assert err.value.explanation['instance_index'] == 1


def test_every_claim_failing_raises():
    with pytest.raises(NoValidHost) as err:
        scheduler().select(spec(), spread_hosts(3), 1, claim=lambda hs, i: False)
    assert set(err.value.explanation['claims_failed']) == {'h0', 'h1', 'h2'}
    assert 'Claims failed on 3 hosts' in str(err.value)


def test_forced_host_skips_filters():
    hosts = [host('a'), host('b', service_disabled=True)]
    result = scheduler().select(spec(force_hosts=['b']), hosts, 1)
    assert names(result[0]) == ['b']


def test_no_valid_host_explanation_structure():
    hosts = [host('down', service_up=False, last_heartbeat=None),
             host('ignored'),
             host('small', memory_mb_total=1024),
             host('tiny', memory_mb_total=512)]
    with pytest.raises(NoValidHost) as err:
        scheduler().select(spec(memory_mb=2048, ignore_hosts=['ignored']), hosts, 1)
    expl = err.value.explanation
    assert json.loads(json.dumps(expl)) == expl
    assert expl['hosts_considered'] == 4
    steps = {f['name']: f for f in expl['filters']}
    assert [f['name'] for f in expl['filters']] == ['IgnoreHosts', 'ComputeFilter',
                                                     'RamFilter']
    assert steps['IgnoreHosts'] == {'name': 'IgnoreHosts', 'hosts_before': 4,
                                    'hosts_after': 3,
                                    'removed': {'ignored': 'in ignore_hosts of the request'}}
    assert steps['ComputeFilter']['removed'] == {
        'down': 'host is down (no heartbeat recorded)'}
    assert steps['RamFilter']['hosts_before'] == 2
    assert steps['RamFilter']['hosts_after'] == 0
    assert steps['RamFilter']['removed'] == {
        'small': 'free RAM 1024 MB < requested 2048 MB',
        'tiny': 'free RAM 512 MB < requested 2048 MB'}
    assert 'claims_failed' not in expl
    message = str(err.value)
    assert message.startswith('No valid host was found. IgnoreHosts removed 1 of 4 hosts')
    assert 'RamFilter removed 2 of 2 hosts (small: free RAM 1024 MB < requested 2048 MB;' \
        in message


def test_no_hosts_at_all():
    with pytest.raises(NoValidHost) as err:
        scheduler().select(spec(), [], 2)
    assert err.value.explanation == {'hosts_considered': 0, 'filters': []}
    assert str(err.value) == 'No valid host was found. There are no compute hosts.'


def test_format_caps_host_detail():
    hosts = [host('h%02d' % i, memory_mb_total=512) for i in range(30)]
    with pytest.raises(NoValidHost) as err:
        scheduler().select(spec(memory_mb=1024), hosts, 0)
    message = format_explanation(err.value.explanation)
    assert 'RamFilter removed 30 of 30 hosts' in message
    assert message.count('free RAM') == 20
    assert message.endswith('; and 10 more).')


def test_explanation_keeps_counts_but_caps_reasons():
    from novalite.scheduler import filter_scheduler
    n = filter_scheduler.EXPLANATION_HOST_LIMIT + 50
    hosts = [host('h%d' % i, service_disabled=True) for i in range(n)]
    with pytest.raises(NoValidHost) as err:
        scheduler().select(spec(), hosts, 0)
    entry = err.value.explanation['filters'][0]
    assert entry['hosts_before'] - entry['hosts_after'] == n
    assert len(entry['removed']) == filter_scheduler.EXPLANATION_HOST_LIMIT
    assert 'and %d more' % (n - 20) in str(err.value)


def test_multi_instance_failure_names_the_instance():
    request = spec(memory_mb=2048, num_instances=2, instance_uuids=['a', 'b'])
    with pytest.raises(NoValidHost) as err:
        scheduler().select(request, [host('one', memory_mb_total=3000)], 0)
    assert 'For instance 2 of 2:' in str(err.value)
    assert 'free RAM 952 MB < requested 2048 MB' in str(err.value)


def test_prebuilt_view_is_reused_and_kept_in_step():
    from novalite.scheduler.host_state import HostStateArrays
    hosts = [host('a', memory_mb_total=4096), host('b', memory_mb_total=3072)]
    view = HostStateArrays(hosts)
    sched = scheduler()
    assert sched.select(spec(memory_mb=2048), view, 1)[0][0].host == 'a'
    assert sched.select(spec(memory_mb=2048), view, 1)[0][0].host == 'b'
    assert sched.select(spec(memory_mb=2048), view, 1)[0][0].host == 'a'
    assert view.memory_mb_used.tolist() == [4096, 2048]
    assert hosts[0].memory_mb_used == 4096
    with pytest.raises(NoValidHost):
        sched.select(spec(memory_mb=2048), view, 0)


def test_no_valid_host_is_the_domain_exception():
    from novalite import exception
    with pytest.raises(exception.NoValidHost) as err:
        scheduler().select(spec(), [host('off', service_disabled=True)], 0)
    assert err.value.explanation['filters'][0]['name'] == 'ComputeFilter'
    assert str(err.value) == ('No valid host was found. ComputeFilter removed 1 of 1 host '
                              '(off: service disabled).')
