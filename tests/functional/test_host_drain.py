"""Host drains through REST: a host emptied live and cold within its parallelism, the
report of the servers that could not move and why, cancel and resume, and the API's
error codes."""

import pytest

from novalite.db import api as db

SRC = 'compute1'
MV = '2.80'


def _boot_on(cloud, name, host=SRC):
    return cloud.boot(name, availability_zone=f'nova:{host}')['id']


def _drain(cloud, host=SRC, expect=202, **values):
    r = cloud.request('POST', '/os-host-drains', {'drain': {'host': host, **values}},
                      expect=expect)
    return r.data.get('drain') if expect == 202 else r


def _show(cloud, drain_id):
    return cloud.get_json(f'/os-host-drains/{drain_id}')['drain']


def _wait_ended(cloud, drain_id, timeout=30):
    return cloud.wait_until(
        lambda: (lambda d: d['status'] in ('completed', 'failed', 'cancelled') and d)(
            _show(cloud, drain_id)), timeout=timeout, message='drain ended')


def _host(cloud, sid):
    return cloud.server(sid)['OS-EXT-SRV-ATTR:host']


def _node_uuid(host):
    return db.compute_node_get_by_host_and_node(host)['uuid']


def _max_overlap(migrations) -> int:
    """Most migrations under way at one moment, from their records (created, then
    written final)."""
    points = []
    for m in migrations:
        points.append((m['created_at'], 1))
        points.append((m['updated_at'], -1))
    points.sort(key=lambda p: (p[0], p[1]))
    best = now = 0
    for _, delta in points:
        now += delta
        best = max(best, now)
    return best


def _slow_live(cloud, mb_s):
    for h in ('compute1', 'compute2', 'compute3'):
        cloud.hypervisor(h).live_migration_bandwidth_mb_s = mb_s


@pytest.fixture
def cloud(cloud_factory):
    return cloud_factory(**{'conductor.drain_interval': 0.2})


def test_drain_moves_every_server_off_live_and_cold(cloud):
    _slow_live(cloud, 2000)  # 512 MiB guests: about a quarter of a second each
    active = [_boot_on(cloud, f'a{i}') for i in range(4)]
    stopped = _boot_on(cloud, 'stopped')
    cloud.action(stopped, {'os-stop': None})
    cloud.wait_for_server(stopped, 'SHUTOFF')

    drain = _drain(cloud, mode='auto', max_parallel=2)
    assert drain['status'] == 'running' and drain['total'] == 5
    assert {s['server_id'] for s in drain['servers']} == set(active + [stopped])
    svc = cloud.get_json(f'/os-services?host={SRC}&binary=novalite-compute')['services'][0]
    assert svc['status'] == 'disabled'
    assert drain['id'] in svc['disabled_reason']

    done = _wait_ended(cloud, drain['id'])
    assert (done['status'], done['moved'], done['failed'], done['remaining']) == \
        ('completed', 5, 0, 0)
    moves = {s['server_id']: s['move'] for s in done['servers']}
    assert moves == {**dict.fromkeys(active, 'live'), stopped: 'cold'}
    assert db.instance_get_all_by_host(SRC) == []
    assert cloud.hypervisor(SRC).guests == {}
    for sid in active + [stopped]:
        server = cloud.server(sid)
        host = server['OS-EXT-SRV-ATTR:host']
        assert host != SRC and server['OS-EXT-STS:task_state'] is None
        assert server['status'] == ('SHUTOFF' if sid == stopped else 'ACTIVE')
        assert sid in cloud.hypervisor(host).guests
        assert list(db.get_allocations(sid)) == [_node_uuid(host)]
    migs = db.migration_get_all(source_compute=SRC)
    assert sorted((m['migration_type'], m['status']) for m in migs) == \
        [('live-migration', 'completed')] * 4 + [('migration', 'confirmed')]
    live = [m for m in migs if m['migration_type'] == 'live-migration']
    assert all(m['drain_id'] is not None for m in live)
    for m in migs:
        assert db.get_allocations(m['uuid']) == {}
    assert _max_overlap(migs) <= 2
    # The host stays disabled for the maintenance the drain was for.
    svc = cloud.get_json(f'/os-services?host={SRC}&binary=novalite-compute')['services'][0]
    assert svc['status'] == 'disabled'
    listed = cloud.get_json('/os-host-drains')['drains']
    assert [(d['id'], d['status'], d['moved']) for d in listed] == \
        [(drain['id'], 'completed', 5)]
    assert 'servers' not in listed[0]


def test_cluster_of_ten_never_more_than_max_parallel(cloud):
    _slow_live(cloud, 4000)
    sids = [_boot_on(cloud, f's{i}') for i in range(10)]
    drain = _drain(cloud, mode='live', max_parallel=3)
    done = _wait_ended(cloud, drain['id'], timeout=60)
    assert (done['status'], done['moved']) == ('completed', 10)
    assert db.instance_get_all_by_host(SRC) == [] and cloud.hypervisor(SRC).guests == {}
    migs = db.migration_get_all(source_compute=SRC)
    assert len(migs) == 10 and {m['status'] for m in migs} == {'completed'}
    assert _max_overlap(migs) <= 3
    assert {s['server_id'] for s in done['servers']} == set(sids)


def test_ten_guests_under_a_cluster_limit_of_three(cloud_factory, tmp_path):
    """The drain asks for 10 at once; the default policy allows 3 live migrations in
    the cloud, and the computes no limit of their own."""
    policies = tmp_path / 'policies.yaml'
    policies.write_text('policies:\n  default:\n    max_parallel: 3\n')
    cloud = cloud_factory(**{'conductor.drain_interval': 0.2,
                             'migration.policy_file': str(policies),
                             'max_concurrent_live_migrations': 0})
    _slow_live(cloud, 2000)
    sids = [_boot_on(cloud, f'l{i}') for i in range(10)]
    drain = _drain(cloud, mode='live', max_parallel=10)
    done = _wait_ended(cloud, drain['id'], timeout=60)
    assert (done['status'], done['moved'], done['failed']) == ('completed', 10, 0)
    assert db.instance_get_all_by_host(SRC) == [] and cloud.hypervisor(SRC).guests == {}
    migs = db.migration_get_all(source_compute=SRC)
    assert len(migs) == 10 and {m['status'] for m in migs} == {'completed'}
    assert _max_overlap(migs) <= 3
    # The drain waited for slots instead of queueing moves in the conductor.
    assert not any(e['decision'] == 'waiting_for_slot'
                   for m in migs for e in (m['policy_log'] or []))
    for sid in sids:
        host = _host(cloud, sid)
        assert host != SRC and list(db.get_allocations(sid)) == [_node_uuid(host)]


def test_report_names_servers_that_could_not_move_and_why(cloud):
    movable = _boot_on(cloud, 'ok')
    broken = _boot_on(cloud, 'broken')
    db.instance_update(broken, {'vm_state': 'error'})  # as a failed operation leaves it
    # No other host may take anything: every move fails in the scheduler.
    for h in ('compute2', 'compute3'):
        cloud.request('PUT', '/os-services/disable',
                      {'host': h, 'binary': 'novalite-compute'}, version='2.1', expect=200)
    drain = _drain(cloud, mode='auto', max_parallel=2)
    done = _wait_ended(cloud, drain['id'])
    assert (done['status'], done['moved'], done['failed']) == ('failed', 0, 2)
    by_id = {s['server_id']: s for s in done['servers']}
    assert by_id[broken]['attempts'] == 0
    assert 'vm_state error' in by_id[broken]['reason']
    row = by_id[movable]
    assert row['attempts'] == 3 and row['state'] == 'failed'
    # The scheduler's per-filter explanation of the last attempt.
    assert 'No valid host' in row['reason'] and 'ComputeFilter' in row['reason']
    # Nothing was harmed: the server still runs on the host with its allocation only.
    server = cloud.server(movable)
    assert (server['status'], _host(cloud, movable)) == ('ACTIVE', SRC)
    assert movable in cloud.hypervisor(SRC).guests
    assert list(db.get_allocations(movable)) == [_node_uuid(SRC)]
    for m in db.migration_get_all(instance_uuid=movable):
        assert m['status'] in ('error', 'failed') and db.get_allocations(m['uuid']) == {}


def test_cancel_stops_new_moves_and_a_new_drain_resumes(cloud):
    _slow_live(cloud, 500)  # about a second per guest
    sids = [_boot_on(cloud, f'c{i}') for i in range(3)]
    drain = _drain(cloud, mode='live', max_parallel=1)
    cloud.wait_until(lambda: _show(cloud, drain['id'])['moving'] == 1, message='moving')
    assert cloud.request('DELETE', f"/os-host-drains/{drain['id']}").status_int == 202
    assert _show(cloud, drain['id'])['status'] in ('cancelling', 'cancelled')
    done = _wait_ended(cloud, drain['id'])
    assert (done['status'], done['moved'], done['cancelled']) == ('cancelled', 1, 2)
    assert done['finished_at'] is not None
    assert cloud.request('DELETE', f"/os-host-drains/{drain['id']}").status_int == 409
    left = {s['server_id'] for s in done['servers'] if s['state'] == 'cancelled'}
    assert {s for s in sids if _host(cloud, s) == SRC} == left
    # A cancelled drain leaves no move behind it.
    assert all(cloud.server(s)['OS-EXT-STS:task_state'] is None for s in sids)

    again = _drain(cloud, mode='live', max_parallel=2)
    assert again['id'] != drain['id'] and again['total'] == 2
    done = _wait_ended(cloud, again['id'])
    assert (done['status'], done['moved']) == ('completed', 2)
    assert db.instance_get_all_by_host(SRC) == []
    assert _show(cloud, drain['id'])['status'] == 'cancelled'


def test_progress_of_a_live_move_shows_per_server(cloud):
    _slow_live(cloud, 200)
    sid = _boot_on(cloud, 'p')
    drain = _drain(cloud, mode='live', max_parallel=1)

    def progressing():
        row = _show(cloud, drain['id'])['servers'][0]
        p = row['progress']
        return p and p['memory_processed_bytes'] and row
    row = cloud.wait_until(progressing, message='progress shown')
    assert row['state'] == 'moving' and row['move'] == 'live'
    assert row['migration_id'] == db.migration_get_all(instance_uuid=sid)[0]['uuid']
    assert row['progress']['memory_total_bytes'] == 512 * 1024 * 1024
    _slow_live(cloud, 100000)
    assert _wait_ended(cloud, drain['id'])['status'] == 'completed'


def test_api_errors_change_nothing(cloud):
    sid = _boot_on(cloud, 'x')
    for body in ({}, {'drain': {}}, {'drain': {'host': SRC, 'mode': 'fast'}},
                 {'drain': {'host': SRC, 'max_parallel': 0}},
                 {'drain': {'host': SRC, 'max_parallel': 'two'}},
                 {'drain': {'host': SRC, 'extra': 1}}, {'drain': {'host': ''}},
                 {'drain': {'host': SRC}, 'x': 1}):
        cloud.request('POST', '/os-host-drains', body, expect=400)
    cloud.request('POST', '/os-host-drains', raw_body=b'{nope', expect=400)
    _drain(cloud, host='no-such-host', expect=404)
    r = cloud.request('POST', '/os-host-drains', {'drain': {'host': SRC}},
                      token='alice:demo', expect=403)
    assert r.status_int == 403
    cloud.request('GET', '/os-host-drains', token='alice:demo', expect=403)
    assert db.drain_get_all() == []
    svc = cloud.get_json(f'/os-services?host={SRC}&binary=novalite-compute')['services'][0]
    assert svc['status'] == 'enabled'
    cloud.request('GET', '/os-host-drains/00000000-0000-0000-0000-000000000000', expect=404)
    cloud.request('GET', '/os-host-drains/%E2%9C%93', expect=404)
    cloud.request('DELETE', '/os-host-drains/nope', expect=404)
    cloud.request('GET', '/os-host-drains?status=bogus', expect=400)
    cloud.request('GET', '/os-host-drains?colour=red', expect=400)

    # Two drains of one host: the second is refused while the first runs.
    _slow_live(cloud, 100)
    first = _drain(cloud, mode='live')
    r = _drain(cloud, expect=409)
    assert first['id'] in r.text
    assert cloud.get_json(f'/os-host-drains?host={SRC}&status=running')['drains'][0][
        'id'] == first['id']
    _slow_live(cloud, 100000)
    assert _wait_ended(cloud, first['id'])['status'] == 'completed'
    assert _host(cloud, sid) != SRC


def test_version_document_lists_the_extension(cloud):
    doc = cloud.get_json('//v2.1', version=MV)['version']
    hrefs = [link['href'] for link in doc['links'] if link['rel'] == 'extension']
    assert any(h.endswith('/v2.1/os-host-drains') for h in hrefs)
