"""Evacuation through REST: a server of a dead host rebuilt elsewhere, the allocations of
each step, the returning host's clean-up, failures, and the API's microversions and
error codes."""

import pytest

from novalite.db import api as db

HOSTS = ('compute1', 'compute2', 'compute3')
USER_TOKEN = 'demo:admin'  # a member of the project that owns the server


def _conductor_host(cloud):
    from novalite.conf import CONF
    return CONF.host


def _host(server):
    return server['OS-EXT-SRV-ATTR:host']


def _rp(host):
    return db.compute_node_get_by_host_and_node(host)['uuid']


def _kill(cloud, host):
    """The host's compute stops and is marked down, as an operator fences a dead host."""
    cloud.aio.stop_compute(host)
    _force_down(cloud, host, True)


def _force_down(cloud, host, down):
    cloud.request('PUT', '/os-services/force-down',
                  {'host': host, 'binary': 'novalite-compute', 'forced_down': down},
                  version='2.11', expect=200)


def _evacuate(cloud, sid, body=None, version='2.80', expect=200):
    return cloud.request('POST', f'/servers/{sid}/action', {'evacuate': body or {}},
                         version=version, expect=expect)


def _evacuation(cloud, sid):
    migs = cloud.migrations(sid, 'evacuation')
    return migs[0] if migs else None


def _action(cloud, sid, name):
    acts = cloud.get_json(f'/servers/{sid}/os-instance-actions')['instanceActions']
    act = [a for a in acts if a['action'] == name][0]
    return cloud.get_json(f"/servers/{sid}/os-instance-actions/{act['request_id']}",
                          version='2.80')['instanceAction']


def _settled(cloud, sid, status='ACTIVE'):
    return cloud.wait_for_server(sid, status)


def test_evacuate_rebuilds_elsewhere_and_the_returning_host_cleans_up(cloud):
    server = cloud.boot()
    sid, src = server['id'], _host(server)
    _kill(cloud, src)

    resp = _evacuate(cloud, sid)
    assert resp.status_int == 200 and not resp.body
    server = _settled(cloud, sid)
    dest = _host(server)
    assert dest not in (src, None)
    mig = cloud.wait_for_migration(sid, 'evacuation', 'done')
    assert (mig['source_compute'], mig['dest_compute']) == (src, dest)
    # The guest is rebuilt on the destination; the dead host still holds its old one,
    # and its allocation stays with the migration until it is back.
    assert cloud.hypervisor(dest).guests[sid]['power_state'] == 1
    assert sid in cloud.hypervisor(src).guests
    assert set(db.get_allocations(sid)) == {_rp(dest)}
    assert set(db.get_allocations(mig['uuid'])) == {_rp(src)}
    events = _action(cloud, sid, 'evacuate')['events']
    assert sorted((e['event'], e['result'], e.get('host')) for e in events) == [
        ('compute_rebuild_instance', 'Success', dest),
        ('conductor_rebuild_server', 'Success', _conductor_host(cloud))]

    # It may not be forced up while it holds the evacuated guest: it could run it.
    resp = cloud.request('PUT', '/os-services/force-down',
                         {'host': src, 'binary': 'novalite-compute', 'forced_down': False},
                         version='2.11', expect=400)
    assert '`done` evacuation migration records remain' in resp.data['badRequest']['message']
    svc_id = cloud.get_json('/os-services?binary=nova-compute&host=' + src,
                            version='2.53')['services'][0]['id']
    cloud.request('PUT', f'/os-services/{svc_id}', {'forced_down': False,
                                                     'status': 'disabled'},
                  version='2.53', expect=400)
    svc = cloud.get_json('/os-services?host=' + src, version='2.53')['services'][0]
    assert (svc['forced_down'], svc['status']) == (True, 'enabled')
    # The host comes back: it destroys the evacuated guest and releases its claim; then
    # it may be forced up.
    cloud.aio.add_compute(src)
    cloud.wait_for_migration(sid, 'evacuation', 'completed')
    _force_down(cloud, src, False)
    cloud.wait_until(lambda: sid not in cloud.hypervisor(src).guests,
                     message='the old guest destroyed')
    assert db.get_allocations(mig['uuid']) == {}
    assert set(db.get_allocations(sid)) == {_rp(dest)}
    server = cloud.server(sid)
    assert (server['status'], _host(server)) == ('ACTIVE', dest)
    assert sid in cloud.hypervisor(dest).guests


def test_a_returning_host_keeps_a_guest_that_is_still_its_own(cloud):
    """A server evacuated away and then moved back to its first host: that host's
    clean-up must not destroy the guest that now runs there legitimately."""
    server = cloud.boot()
    sid, src = server['id'], _host(server)
    _kill(cloud, src)
    _evacuate(cloud, sid)
    _settled(cloud, sid)
    mig = cloud.wait_for_migration(sid, 'evacuation', 'done')
    # The old guest is gone from the dead host (its disk was lost, say) before it is back.
    cloud.hypervisor(src).guests.pop(sid)
    cloud.aio.add_compute(src)
    cloud.wait_for_migration(sid, 'evacuation', 'completed')
    _force_down(cloud, src, False)
    assert db.get_allocations(mig['uuid']) == {}
    cloud.action(sid, {'migrate': {'host': src}}, version='2.56')
    cloud.wait_for_server(sid, 'VERIFY_RESIZE')
    cloud.action(sid, {'confirmResize': None}, expect=204)
    server = _settled(cloud, sid)
    assert _host(server) == src and sid in cloud.hypervisor(src).guests
    # A second pass of the clean-up (at the next restart) leaves it alone.
    cloud.aio.stop_compute(src)
    cloud.aio.add_compute(src)
    _settled(cloud, sid)
    assert sid in cloud.hypervisor(src).guests


def test_refused_while_the_source_is_up(cloud):
    server = cloud.boot()
    sid, src = server['id'], _host(server)
    resp = _evacuate(cloud, sid, expect=400)
    assert resp.data['badRequest']['message'] == f'Compute service of {src} is still in use.'
    server = cloud.server(sid)
    assert (server['status'], server['OS-EXT-STS:task_state'], _host(server)) == \
        ('ACTIVE', None, src)
    assert _evacuation(cloud, sid) is None


def test_named_and_forced_hosts(cloud):
    server = cloud.boot()
    sid, src = server['id'], _host(server)
    target = next(h for h in HOSTS if h != src)
    _kill(cloud, src)
    _evacuate(cloud, sid, {'host': target, 'force': True}, version='2.29')
    assert _host(_settled(cloud, sid)) == target
    assert set(db.get_allocations(sid)) == {_rp(target)}
    # Named, not forced, after 2.67: the scheduler checks the host.
    src2 = target
    target2 = next(h for h in HOSTS if h not in (src, src2))
    _kill(cloud, src2)
    _evacuate(cloud, sid, {'host': target2}, version='2.68')
    assert _host(_settled(cloud, sid)) == target2


def test_stopped_server_stays_stopped_and_2_95_stops_it(cloud):
    a = cloud.boot(name='a')
    cloud.action(a['id'], {'os-stop': None})
    cloud.wait_for_server(a['id'], 'SHUTOFF')
    src = _host(a)
    b = cloud.boot(name='b', **{'availability_zone': f'nova:{src}'})
    assert _host(b) == src
    _kill(cloud, src)
    _evacuate(cloud, a['id'])
    _evacuate(cloud, b['id'], version='2.95')
    for sid in (a['id'], b['id']):
        server = _settled(cloud, sid, 'SHUTOFF')
        assert cloud.hypervisor(_host(server)).guests[sid]['power_state'] == 4


def test_no_valid_host_leaves_the_server_on_its_source_in_error(cloud):
    server = cloud.boot()
    sid, src = server['id'], _host(server)
    for h in HOSTS:
        if h != src:
            cloud.request('PUT', '/os-services/disable', {'host': h,
                                                          'binary': 'novalite-compute'},
                          version='2.11', expect=200)
    _kill(cloud, src)
    _evacuate(cloud, sid)
    mig = cloud.wait_for_migration(sid, 'evacuation', 'error')
    # On its dead source in ERROR, as Nova leaves it; it can be evacuated again.
    server = cloud.wait_for_server(sid, 'ERROR')
    assert _host(server) == src and 'No valid host' in server['fault']['message']
    action = _action(cloud, sid, 'evacuate')
    assert [(e['event'], e['result']) for e in action['events']] == \
        [('conductor_rebuild_server', 'Error')]
    assert 'No valid host' in action['events'][0]['traceback']
    assert set(db.get_allocations(sid)) == {_rp(src)}
    assert db.get_allocations(mig['uuid']) == {}


def test_rebuild_failure_puts_the_server_back_on_its_source_in_error(cloud):
    server = cloud.boot()
    sid, src = server['id'], _host(server)
    for h in HOSTS:
        if h != src:
            cloud.hypervisor(h).inject_failure('spawn', 'disk full', count=None)
    _kill(cloud, src)
    _evacuate(cloud, sid)
    mig = cloud.wait_for_migration(sid, 'evacuation', 'failed')
    server = cloud.wait_for_server(sid, 'ERROR')
    assert _host(server) == src and 'disk full' in server['fault']['message']
    assert set(db.get_allocations(sid)) == {_rp(src)}
    assert db.get_allocations(mig['uuid']) == {}
    assert all(sid not in cloud.hypervisor(h).guests for h in HOSTS if h != src)
    # ERROR may be evacuated again once a host can take it.
    for h in HOSTS:
        if h != src:
            cloud.hypervisor(h).clear_failures()
    _evacuate(cloud, sid)
    server = _settled(cloud, sid)
    assert _host(server) != src


@pytest.mark.parametrize('body,version,code', [
    ({}, '2.13', 400),                                     # onSharedStorage required
    ({'onSharedStorage': True, 'adminPass': 'x'}, '2.13', 400),
    ({'onSharedStorage': False}, '2.14', 400),              # gone in 2.14
    ({'force': True}, '2.28', 400),                        # not before 2.29
    ({'force': True}, '2.29', 400),                        # force needs a host
    ({'host': 'compute2', 'force': True}, '2.68', 400),    # gone in 2.68
    ({'host': 'nowhere'}, '2.80', 404),
    ({'host': 'bad host!'}, '2.80', 400),
    ({'bogus': 1}, '2.80', 400),
])
def test_bad_requests(cloud, body, version, code):
    server = cloud.boot()
    sid, src = server['id'], _host(server)
    _kill(cloud, src)
    resp = _evacuate(cloud, sid, body, version=version, expect=code)
    assert resp.status_int == code
    server = cloud.server(sid)
    assert server['OS-EXT-STS:task_state'] is None and _host(server) == src
    assert _evacuation(cloud, sid) is None


def test_same_host_policy_and_state_codes(cloud):
    server = cloud.boot()
    sid, src = server['id'], _host(server)
    _kill(cloud, src)
    resp = _evacuate(cloud, sid, {'host': src}, expect=400)
    assert resp.data['badRequest']['message'] == "The target host can't be the same one."
    assert cloud.request('POST', f'/servers/{sid}/action', {'evacuate': {}},
                         token=USER_TOKEN, expect=403).status_int == 403
    cloud.action(sid, {'lock': None})
    # Locked servers may still be evacuated by an administrator; a running task is 409.
    db.instance_update(sid, {'task_state': 'rebuilding'})
    assert _evacuate(cloud, sid, expect=409).status_int == 409
    db.instance_update(sid, {'task_state': None})
    assert _evacuation(cloud, sid) is None


def test_up_to_2_13_the_answer_carries_the_admin_password(cloud):
    server = cloud.boot()
    _kill(cloud, _host(server))
    resp = _evacuate(cloud, server['id'], {'onSharedStorage': False, 'adminPass': 'pw-1'},
                     version='2.13')
    assert resp.data == {'adminPass': 'pw-1'}
    _settled(cloud, server['id'])
    other = cloud.boot(name='other')
    if _host(other) != _host(server):
        _kill(cloud, _host(other))
    resp = _evacuate(cloud, other['id'], {'onSharedStorage': False}, version='2.13')
    assert len(resp.data['adminPass']) >= 8
