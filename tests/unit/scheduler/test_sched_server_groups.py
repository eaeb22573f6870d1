"""The server group filters and weighers, and a group request through FilterScheduler."""

import random

import numpy as np
import pytest
from sched_helpers import host, make_conf, spec

from novalite.scheduler.filter_scheduler import FilterScheduler, NoValidHost
from novalite.scheduler.filters import load_filters
from novalite.scheduler.host_state import HostStateArrays
from novalite.scheduler.weights import load_weighers, weigh

GROUP = 'a3b4c5d6-0000-4000-8000-000000000001'


def group_spec(policy, rules=None, **kw):
    return spec(instance_group={'uuid': GROUP, 'policy': policy, 'rules': rules or {}}, **kw)


def run(name, hosts, request):
    flt = load_filters([name], make_conf())[0]
    view = HostStateArrays(hosts)
    idx = np.arange(len(hosts))
    mask = flt.passes(view, idx, request)
    passed = [hosts[i].host for i in idx[mask]]
    removed = {hosts[i].host: flt.reason(view, i, request) for i in idx[~mask]}
    return passed, removed


def test_group_filters_are_enabled_by_default_and_only_for_their_policy():
    conf = make_conf()
    enabled = list(conf.filter_scheduler.enabled_filters)
    assert 'ServerGroupAntiAffinityFilter' in enabled
    assert 'ServerGroupAffinityFilter' in enabled
    assert 'ServerGroupSoftAffinityWeigher' in conf.filter_scheduler.weight_classes
    assert 'ServerGroupSoftAntiAffinityWeigher' in conf.filter_scheduler.weight_classes
    anti, aff = load_filters(['ServerGroupAntiAffinityFilter', 'ServerGroupAffinityFilter'],
                             conf)
    assert anti.enabled_for(group_spec('anti-affinity'))
    assert not anti.enabled_for(group_spec('affinity'))
    assert not anti.enabled_for(spec())
    assert aff.enabled_for(group_spec('affinity'))
    assert not aff.enabled_for(group_spec('soft-affinity'))


def test_anti_affinity_filter_and_its_reason():
    hosts = [host('a', group_members=1), host('b'), host('c', group_members=2)]
    passed, removed = run('ServerGroupAntiAffinityFilter', hosts, group_spec('anti-affinity'))
    assert passed == ['b']
    assert removed == {
        'a': f'holds 1 member of anti-affinity server group {GROUP} (max_server_per_host 1)',
        'c': f'holds 2 members of anti-affinity server group {GROUP} '
             '(max_server_per_host 1)'}


def test_anti_affinity_filter_max_server_per_host():
    hosts = [host('a', group_members=1), host('b', group_members=2)]
    passed, removed = run('ServerGroupAntiAffinityFilter', hosts,
                          group_spec('anti-affinity', {'max_server_per_host': 2}))
    assert passed == ['a']
    assert removed['b'].endswith('(max_server_per_host 2)')


def test_affinity_filter_first_member_anywhere_then_with_the_others():
    empty = [host('a'), host('b')]
    assert run('ServerGroupAffinityFilter', empty, group_spec('affinity'))[0] == ['a', 'b']
    hosts = [host('a'), host('b', group_members=2), host('c')]
    passed, removed = run('ServerGroupAffinityFilter', hosts, group_spec('affinity'))
    assert passed == ['b']
    assert removed['a'] == f'the members of affinity server group {GROUP} are on b'
    # Members already split (never by novalite, but a group can be created around
    # servers moved by an older release): no host holds them all, none passes.
    split = [host('a', group_members=1), host('b', group_members=1)]
    passed, removed = run('ServerGroupAffinityFilter', split, group_spec('affinity'))
    assert passed == [] and removed['a'].endswith('are on a, b')


def _weights(hosts, request, **overrides):
    names = ['ServerGroupSoftAffinityWeigher', 'ServerGroupSoftAntiAffinityWeigher']
    ws = load_weighers(names, make_conf(**overrides))
    return weigh(ws, HostStateArrays(hosts), np.arange(len(hosts)), request).tolist()


def test_soft_weighers():
    hosts = [host('a'), host('b', group_members=1), host('c', group_members=2)]
    assert _weights(hosts, group_spec('soft-affinity')) == [0.0, 0.5, 1.0]
    assert _weights(hosts, group_spec('soft-anti-affinity')) == [1.0, 0.5, 0.0]
    assert _weights(hosts, group_spec('soft-affinity'),
                    soft_affinity_weight_multiplier=4.0) == [0.0, 2.0, 4.0]
    # No group, or a hard policy: the soft weighers weigh nothing.
    assert _weights(hosts, spec()) == [0.0, 0.0, 0.0]
    assert _weights(hosts, group_spec('anti-affinity')) == [0.0, 0.0, 0.0]


def test_multipliers_cannot_be_negative():
    conf = make_conf()
    with pytest.raises(ValueError):
        conf.set_override('soft_affinity_weight_multiplier', -1.0, group='filter_scheduler')


def test_multi_instance_request_counts_its_own_members():
    scheduler = FilterScheduler(make_conf(), rng=random.Random(0))
    hosts = [host('a'), host('b'), host('c')]
    request = group_spec('anti-affinity', num_instances=3, instance_uuids=['x', 'y', 'z'])
    picked = scheduler.select(request, hosts, num_alternates=0)
    assert sorted(h[0].host for h in picked) == ['a', 'b', 'c']
    assert [h.group_members for h in hosts] == [1, 1, 1]
    with pytest.raises(NoValidHost) as err:
        scheduler.select(group_spec('anti-affinity', num_instances=4,
                                    instance_uuids=['1', '2', '3', '4']),
                         [host('a'), host('b'), host('c')], num_alternates=0)
    assert 'ServerGroupAntiAffinityFilter removed 3 of 3 hosts' in str(err.value)
    together = scheduler.select(group_spec('affinity', num_instances=3,
                                           instance_uuids=['x', 'y', 'z']),
                                [host('a'), host('b'), host('c')], num_alternates=0)
    assert len({h[0].host for h in together}) == 1


def test_a_claim_refused_by_the_group_is_explained():
    scheduler = FilterScheduler(make_conf(), rng=random.Random(0))
    hosts = [host('a'), host('b')]

    def claim(hs, index):
        return 'server group g: %s already holds 1 member' % hs.host

    with pytest.raises(NoValidHost) as err:
        scheduler.select(group_spec('anti-affinity'), hosts, 0, claim=claim)
    text = str(err.value)
    assert 'Claims failed on 2 hosts' in text
    assert 'a: server group g: a already holds 1 member' in text
    assert err.value.explanation['claims_failed']['b'] == (
        'server group g: b already holds 1 member')
