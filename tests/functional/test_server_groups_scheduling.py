"""Server group policies through REST: boots, multi-boots and every move honour the
group; the NoValidHost explanation names the group filter; the claim refuses what the
filters would have refused even when the filters are switched off."""

import pytest

from novalite.db import api as db

HOSTS = ('compute1', 'compute2', 'compute3')


def _group(cloud, policy, **rules):
    body = {'name': policy, 'policy': policy}
    if rules:
        body['rules'] = rules
    return cloud.request('POST', '/os-server-groups', {'server_group': body},
                         version='2.64', expect=200).data['server_group']['id']


def _boot(cloud, group, name='m', wait=True, flavor='1', **extra):
    body = {'server': {'name': name, 'flavorRef': flavor, 'networks': 'none',
                       'imageRef': cloud.first_image(), **extra},
            'os:scheduler_hints': {'group': group}}
    server = cloud.request('POST', '/servers', body, expect=202).data['server']
    if wait:
        return cloud.wait_for_server(server['id'], 'ACTIVE')
    return server


def _host(server):
    return server['OS-EXT-SRV-ATTR:host']


def _hosts_of(cloud, sids):
    return [_host(cloud.server(s)) for s in sids]


def _members(cloud, group):
    return cloud.get_json(f'/os-server-groups/{group}')['server_group']['members']


def _settled(cloud, sid):
    return cloud.wait_until(lambda: cloud.server(sid)['OS-EXT-STS:task_state'] is None and
                            cloud.server(sid), message='task cleared')


def _wait_move_error(cloud, sid):
    """The server's (only) migration once it is in error."""
    return cloud.wait_until(lambda: [m for m in cloud.migrations(sid)
                                     if m['status'] == 'error'],
                            message=f'a failed migration of {sid}')[0]


def _node_uuid(host):
    return db.compute_node_get_by_host_and_node(host)['uuid']


# ---------------------------------------------------------------- boots

def test_anti_affinity_spreads_then_no_valid_host_names_the_filter(cloud):
    group = _group(cloud, 'anti-affinity')
    sids = [_boot(cloud, group, f'a{i}')['id'] for i in range(3)]
    assert sorted(_hosts_of(cloud, sids)) == list(HOSTS)
    fourth = _boot(cloud, group, 'a3', wait=False)['id']
    view = cloud.wait_for_server(fourth, 'ERROR')
    details = view['fault']['details']
    assert 'ServerGroupAntiAffinityFilter removed 3 of 3 hosts' in details
    for host in HOSTS:
        assert (f'{host}: holds 1 member of anti-affinity server group {group} '
                f'(max_server_per_host 1)') in details
    assert db.get_allocations(fourth) == {}
    # The failed server stays a member (as in Nova) until it is deleted.
    assert fourth in _members(cloud, group)
    cloud.request('DELETE', f'/servers/{fourth}', expect=204)
    cloud.wait_for_server(fourth, 'DELETED')
    assert sorted(_members(cloud, group)) == sorted(sids)


def test_max_server_per_host_allows_that_many_per_host(cloud):
    group = _group(cloud, 'anti-affinity', max_server_per_host=2)
    sids = [_boot(cloud, group, f'b{i}')['id'] for i in range(6)]
    hosts = _hosts_of(cloud, sids)
    assert sorted(hosts) == sorted(HOSTS * 2)
    seventh = _boot(cloud, group, 'b6', wait=False)['id']
    details = cloud.wait_for_server(seventh, 'ERROR')['fault']['details']
    assert 'holds 2 members of anti-affinity server group' in details
    assert '(max_server_per_host 2)' in details


def test_affinity_keeps_members_together(cloud):
    group = _group(cloud, 'affinity')
    first = _boot(cloud, group, 'c0')
    sids = [first['id']] + [_boot(cloud, group, f'c{i}')['id'] for i in range(1, 4)]
    assert set(_hosts_of(cloud, sids)) == {_host(first)}


def test_affinity_host_full_is_no_valid_host_not_a_split(cloud):
    db.quota_set('admin', 'ram', 10 ** 6)
    cloud.request('POST', '/flavors', {'flavor': {'name': 'big', 'ram': 20000, 'vcpus': 1,
                                                  'disk': 1, 'id': 'big'}}, expect=200)
    group = _group(cloud, 'affinity')
    first = _boot(cloud, group, 'd0', flavor='big')
    second = _boot(cloud, group, 'd1', flavor='big', wait=False)['id']
    view = cloud.wait_for_server(second, 'ERROR')
    details = view['fault']['details']
    assert 'ServerGroupAffinityFilter removed 2 of 2 hosts' in details
    assert f'the members of affinity server group {group} are on {_host(first)}' in details


@pytest.mark.parametrize('policy', ['affinity', 'anti-affinity'])
def test_multi_create_honours_the_policy(cloud, policy):
    group = _group(cloud, policy)
    body = {'server': {'name': 'multi', 'flavorRef': '1', 'networks': 'none',
                       'imageRef': cloud.first_image(), 'min_count': 3},
            'os:scheduler_hints': {'group': group}}
    cloud.request('POST', '/servers', body, expect=202)
    sids = _members(cloud, group)
    assert len(sids) == 3
    for sid in sids:
        cloud.wait_for_server(sid, 'ACTIVE')
    hosts = _hosts_of(cloud, sids)
    if policy == 'affinity':
        assert len(set(hosts)) == 1
    else:
        assert sorted(hosts) == list(HOSTS)


def test_multi_create_over_the_hosts_fails_whole_and_keeps_nothing(cloud):
    group = _group(cloud, 'anti-affinity')
    body = {'server': {'name': 'many', 'flavorRef': '1', 'networks': 'none',
                       'imageRef': cloud.first_image(), 'min_count': 4},
            'os:scheduler_hints': {'group': group}}
    cloud.request('POST', '/servers', body, expect=202)
    sids = _members(cloud, group)
    for sid in sids:
        fault = cloud.wait_for_server(sid, 'ERROR')['fault']
        assert 'For instance 4 of 4' in fault['details']
        assert db.get_allocations(sid) == {}


def test_soft_anti_affinity_spreads_against_stacking_weighers(cloud_factory):
    cloud = cloud_factory(**{'filter_scheduler.ram_weight_multiplier': -1.0,
                             'filter_scheduler.cpu_weight_multiplier': -1.0,
                             'filter_scheduler.disk_weight_multiplier': -1.0,
                             'filter_scheduler.soft_anti_affinity_weight_multiplier': 10.0})
    loose = [cloud.boot(f'loose{i}')['id'] for i in range(2)]
    assert len(set(_hosts_of(cloud, loose))) == 1  # the resource weighers stack
    group = _group(cloud, 'soft-anti-affinity')
    sids = [_boot(cloud, group, f'e{i}')['id'] for i in range(3)]
    assert sorted(_hosts_of(cloud, sids)) == list(HOSTS)
    # Soft: a fourth member still lands somewhere.
    _boot(cloud, group, 'e3')


def test_soft_affinity_stacks_against_spreading_weighers(cloud_factory):
    cloud = cloud_factory(**{'filter_scheduler.soft_affinity_weight_multiplier': 10.0})
    group = _group(cloud, 'soft-affinity')
    sids = [_boot(cloud, group, f'f{i}')['id'] for i in range(3)]
    assert len(set(_hosts_of(cloud, sids))) == 1
    loose = [cloud.boot(f'loose{i}')['id'] for i in range(2)]
    assert len(set(_hosts_of(cloud, loose))) == 2  # without the group they spread


def test_the_claim_enforces_the_policy_without_the_filters(cloud_factory):
    """With the group filters switched off the scheduler proposes every host; the claim
    refuses the ones the policy forbids and the explanation says so."""
    cloud = cloud_factory(**{'filter_scheduler.enabled_filters': ['ComputeFilter',
                                                                  'RamFilter']})
    group = _group(cloud, 'anti-affinity')
    sids = [_boot(cloud, group, f'g{i}')['id'] for i in range(3)]
    assert sorted(_hosts_of(cloud, sids)) == list(HOSTS)
    fourth = _boot(cloud, group, 'g3', wait=False)['id']
    details = cloud.wait_for_server(fourth, 'ERROR')['fault']['details']
    assert 'Claims failed on 3 hosts' in details
    assert f'server group {group}: ' in details and 'already holds 1 member' in details


# ---------------------------------------------------------------- moves

def _two_members_and_a_free_host(cloud):
    group = _group(cloud, 'anti-affinity')
    a = _boot(cloud, group, 'a')
    b = _boot(cloud, group, 'b')
    free = (set(HOSTS) - {_host(a), _host(b)}).pop()
    return group, a['id'], _host(a), _host(b), free


@pytest.mark.parametrize('action', [{'migrate': None}, {'resize': {'flavorRef': '2'}}])
def test_cold_moves_honour_anti_affinity(cloud, action):
    group, sid, src, other, free = _two_members_and_a_free_host(cloud)
    cloud.action(sid, action)
    server = cloud.wait_for_server(sid, 'VERIFY_RESIZE')
    assert _host(server) == free
    # During the move the member holds the destination and its migration the source.
    mig = cloud.migrations(sid)[0]
    assert set(db.get_allocations(sid)) == {_node_uuid(free)}
    assert set(db.get_allocations(mig['uuid'])) == {_node_uuid(src)}
    cloud.action(sid, {'confirmResize': None}, expect=204)
    cloud.wait_for_server(sid, 'ACTIVE')
    # Now every host holds one member; nothing is free for another move.
    c = _boot(cloud, group, 'c')
    assert _host(c) == src
    cloud.action(c['id'], {'migrate': None})
    _wait_move_error(cloud, c['id'])
    server = _settled(cloud, c['id'])
    assert _host(server) == src and server['status'] == 'ACTIVE'
    fault = db.fault_get_latest([c['id']])[c['id']]
    assert 'ServerGroupAntiAffinityFilter' in fault['details']


def test_resize_to_same_host_does_not_count_the_member_against_itself(cloud_factory):
    cloud = cloud_factory(compute_hosts=1, allow_resize_to_same_host=True)
    group = _group(cloud, 'anti-affinity')
    sid = _boot(cloud, group, 'solo')['id']
    cloud.action(sid, {'resize': {'flavorRef': '2'}})
    server = cloud.wait_for_server(sid, 'VERIFY_RESIZE')
    assert _host(server) == 'compute1'
    cloud.action(sid, {'confirmResize': None}, expect=204)
    assert cloud.wait_for_server(sid, 'ACTIVE')['flavor']['original_name'] == 'm1.small'


def test_cold_migrate_to_a_named_host_the_group_forbids_fails(cloud):
    group, sid, src, other, free = _two_members_and_a_free_host(cloud)
    cloud.action(sid, {'migrate': {'host': other}}, version='2.56')
    _wait_move_error(cloud, sid)
    server = _settled(cloud, sid)
    assert _host(server) == src and server['status'] == 'ACTIVE'
    assert 'ServerGroupAntiAffinityFilter' in db.fault_get_latest([sid])[sid]['details']


def test_affinity_member_cannot_leave_its_group(cloud):
    group = _group(cloud, 'affinity')
    a = _boot(cloud, group, 'a')
    _boot(cloud, group, 'b')
    cloud.action(a['id'], {'migrate': None})
    _wait_move_error(cloud, a['id'])
    assert _host(_settled(cloud, a['id'])) == _host(a)
    assert 'ServerGroupAffinityFilter' in db.fault_get_latest([a['id']])[a['id']]['details']


def test_lone_affinity_member_moves_freely(cloud):
    group = _group(cloud, 'affinity')
    a = _boot(cloud, group, 'a')
    cloud.action(a['id'], {'migrate': None})
    server = cloud.wait_for_server(a['id'], 'VERIFY_RESIZE')
    assert _host(server) != _host(a)


def _live(cloud, sid, host=None, version='2.34', expect=202, **extra):
    body = {'host': host, 'block_migration': 'auto', **extra}
    return cloud.request('POST', f'/servers/{sid}/action', {'os-migrateLive': body},
                         version=version, expect=expect)


def test_scheduled_live_migration_honours_anti_affinity(cloud):
    group, sid, src, other, free = _two_members_and_a_free_host(cloud)
    _live(cloud, sid)
    cloud.wait_for_migration(sid, 'live-migration', 'completed')
    assert _host(_settled(cloud, sid)) == free


def test_live_migration_to_a_named_host_the_group_forbids(cloud):
    group, sid, src, other, free = _two_members_and_a_free_host(cloud)
    # Asynchronous (2.34+): accepted, then the migration fails and the server stays.
    _live(cloud, sid, host=other)
    cloud.wait_for_migration(sid, 'live-migration', 'error')
    server = _settled(cloud, sid)
    assert _host(server) == src and server['status'] == 'ACTIVE'
    assert 'ServerGroupAntiAffinityFilter' in db.fault_get_latest([sid])[sid]['details']
    # Synchronous (before 2.34), validated by the scheduler: 400.
    resp = _live(cloud, sid, host=other, version='2.30', expect=400)
    assert 'No valid host' in resp.data['badRequest']['message']
    # Forced (2.30-2.67) skips the scheduler, not the group: 400, nothing moved.
    resp = _live(cloud, sid, host=other, version='2.30', force=True, expect=400)
    message = resp.data['badRequest']['message']
    assert f'breaks the anti-affinity policy of server group {group}' in message
    server = _settled(cloud, sid)
    assert _host(server) == src
    assert set(db.get_allocations(sid)) == {_node_uuid(src)}
    # Forced and asynchronous (2.34-2.67): accepted, the migration fails its pre-check.
    def failed():
        return len([m for m in cloud.migrations(sid, 'live-migration')
                    if m['status'] == 'error'])

    before = failed()
    _live(cloud, sid, host=other, version='2.67', force=True)
    cloud.wait_until(lambda: failed() == before + 1,
                     message='the forced live migration in error')
    server = _settled(cloud, sid)
    assert _host(server) == src and server['status'] == 'ACTIVE'
    assert 'breaks the anti-affinity policy' in db.fault_get_latest([sid])[sid]['message']
    assert set(db.get_allocations(sid)) == {_node_uuid(src)}
    # Forced to the free host is fine.
    _live(cloud, sid, host=free, version='2.30', force=True)
    cloud.wait_until(lambda: _host(cloud.server(sid)) == free and
                     cloud.server(sid)['OS-EXT-STS:task_state'] is None)


def test_check_host_for_moves_that_name_a_host(cloud):
    from novalite import exception
    group, sid, src, other, free = _two_members_and_a_free_host(cloud)
    db.check_host(sid, free)
    db.check_host(sid, src)  # its own host: it does not count against itself
    with pytest.raises(exception.GroupPolicyViolation) as err:
        db.check_host(sid, other)
    assert err.value.kwargs['group_uuid'] == group
    loner = cloud.boot('loner')['id']
    db.check_host(loner, other)


def _kill(cloud, host):
    cloud.aio.stop_compute(host)
    cloud.request('PUT', '/os-services/force-down',
                  {'host': host, 'binary': 'novalite-compute', 'forced_down': True},
                  version='2.11', expect=200)


def test_scheduled_evacuation_honours_anti_affinity(cloud):
    group, sid, src, other, free = _two_members_and_a_free_host(cloud)
    _kill(cloud, src)
    cloud.request('POST', f'/servers/{sid}/action', {'evacuate': {}}, version='2.80',
                  expect=200)
    server = cloud.wait_for_server(sid, 'ACTIVE')
    assert _host(server) == free
    assert set(db.get_allocations(sid)) == {_node_uuid(free)}


def test_forced_evacuation_to_a_host_the_group_forbids_fails(cloud):
    group, sid, src, other, free = _two_members_and_a_free_host(cloud)
    _kill(cloud, src)
    cloud.request('POST', f'/servers/{sid}/action',
                  {'evacuate': {'host': other, 'force': True}}, version='2.29', expect=200)
    server = cloud.wait_for_server(sid, 'ERROR')
    assert _host(server) == src
    assert f'breaks the anti-affinity policy of server group {group}' in (
        server['fault']['message'] + server['fault'].get('details', ''))
    assert _node_uuid(other) not in db.get_allocations(sid)
    assert sid not in cloud.hypervisor(other).guests
