"""Resize and cold migration through REST: happy paths, errors, allocations, events."""

import threading

import pytest

from novalite.db import api as db

MV = '2.80'


def _host(server):
    return server['OS-EXT-SRV-ATTR:host']


def _allocs(consumer):
    return db.get_allocations(consumer)


def _node_uuid(host):
    return db.compute_node_get_by_host_and_node(host)['uuid']


def _events(cloud, sid, action):
    acts = cloud.get_json(f'/servers/{sid}/os-instance-actions', version=MV)['instanceActions']
    act = [a for a in acts if a['action'] == action][0]
    detail = cloud.get_json(f"/servers/{sid}/os-instance-actions/{act['request_id']}",
                            version=MV)['instanceAction']
    return {e['event']: e['result'] for e in detail['events']}, detail


def test_resize_up_confirm(cloud):
    server = cloud.boot('r1')
    sid, src = server['id'], _host(server)
    cloud.action(sid, {'resize': {'flavorRef': '2'}})
    server = cloud.wait_for_server(sid, 'VERIFY_RESIZE')
    dst = _host(server)
    assert dst != src
    assert server['flavor']['original_name'] == 'm1.small'
    mig = cloud.migrations(sid)[0]
    assert (mig['status'], mig['migration_type']) == ('finished', 'resize')
    assert (mig['source_compute'], mig['dest_compute']) == (src, dst)
    # Both hosts hold allocations: the migration the old flavor on the source, the
    # instance the new flavor on the destination.
    assert _allocs(mig['uuid']) == {_node_uuid(src): {'VCPU': 1, 'MEMORY_MB': 512,
                                                      'DISK_GB': 1}}
    assert _allocs(sid) == {_node_uuid(dst): {'VCPU': 1, 'MEMORY_MB': 2048, 'DISK_GB': 20}}
    assert sid in cloud.hypervisor(dst).guests
    assert sid not in cloud.hypervisor(src).guests
    assert cloud.hypervisor(dst).guests[sid]['memory_mb'] == 2048

    cloud.action(sid, {'confirmResize': None}, expect=204)
    server = cloud.wait_for_server(sid, 'ACTIVE')
    assert _host(server) == dst
    cloud.wait_until(lambda: cloud.migrations(sid)[0]['status'] == 'confirmed')
    assert _allocs(mig['uuid']) == {}
    assert sid not in cloud.hypervisor(src).resize_backups
    events, action = _events(cloud, sid, 'resize')
    assert events == {'conductor_migrate_server': 'Success', 'cold_migrate': 'Success',
                      'compute_prep_resize': 'Success', 'compute_resize_instance': 'Success',
                      'compute_finish_resize': 'Success'}
    assert action['message'] is None
    events, _ = _events(cloud, sid, 'confirmResize')
    assert events == {'compute_confirm_resize': 'Success'}


def test_cold_migrate_revert_restores_everything(cloud):
    server = cloud.boot('m1')
    sid, src = server['id'], _host(server)
    before = _allocs(sid)
    cloud.action(sid, {'migrate': None})
    server = cloud.wait_for_server(sid, 'VERIFY_RESIZE')
    dst = _host(server)
    assert dst != src
    assert cloud.migrations(sid)[0]['migration_type'] == 'migration'
    cloud.action(sid, {'revertResize': None})
    server = cloud.wait_for_server(sid, 'ACTIVE')
    assert _host(server) == src
    assert server['flavor']['original_name'] == 'm1.tiny'
    cloud.wait_until(lambda: cloud.migrations(sid)[0]['status'] == 'reverted')
    assert _allocs(sid) == before
    assert _allocs(cloud.migrations(sid)[0]['uuid']) == {}
    assert sid in cloud.hypervisor(src).guests and sid not in cloud.hypervisor(dst).guests
    events, _ = _events(cloud, sid, 'revertResize')
    assert events == {'compute_revert_resize': 'Success',
                      'compute_finish_revert_resize': 'Success'}


def test_migrate_to_named_host(cloud):
    server = cloud.boot('n1')
    sid, src = server['id'], _host(server)
    target = [h for h in ('compute1', 'compute2', 'compute3') if h != src][1]
    cloud.action(sid, {'migrate': {'host': target}}, version='2.56')
    server = cloud.wait_for_server(sid, 'VERIFY_RESIZE')
    assert _host(server) == target


def test_resize_stopped_server_stays_stopped(cloud):
    sid = cloud.boot('s1')['id']
    cloud.action(sid, {'os-stop': None})
    cloud.wait_for_server(sid, 'SHUTOFF')
    cloud.action(sid, {'resize': {'flavorRef': '2'}})
    server = cloud.wait_for_server(sid, 'VERIFY_RESIZE')
    assert server['OS-EXT-STS:power_state'] == 4
    cloud.action(sid, {'confirmResize': None}, expect=204)
    server = cloud.wait_for_server(sid, 'SHUTOFF')
    assert server['OS-EXT-STS:vm_state'] == 'stopped'


def test_auto_confirm(cloud_factory):
    cloud = cloud_factory(**{'resize_confirm_window': 1, 'periodic_interval': 1})
    sid = cloud.boot('a1')['id']
    cloud.action(sid, {'resize': {'flavorRef': '2'}})
    cloud.wait_for_server(sid, 'VERIFY_RESIZE')
    server = cloud.wait_for_server(sid, 'ACTIVE', timeout=10)
    assert server['flavor']['original_name'] == 'm1.small'
    cloud.wait_until(lambda: cloud.migrations(sid)[0]['status'] == 'confirmed')


@pytest.mark.parametrize('body,code,text', [
    ({'resize': {'flavorRef': '1'}}, 400, 'must change flavor'),
    ({'resize': {'flavorRef': 'nope'}}, 400, 'could not be found'),
    ({'resize': {}}, 400, None),
    ({'migrate': {'host': 'nosuchhost'}}, 400, None),
    ({'resize': {'flavorRef': '2'}, 'migrate': None}, 400, None),
])
def test_resize_bad_requests_change_nothing(cloud, body, code, text):
    server = cloud.boot('b1')
    resp = cloud.request('POST', f"/servers/{server['id']}/action", body, version='2.56')
    data = resp.data
    assert resp.status_int == code, data
    if text:
        assert text in str(data)
    after = cloud.server(server['id'])
    assert (after['status'], after['OS-EXT-STS:task_state']) == ('ACTIVE', None)
    assert cloud.migrations(server['id']) == []


def test_migrate_to_current_host_is_400(cloud):
    server = cloud.boot('c1')
    resp = cloud.request('POST', f"/servers/{server['id']}/action",
                         {'migrate': {'host': _host(server)}}, version='2.56')
    assert resp.status_int == 400


def test_resize_disabled_flavor_is_400(cloud):
    cloud.request('POST', '/flavors', {'flavor': {'name': 'off', 'ram': 256, 'vcpus': 1,
                                                  'disk': 1, 'id': 'off'}}, expect=200)
    db.flavor_update('off', disabled=True)
    server = cloud.boot('d1')
    resp = cloud.request('POST', f"/servers/{server['id']}/action",
                         {'resize': {'flavorRef': 'off'}})
    assert resp.status_int == 400


def test_resize_over_quota_is_403_with_overage(cloud):
    db.quota_set('demo', 'cores', 2)
    server = cloud.boot('q1', token='alice:demo')
    resp = cloud.request('POST', f"/servers/{server['id']}/action",
                         {'resize': {'flavorRef': '4'}}, token='alice:demo')
    data = resp.data
    assert resp.status_int == 403
    assert 'cores' in data['forbidden']['message']


def test_other_project_gets_404(cloud):
    server = cloud.boot('p1', token='alice:demo')
    resp = cloud.request('POST', f"/servers/{server['id']}/action",
                         {'resize': {'flavorRef': '2'}}, token='bob:other')
    assert resp.status_int == 404


def test_locked_server_409_for_owner_admin_bypasses(cloud):
    server = cloud.boot('l1', token='alice:demo')
    sid = server['id']
    cloud.action(sid, {'lock': None}, token='alice:demo')
    resp = cloud.request('POST', f'/servers/{sid}/action', {'resize': {'flavorRef': '2'}},
                         token='alice:demo')
    assert resp.status_int == 409
    cloud.action(sid, {'resize': {'flavorRef': '2'}}, token='admin:admin')
    cloud.wait_for_server(sid, 'VERIFY_RESIZE', token='alice:demo')


def test_concurrent_moves_one_wins(cloud):
    sid = cloud.boot('x1')['id']
    results = []
    barrier = threading.Barrier(2)

    def go(body):
        barrier.wait()
        resp = cloud.request('POST', f'/servers/{sid}/action', body)
        results.append(resp.status_int)

    threads = [threading.Thread(target=go, args=(b,)) for b in
               ({'resize': {'flavorRef': '2'}}, {'migrate': None})]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [202, 409]
    cloud.wait_for_server(sid, 'VERIFY_RESIZE')
    assert len(cloud.migrations(sid)) == 1


def test_no_valid_host_for_resize(cloud):
    db.quota_set('admin', 'ram', 10 ** 6)
    cloud.request('POST', '/flavors', {'flavor': {'name': 'big', 'ram': 30000, 'vcpus': 1,
                                                  'disk': 1, 'id': 'big'}}, expect=200)
    server = cloud.boot('nv', flavor='big')
    sid, src = server['id'], _host(server)
    # Fill the other hosts so the resize finds no room anywhere but the source.
    for host in ('compute1', 'compute2', 'compute3'):
        if host != src:
            cloud.boot(f'fill-{host}', flavor='big', availability_zone=f'nova:{host}')
    cloud.request('POST', '/flavors', {'flavor': {'name': 'mid', 'ram': 3000, 'vcpus': 1,
                                                  'disk': 1, 'id': 'mid'}}, expect=200)
    cloud.action(sid, {'resize': {'flavorRef': 'mid'}})
    cloud.wait_until(lambda: cloud.migrations(sid) and
                     cloud.migrations(sid)[0]['status'] == 'error')
    server = cloud.wait_for_server(sid, 'ACTIVE')
    assert _host(server) == src
    assert _allocs(sid) == {_node_uuid(src): {'VCPU': 1, 'MEMORY_MB': 30000, 'DISK_GB': 1}}
    assert _allocs(cloud.migrations(sid)[0]['uuid']) == {}
    cloud.wait_until(lambda: _events(cloud, sid, 'resize')[0].get(
        'conductor_migrate_server') == 'Error', message='conductor_migrate_server Error')
    assert _events(cloud, sid, 'resize')[1]['message'] == 'Error'
    faults = db.fault_get_latest([sid])
    assert 'No valid host' in faults[sid]['message']
    assert 'RamFilter' in faults[sid]['details']


def test_disk_shrink_refused_rolls_back(cloud):
    cloud.request('POST', '/flavors', {'flavor': {'name': 'small-disk', 'ram': 512,
                                                  'vcpus': 1, 'disk': 1, 'id': 'sd'}},
                  expect=200)
    server = cloud.boot('shrink', flavor='2')  # 20 GB root
    sid, src = server['id'], _host(server)
    cloud.action(sid, {'resize': {'flavorRef': 'sd'}})
    cloud.wait_until(lambda: [m['status'] for m in cloud.migrations(sid)] == ['error'])
    server = cloud.wait_for_server(sid, 'ACTIVE')
    assert _host(server) == src
    assert server['flavor']['original_name'] == 'm1.small'
    assert sid in cloud.hypervisor(src).guests
    assert cloud.hypervisor(src).guests[sid]['power_state'] == 1
    assert _allocs(sid) == {_node_uuid(src): {'VCPU': 1, 'MEMORY_MB': 2048, 'DISK_GB': 20}}
    fault = db.fault_get_latest([sid])[sid]
    assert 'resize disk down' in fault['message']
    # The event closes right after the state is restored.
    cloud.wait_until(lambda: _events(cloud, sid, 'resize')[0].get(
        'compute_resize_instance') == 'Error', message='compute_resize_instance Error')


def test_prep_resize_failure_reschedules_to_alternate(cloud):
    server = cloud.boot('rs')
    sid, src = server['id'], _host(server)
    others = [h for h in ('compute1', 'compute2', 'compute3') if h != src]
    for h in others[:1]:
        cloud.hypervisor(h).inject_failure('prepare_for_incoming_move', 'no room here')
    # Make the failing host the scheduler's first choice by consuming the other.
    cloud.boot('weight', flavor='3', availability_zone=f'nova:{others[1]}')
    cloud.action(sid, {'migrate': None})
    server = cloud.wait_for_server(sid, 'VERIFY_RESIZE')
    assert _host(server) == others[1]
    _, action = _events(cloud, sid, 'migrate')
    prep = sorted(e['result'] for e in action['events'] if e['event'] == 'compute_prep_resize')
    assert prep == ['Error', 'Success']
    assert [m['status'] for m in cloud.migrations(sid)] == ['finished']


def test_finish_resize_failure_sets_error_with_fault(cloud):
    server = cloud.boot('ff')
    sid = server['id']
    for h in ('compute1', 'compute2', 'compute3'):
        cloud.hypervisor(h).inject_failure('finish_migration', 'disk vanished', count=None)
    cloud.action(sid, {'migrate': None})
    server = cloud.wait_for_server(sid, 'ERROR')
    assert server['fault']['message'] == 'disk vanished'
    assert cloud.migrations(sid)[0]['status'] == 'error'


def test_resize_notifications(cloud):
    from tests.functional.notifications import collect
    with collect() as seen:
        sid = cloud.boot('nt')['id']
        cloud.action(sid, {'resize': {'flavorRef': '2'}})
        cloud.wait_for_server(sid, 'VERIFY_RESIZE')
        cloud.action(sid, {'confirmResize': None}, expect=204)
        cloud.wait_for_server(sid, 'ACTIVE')
        cloud.wait_until(lambda: 'instance.resize_confirm.end' in seen.types())
    types = seen.types()
    for t in ('instance.resize_prep.start', 'instance.resize_prep.end',
              'instance.resize.start', 'instance.resize.end',
              'instance.resize_finish.start', 'instance.resize_finish.end',
              'instance.resize_confirm.start', 'instance.resize_confirm.end'):
        assert t in types
    payload = seen.by_type('instance.resize_finish.end')[0]['payload']
    assert payload['novalite_object.data']['uuid'] == sid


def test_cold_move_disk_copy_progress_in_server_migrations(cloud_factory):
    # 1 GiB root disk at 256 MiB/s: four seconds of copy to watch.
    cloud = cloud_factory(**{'fake_driver.disk_copy_mb_per_s': 256.0})
    sid = cloud.boot('copy')['id']
    cloud.action(sid, {'migrate': None})

    def copying():
        migs = cloud.get_json(f'/servers/{sid}/migrations', version='2.80')['migrations']
        return migs and migs[0]['disk_processed_bytes'] and migs[0]
    mig = cloud.wait_until(copying, message='disk copy progress shown')
    total = 1024 ** 3
    assert mig['status'] == 'migrating' and mig['disk_total_bytes'] == total
    assert 0 < mig['disk_processed_bytes'] < total
    assert mig['disk_remaining_bytes'] == total - mig['disk_processed_bytes']
    assert mig['memory_total_bytes'] is None
    shown = cloud.get_json(f"/servers/{sid}/migrations/{mig['id']}",
                           version='2.80')['migration']
    assert shown['uuid'] == mig['uuid']
    # Abort and force-complete stay live-migration only: refused, the copy goes on.
    cloud.request('DELETE', f"/servers/{sid}/migrations/{mig['id']}", version='2.80',
                  expect=409)
    cloud.request('POST', f"/servers/{sid}/migrations/{mig['id']}/action",
                  {'force_complete': None}, version='2.80', expect=409)
    cloud.wait_for_server(sid, 'VERIFY_RESIZE')
    assert cloud.get_json(f'/servers/{sid}/migrations', version='2.80')['migrations'] == []
    # The final figures came with the step that ended the copy.
    rec = db.migration_get(mig['uuid'])
    assert (rec['disk_total'], rec['disk_processed'], rec['disk_remaining']) == \
        (total, total, 0)
