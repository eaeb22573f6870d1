"""Live migration through REST: scheduling, named hosts, progress, timeouts, abort,
force-complete, failures at every hop and the API's error codes."""

import pytest

from novalite.db import api as db

MV = '2.80'
HOSTS = ('compute1', 'compute2', 'compute3')


def _host(server):
    return server['OS-EXT-SRV-ATTR:host']


def _lm(cloud, sid):
    migs = cloud.migrations(sid, 'live-migration')
    return migs[0] if migs else None


def _node_uuid(host):
    return db.compute_node_get_by_host_and_node(host)['uuid']


def _live(cloud, sid, host=None, version='2.34', expect=202, **extra):
    body = {'host': host, 'block_migration': 'auto', **extra}
    return cloud.request('POST', f'/servers/{sid}/action', {'os-migrateLive': body},
                         version=version, expect=expect)


def _wait_lm_status(cloud, sid, *statuses, timeout=15):
    return cloud.wait_for_migration(sid, 'live-migration', statuses, timeout=timeout)


def _settled(cloud, sid):
    return cloud.wait_until(lambda: cloud.server(sid)['OS-EXT-STS:task_state'] is None and
                            cloud.server(sid), message='task cleared')


def _events(cloud, sid, action):
    acts = cloud.get_json(f'/servers/{sid}/os-instance-actions', version=MV)['instanceActions']
    act = [a for a in acts if a['action'] == action][0]
    return cloud.get_json(f"/servers/{sid}/os-instance-actions/{act['request_id']}",
                          version=MV)['instanceAction']


def _slow(cloud, mb_s=200.0, dirty=0.0):
    for h in HOSTS:
        cloud.hypervisor(h).live_migration_bandwidth_mb_s = mb_s
        cloud.hypervisor(h).dirty_rate_mb_s = dirty


def test_scheduled_live_migration(cloud):
    from tests.functional.notifications import collect
    server = cloud.boot('lm1')
    sid, src = server['id'], _host(server)
    with collect() as seen:
        _live(cloud, sid)
        mig = _wait_lm_status(cloud, sid, 'completed')
        server = _settled(cloud, sid)
        cloud.wait_until(lambda: 'instance.live_migration_post.end' in seen.types())
    dst = _host(server)
    assert dst != src and server['status'] == 'ACTIVE'
    assert (mig['source_compute'], mig['dest_compute']) == (src, dst)
    assert sid in cloud.hypervisor(dst).guests and sid not in cloud.hypervisor(src).guests
    assert db.get_allocations(sid) == {_node_uuid(dst): {'VCPU': 1, 'MEMORY_MB': 512,
                                                         'DISK_GB': 1}}
    assert db.get_allocations(mig['uuid']) == {}
    detail = cloud.wait_until(lambda: (lambda d: len(d['events']) >= 6 and d)(
        _events(cloud, sid, 'live-migration')))
    names = {e['event']: e['result'] for e in detail['events']}
    assert names == {'conductor_live_migrate_instance': 'Success',
                     'compute_check_can_live_migrate_destination': 'Success',
                     'compute_check_can_live_migrate_source': 'Success',
                     'compute_live_migration': 'Success',
                     'compute_pre_live_migration': 'Success',
                     'compute_post_live_migration_at_destination': 'Success'}
    for t in ('instance.live_migration_pre.start', 'instance.live_migration_pre.end',
              'instance.live_migration_post.start', 'instance.live_migration_post_dest.end'):
        assert t in seen.types()


def test_named_host_and_forced_host(cloud):
    server = cloud.boot('lm2')
    sid, src = server['id'], _host(server)
    others = [h for h in HOSTS if h != src]
    _live(cloud, sid, host=others[0])
    _wait_lm_status(cloud, sid, 'completed')
    assert _host(_settled(cloud, sid)) == others[0]
    _live(cloud, sid, host=others[1], force=True)
    cloud.wait_until(lambda: _host(cloud.server(sid)) == others[1] and
                     cloud.server(sid)['OS-EXT-STS:task_state'] is None)


def test_progress_visible_while_running(cloud):
    server = cloud.boot('lm3', flavor='2')
    sid = server['id']
    _slow(cloud, mb_s=4000)
    _live(cloud, sid)
    _wait_lm_status(cloud, sid, 'running')
    migs = cloud.wait_until(lambda: [m for m in cloud.get_json(
        f'/servers/{sid}/migrations', version='2.80')['migrations']
        if m['memory_processed_bytes']], message='progress in server migrations')
    m = migs[0]
    assert m['memory_total_bytes'] == 2048 * 1024 * 1024
    assert m['disk_total_bytes'] > 0
    _wait_lm_status(cloud, sid, 'completed', timeout=30)


def test_timeout_abort_keeps_guest_on_source(cloud_factory):
    cloud = cloud_factory(**{'libvirt.live_migration_completion_timeout': 1,
                             'libvirt.live_migration_timeout_action': 'abort'})
    server = cloud.boot('to1')
    sid, src = server['id'], _host(server)
    _slow(cloud, mb_s=100, dirty=1000)
    _live(cloud, sid)
    mig = _wait_lm_status(cloud, sid, 'cancelled', 'failed', timeout=20)
    server = _settled(cloud, sid)
    assert _host(server) == src and server['status'] == 'ACTIVE'
    assert mig['status'] == 'cancelled'
    assert cloud.hypervisor(src).guests[sid]['power_state'] == 1
    assert db.get_allocations(sid) == {_node_uuid(src): {'VCPU': 1, 'MEMORY_MB': 512,
                                                         'DISK_GB': 1}}
    assert all(sid not in cloud.hypervisor(h).incoming for h in HOSTS)


@pytest.mark.parametrize('post_copy', [False, True])
def test_timeout_force_complete_converges(cloud_factory, post_copy):
    cloud = cloud_factory(**{'libvirt.live_migration_completion_timeout': 1,
                             'libvirt.live_migration_timeout_action': 'force_complete',
                             'libvirt.live_migration_permit_post_copy': post_copy})
    server = cloud.boot('to2')
    sid, src = server['id'], _host(server)
    _slow(cloud, mb_s=400, dirty=1000)
    _live(cloud, sid)
    _wait_lm_status(cloud, sid, 'completed', timeout=30)
    server = _settled(cloud, sid)
    assert _host(server) != src
    assert server['OS-EXT-STS:power_state'] == 1


def test_abort_running(cloud):
    server = cloud.boot('ab1', flavor='2')
    sid, src = server['id'], _host(server)
    _slow(cloud, mb_s=200)
    _live(cloud, sid)
    mig = _wait_lm_status(cloud, sid, 'running')
    cloud.request('DELETE', f"/servers/{sid}/migrations/{mig['id']}", version='2.24',
                  expect=202)
    mig = _wait_lm_status(cloud, sid, 'cancelled')
    server = _settled(cloud, sid)
    assert _host(server) == src and server['status'] == 'ACTIVE'
    assert sid in cloud.hypervisor(src).guests
    detail = _events(cloud, sid, 'live_migration_cancel')
    assert {e['event'] for e in detail['events']} == {'compute_live_migration_abort'}


def test_abort_queued_needs_2_65(cloud):
    # One outgoing live migration at a time: the second waits in "queued".
    a = cloud.boot('q1', availability_zone='nova:compute1', flavor='2')['id']
    b = cloud.boot('q2', availability_zone='nova:compute1')['id']
    _slow(cloud, mb_s=100)
    _live(cloud, a)
    _wait_lm_status(cloud, a, 'running')
    _live(cloud, b)
    mig = _wait_lm_status(cloud, b, 'queued')
    resp = cloud.request('DELETE', f"/servers/{b}/migrations/{mig['id']}", version='2.24')
    assert resp.status_int == 400
    cloud.request('DELETE', f"/servers/{b}/migrations/{mig['id']}", version='2.65',
                  expect=202)
    _wait_lm_status(cloud, b, 'cancelled')
    assert _host(_settled(cloud, b)) == 'compute1'
    mig_a = _lm(cloud, a)
    cloud.request('DELETE', f"/servers/{a}/migrations/{mig_a['id']}", version='2.24',
                  expect=202)
    _wait_lm_status(cloud, a, 'cancelled')


def test_force_complete_running(cloud):
    server = cloud.boot('fc1')
    sid, src = server['id'], _host(server)
    _slow(cloud, mb_s=1000, dirty=3000)
    _live(cloud, sid)
    mig = _wait_lm_status(cloud, sid, 'running')
    cloud.request('POST', f"/servers/{sid}/migrations/{mig['id']}/action",
                  {'force_complete': None}, version='2.22', expect=202)
    _wait_lm_status(cloud, sid, 'completed', timeout=30)
    assert _host(_settled(cloud, sid)) != src


def test_force_complete_not_running_is_400(cloud):
    sid = cloud.boot('fc2')['id']
    _live(cloud, sid)
    mig = _wait_lm_status(cloud, sid, 'completed')
    resp = cloud.request('POST', f"/servers/{sid}/migrations/{mig['id']}/action",
                         {'force_complete': None}, version='2.22')
    assert resp.status_int in (400, 409)


@pytest.mark.parametrize('op,status', [
    ('check_can_live_migrate_source', 'error'),
    ('pre_live_migration', 'error'),
    ('live_migration', 'failed'),
])
def test_failure_at_each_hop_rolls_back(cloud, op, status):
    server = cloud.boot('f-' + op)
    sid, src = server['id'], _host(server)
    before = db.get_allocations(sid)
    for h in HOSTS:
        cloud.hypervisor(h).inject_failure(op, f'{op} broke', count=None)
    _live(cloud, sid)
    mig = _wait_lm_status(cloud, sid, status, 'error', 'failed')
    server = _settled(cloud, sid)
    assert mig['status'] == status
    assert _host(server) == src and server['status'] == 'ACTIVE'
    assert cloud.hypervisor(src).guests[sid]['power_state'] == 1
    assert all(sid not in cloud.hypervisor(h).guests for h in HOSTS if h != src)
    assert all(sid not in cloud.hypervisor(h).incoming for h in HOSTS)
    assert db.get_allocations(sid) == before
    assert db.get_allocations(mig['uuid']) == {}


def test_destination_check_failure_tries_next_host(cloud):
    server = cloud.boot('nx')
    sid, src = server['id'], _host(server)
    others = [h for h in HOSTS if h != src]
    cloud.hypervisor(others[0]).inject_failure('check_can_live_migrate_destination',
                                               'no', count=None)
    _live(cloud, sid)
    _wait_lm_status(cloud, sid, 'completed')
    assert _host(_settled(cloud, sid)) == others[1]


def test_named_host_check_failure_sync_is_400(cloud):
    server = cloud.boot('sy')
    sid, src = server['id'], _host(server)
    target = [h for h in HOSTS if h != src][0]
    cloud.hypervisor(target).inject_failure('check_can_live_migrate_destination', 'nope',
                                            count=None)
    resp = cloud.request('POST', f'/servers/{sid}/action', {'os-migrateLive': {
        'host': target, 'block_migration': True, 'disk_over_commit': False}},
        version='2.20')
    data = resp.data
    assert resp.status_int == 400, data
    server = _settled(cloud, sid)
    assert _host(server) == src and server['status'] == 'ACTIVE'
    assert _lm(cloud, sid)['status'] == 'error'


def test_post_at_destination_failure_sets_error(cloud):
    server = cloud.boot('pd')
    sid = server['id']
    for h in HOSTS:
        cloud.hypervisor(h).inject_failure('post_live_migration_at_destination', 'x',
                                           count=None)
    src = _host(server)
    _live(cloud, sid)
    mig = _wait_lm_status(cloud, sid, 'error')
    server = cloud.wait_for_server(sid, 'ERROR')
    assert server['fault']['message']
    # The copy had finished: the guest is on the destination, and so is the record.
    dst = mig['dest_compute']
    assert dst != src and _host(server) == dst
    assert sid not in cloud.hypervisor(src).guests
    assert sid in cloud.hypervisor(dst).guests or sid in cloud.hypervisor(dst).incoming
    assert set(db.get_allocations(sid)) == {_node_uuid(dst)}
    assert db.get_allocations(mig['uuid']) == {}


@pytest.mark.parametrize('body,version,code', [
    ({'host': None}, '2.30', 400),                               # block_migration missing
    ({'host': None, 'block_migration': 'auto', 'disk_over_commit': False}, '2.30', 400),
    ({'host': None, 'block_migration': 'auto'}, '2.20', 400),    # 'auto' is 2.25+
    ({'host': None, 'block_migration': True}, '2.20', 400),      # disk_over_commit missing
    ({'host': 'nosuch', 'block_migration': 'auto'}, '2.30', 400),
    ({'host': None, 'block_migration': 'auto', 'force': True}, '2.30', 400),
    ({'host': None, 'block_migration': 'auto', 'force': True}, '2.68', 400),
    ({'host': None, 'block_migration': 'auto', 'bogus': 1}, '2.30', 400),
])
def test_bad_requests(cloud, body, version, code):
    sid = cloud.boot('bad')['id']
    resp = cloud.request('POST', f'/servers/{sid}/action', {'os-migrateLive': body},
                         version=version)
    assert resp.status_int == code
    assert _lm(cloud, sid) is None
    assert cloud.server(sid)['OS-EXT-STS:task_state'] is None


def test_state_lock_and_policy_codes(cloud):
    sid = cloud.boot('st', token='alice:demo')['id']
    src = _host(cloud.server(sid))
    resp = cloud.request('POST', f'/servers/{sid}/action', {'os-migrateLive': {
        'host': src, 'block_migration': 'auto'}}, version='2.30')
    assert resp.status_int == 400  # to itself
    # A member may not name a host (admin only) nor live-migrate at all by default.
    resp = cloud.request('POST', f'/servers/{sid}/action', {'os-migrateLive': {
        'host': None, 'block_migration': 'auto'}}, version='2.30', token='alice:demo')
    assert resp.status_int == 403
    cloud.action(sid, {'os-stop': None}, token='alice:demo')
    cloud.wait_for_server(sid, 'SHUTOFF', token='alice:demo')
    resp = _live(cloud, sid, expect=None)
    assert resp.status_int == 409
    cloud.action(sid, {'os-start': None}, token='alice:demo')
    cloud.wait_for_server(sid, 'ACTIVE', token='alice:demo')
    cloud.action(sid, {'lock': None}, token='alice:demo')
    resp = cloud.request('POST', f'/servers/{sid}/action', {'os-migrateLive': {
        'host': None, 'block_migration': 'auto'}}, version='2.30',
        token='alice:demo:member,reader,manager')
    assert resp.status_int == 409
