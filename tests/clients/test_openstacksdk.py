"""openstacksdk in-process through the whole move scenario.

``openstack.connect(auth_type='admin_token', ...)`` with a fixed endpoint: the SDK
negotiates per resource (servers 2.100, migrations 2.80, instance actions 2.84), or
uses the pinned ``compute_api_version``.
"""

import os

import pytest

from tests.clients.conftest import TOKEN, assert_scenario_records, need_module

IMAGE_ID = '7e2a7a4b-3b2f-4c9e-9a0e-1f0c2c9d5f01'


def _connect(live, api_version, tmp_path, monkeypatch):
    openstack = need_module('openstack')
    for key in [k for k in os.environ if k.startswith('OS_')]:
        monkeypatch.delenv(key)
    # No developer clouds.yaml may leak in.
    monkeypatch.setenv('OS_CLIENT_CONFIG_FILE', str(tmp_path / 'none.yaml'))
    kwargs = {}
    if api_version:
        kwargs['compute_api_version'] = api_version
    return openstack.connect(auth_type='admin_token',
                             auth={'endpoint': live.compute_url, 'token': TOKEN},
                             image_endpoint_override=live.endpoint + '/image', **kwargs)


@pytest.mark.parametrize('api_version', [None, '2.100'], ids=['negotiated', '2.100'])
def test_sdk_scenario(live, tmp_path, monkeypatch, api_version):
    conn = _connect(live, api_version, tmp_path, monkeypatch)
    compute = conn.compute
    flavors = {f.name: f for f in compute.flavors()}
    assert {'m1.tiny', 'm1.small'} <= set(flavors)
    assert compute.find_flavor('m1.small').id == flavors['m1.small'].id
    assert [i.id for i in conn.image.images()] == [IMAGE_ID]

    server = compute.create_server(name='vm-sdk', flavor_id=flavors['m1.tiny'].id,
                                   image_id=IMAGE_ID, networks='none')
    server = compute.wait_for_server(server, status='ACTIVE', interval=0.05, wait=30)
    sid = server.id
    assert compute.find_server('vm-sdk').id == sid
    assert [s.id for s in compute.servers()] == [sid]
    assert server.flavor.original_name == 'm1.tiny'

    compute.resize_server(sid, flavors['m1.small'].id)
    live.wait_for_server(sid, 'VERIFY_RESIZE')
    compute.confirm_server_resize(sid)
    live.wait_for_server(sid, 'ACTIVE')
    assert compute.get_server(sid).flavor.original_name == 'm1.small'

    host = compute.get_server(sid).compute_host
    compute.migrate_server(sid)
    assert live.wait_for_server(sid, 'VERIFY_RESIZE')['OS-EXT-SRV-ATTR:host'] != host
    compute.revert_server_resize(sid)
    live.wait_for_server(sid, 'ACTIVE')
    assert compute.get_server(sid).compute_host == host

    compute.live_migrate_server(sid, host=None, block_migration='auto')
    live.wait_for_migration(sid, 'live-migration')
    live.wait_for_server(sid, 'ACTIVE')
    assert compute.get_server(sid).compute_host != host

    migrations = list(compute.migrations(instance_uuid=sid))
    assert sorted(m.migration_type for m in migrations) == [
        'live-migration', 'migration', 'resize']
    assert all(m.server_id == sid for m in migrations)
    assert list(compute.server_migrations(sid)) == []

    actions = list(compute.server_actions(sid))
    assert [a.action for a in actions][::-1] == [
        'create', 'resize', 'confirmResize', 'migrate', 'revertResize', 'live-migration']
    detail = compute.get_server_action(actions[0].request_id, sid)
    assert detail.action == 'live-migration' and detail.events
    assert_scenario_records(live, sid)

    # Fetched before the delete: a fast delete can be over before a later GET.
    server = compute.get_server(sid)
    compute.delete_server(sid)
    compute.wait_for_delete(server, interval=0.05, wait=30)
    assert list(compute.servers()) == []


def test_sdk_server_groups(live, tmp_path, monkeypatch):
    conn = _connect(live, None, tmp_path, monkeypatch)
    compute = conn.compute
    group = compute.create_server_group(name='together', policy='affinity')
    assert group.policy == 'affinity'
    flavor = compute.find_flavor('m1.tiny')
    servers = []
    for i in range(2):
        server = compute.create_server(name=f'vm-sg{i}', flavor_id=flavor.id,
                                       image_id=IMAGE_ID, networks='none',
                                       scheduler_hints={'group': group.id})
        servers.append(compute.wait_for_server(server, status='ACTIVE', interval=0.05,
                                               wait=30))
    assert len({s.compute_host for s in servers}) == 1
    fetched = compute.get_server_group(group.id)
    assert sorted(fetched.member_ids) == sorted(s.id for s in servers)
    assert [g.id for g in compute.server_groups()] == [group.id]
    assert compute.find_server_group('together').id == group.id
    for server in servers:
        compute.delete_server(server)
        compute.wait_for_delete(server, interval=0.05, wait=30)
    compute.delete_server_group(group)
    assert list(compute.server_groups()) == []
