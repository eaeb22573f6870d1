"""/servers over REST with a recording compute API on a real SQLite database."""

import datetime

import pytest

from novalite import exception
from novalite.db import api as db
from novalite.db import session
from tests.unit.api import api_fakes


@pytest.fixture
def env(conf, tmp_path):
    api_fakes.setup_db(tmp_path)
    client, compute = api_fakes.make_client(conf)
    image = db.image_create('cirros', size=512 * 1024 ** 2, min_ram=256, min_disk=1)
    yield client, compute, image
    session.set_engine(None)


def _create(client, image, version='2.1', token='admin:admin', **server):
    body = {'server': {'name': 'vm', 'flavorRef': '1', 'imageRef': image['uuid'],
                       **server}}
    return client.request('POST', '/v2.1/servers', body, version=version, token=token)


def test_create_response(env):
    client, compute, image = env
    resp = _create(client, image, flavorRef='http://x/flavors/2')
    assert resp.status_int == 202
    server = resp.data['server']
    assert resp.headers['Location'] == server['links'][0]['href']
    assert len(server['adminPass']) == 12 and server['OS-DCF:diskConfig'] == 'MANUAL'
    assert server['security_groups'] == [{'name': 'default'}]
    kwargs = compute.calls[-1][2]
    assert kwargs['flavor']['flavorid'] == '2' and kwargs['image']['uuid'] == image['uuid']
    resp = _create(client, image, return_reservation_id=True, min_count=2)
    assert resp.data == {'reservation_id': 'r-fake'}


def test_create_validation(env):
    client, _, image = env
    assert _create(client, image, flavorRef='99').status_int == 400
    resp = _create(client, image, imageRef='6f5e5c3c-5a8a-4b8f-9d8e-0c1e0b7f0a11')
    assert resp.data['badRequest']['message'] == 'Can not find requested image'
    assert _create(client, image, imageRef='not-a-uuid').status_int == 400
    body = {'server': {'name': 'vm', 'flavorRef': '1'}}
    resp = client.request('POST', '/v2.1/servers', body)
    assert resp.data['badRequest']['message'] == 'Missing imageRef attribute'
    big = db.image_create('big', size=5 * 1024 ** 3)
    resp = _create(client, big)
    assert resp.data['badRequest']['message'] == "Flavor's disk is too small for requested image."
    db.flavor_create('small-ram', 128, 1, root_gb=10, flavorid='sr')
    assert _create(client, image, flavorRef='sr').status_int == 400
    assert _create(client, image, min_count=3, max_count=2).status_int == 400
    assert _create(client, image, version='2.37').status_int == 400
    assert _create(client, image, version='2.37', networks='auto').status_int == 202
    assert _create(client, image, version='2.37',
                   networks=[{'uuid': 'bad'}]).status_int == 400
    assert _create(client, image, availability_zone='nova:c1',
                   token='bob:p1').status_int == 403
    assert _create(client, image, availability_zone='nova:c1').status_int == 202
    assert _create(client, image, version='2.74', networks='none',
                   host='nohost').status_int == 400
    assert _create(client, image, version='2.74', networks='none', host='h',
                   token='bob:p1').status_int == 403


def test_create_zero_disk_flavor_needs_admin(env):
    client, _, image = env
    db.flavor_create('zero', 512, 1, root_gb=0, flavorid='z')
    assert _create(client, image, flavorRef='z', token='bob:p1').status_int == 403
    assert _create(client, image, flavorRef='z').status_int == 202


def test_create_over_quota_is_403(env):
    client, compute, image = env
    compute.fail['create'] = exception.OverQuota(overs='instances', req=1, used=10,
                                                 allowed=10)
    resp = _create(client, image)
    assert resp.status_int == 403 and 'Quota exceeded' in resp.data['forbidden']['message']


def test_show_shapes_by_version(env):
    client, _, image = env
    inst = api_fakes.make_server(project='p1', image_ref=image['uuid'], progress=5)
    url = '/v2.1/servers/%s' % inst['uuid']
    old = client.get(url).data['server']
    assert old['flavor']['id'] == '1' and 'links' in old['flavor']
    assert old['status'] == 'ACTIVE' and old['progress'] == 5
    assert old['OS-EXT-SRV-ATTR:host'] == 'c1' and 'locked' not in old
    assert old['hostId'] and old['image']['id'] == image['uuid']
    new = client.get(url, version='2.100').data['server']
    assert new['flavor']['original_name'] == 'm1.tiny' and new['flavor']['ram'] == 512
    assert new['locked'] is False and new['tags'] == [] and new['server_groups'] == []
    assert new['host_status'] == 'UNKNOWN' and new['image']['properties'] == {}
    assert new['scheduler_hints'] == {} and 'pinned_availability_zone' in new
    owner = client.get(url, version='2.100', token='u1:p1').data['server']
    assert 'OS-EXT-SRV-ATTR:host' not in owner and 'host_status' not in owner
    assert 'OS-EXT-SRV-ATTR:hostname' in owner
    assert client.get(url, token='u9:p9').status_int == 404


def test_show_fault_rules(env):
    client, _, _ = env
    inst = api_fakes.make_server(vm_state='error')
    db.fault_create(inst['uuid'], 500, 'boom', details='Traceback...')
    url = '/v2.1/servers/%s' % inst['uuid']
    fault = client.get(url).data['server']['fault']
    assert fault['message'] == 'boom' and fault['details'] == 'Traceback...'
    assert fault['created'].endswith('Z')
    owner = client.get(url, token='u1:p1').data['server']
    assert 'details' not in owner['fault'] and 'progress' not in owner


def test_show_by_name_is_404(env):
    client, _, _ = env
    api_fakes.make_server(project='admin')
    assert client.get('/v2.1/servers/vm').status_int == 404


def test_list_scoping_and_filters(env):
    client, _, _ = env
    a = api_fakes.make_server(project='p1', display_name='alpha', tags=['x', 'y'])
    b = api_fakes.make_server(project='p1', display_name='beta', vm_state='stopped')
    api_fakes.make_server(project='p2', display_name='gamma')
    names = lambda resp: sorted(s['name'] for s in resp.data['servers'])  # noqa: E731
    assert names(client.get('/v2.1/servers', token='u1:p1')) == ['alpha', 'beta']
    assert names(client.get('/v2.1/servers?all_tenants=1')) == ['alpha', 'beta', 'gamma']
    assert client.get('/v2.1/servers?all_tenants=1', token='u1:p1').status_int == 403
    assert names(client.get('/v2.1/servers?name=alp', token='u1:p1')) == ['alpha']
    assert names(client.get('/v2.1/servers?status=SHUTOFF', token='u1:p1')) == ['beta']
    assert names(client.get('/v2.1/servers?status=bogus', token='u1:p1')) == []
    assert client.get('/v2.1/servers?status=bogus', token='u1:p1',
                      version='2.38').status_int == 400
    assert client.get('/v2.1/servers?status=deleted', token='u1:p1').status_int == 403
    resp = client.get('/v2.1/servers?tags=x', token='u1:p1', version='2.26')
    assert names(resp) == ['alpha']
    resp = client.get('/v2.1/servers?not-tags-any=x', token='u1:p1', version='2.26')
    assert names(resp) == ['beta']
    assert names(client.get('/v2.1/servers?host=c1', token='u1:p1')) == ['alpha', 'beta']
    assert client.get('/v2.1/servers?sort_key=host', token='u1:p1').status_int == 403
    assert client.get('/v2.1/servers?sort_key=bogus', token='u1:p1').status_int == 400
    assert client.get('/v2.1/servers?sort_dir=up', token='u1:p1').status_int == 400
    assert client.get('/v2.1/servers?bogus=1', token='u1:p1',
                      version='2.75').status_int == 400
    assert client.get('/v2.1/servers?changes-since=junk',
                      token='u1:p1').status_int == 400
    resp = client.get('/v2.1/servers/detail?sort_key=display_name&sort_dir=asc&limit=1',
                      token='u1:p1')
    assert names(resp) == ['alpha'] and 'servers_links' in resp.data
    resp = client.get('/v2.1/servers?sort_key=display_name&sort_dir=asc&marker=%s'
                      % a['uuid'], token='u1:p1')
    assert names(resp) == ['beta']
    assert client.get('/v2.1/servers?marker=nope', token='u1:p1').status_int == 400
    assert b['uuid'] in {s['id'] for s in client.get(
        '/v2.1/servers/detail?deleted=False&all_tenants=1', version='2.100').data['servers']}


def test_list_deleted_and_changes_since(env):
    client, _, _ = env
    inst = api_fakes.make_server(project='admin', display_name='gone')
    db.instance_destroy(inst['uuid'])
    assert client.get('/v2.1/servers').data['servers'] == []
    since = (datetime.datetime.now(datetime.UTC) - datetime.timedelta(hours=1))
    resp = client.get('/v2.1/servers/detail?changes-since=%s'
                      % since.strftime('%Y-%m-%dT%H:%M:%SZ'))
    assert [s['status'] for s in resp.data['servers']] == ['DELETED']
    assert client.get('/v2.1/servers?changes-since=2020-01-02T00:00:00Z&'
                      'changes-before=2020-01-01T00:00:00Z',
                      version='2.66').status_int == 400


def test_update_and_delete(env):
    client, compute, _ = env
    inst = api_fakes.make_server(project='admin')
    url = '/v2.1/servers/%s' % inst['uuid']
    resp = client.request('PUT', url, {'server': {'name': 'renamed', 'description': 'd'}},
                          version='2.19')
    assert resp.status_int == 200 and resp.data['server']['name'] == 'renamed'
    assert resp.data['server']['description'] == 'd'
    assert client.request('PUT', url, {'server': {'description': 'd'}}).status_int == 400
    assert client.request('PUT', url, {'server': {'name': ''}}).status_int == 400
    assert client.request('DELETE', url).status_int == 204
    assert compute.calls[-1][0] == 'delete'
    compute.fail['delete'] = exception.InstanceIsLocked(instance_uuid=inst['uuid'])
    assert client.request('DELETE', url).status_int == 409


def _action(client, inst, body, **kw):
    return client.request('POST', '/v2.1/servers/%s/action' % inst['uuid'], body, **kw)


def test_action_body_rules(env):
    client, _, _ = env
    inst = api_fakes.make_server(project='admin')
    resp = _action(client, inst, {'os-start': None, 'os-stop': None})
    assert resp.status_int == 400
    resp = _action(client, inst, {'explode': None})
    assert resp.data['badRequest']['message'] == 'There is no such action: explode'
    assert _action(client, inst, {}).status_int == 400
    resp = client.request('POST', '/v2.1/servers/nope/action', {'os-start': None})
    assert resp.status_int == 404


@pytest.mark.parametrize('body,method,code', [
    ({'os-start': None}, 'start', 202), ({'os-stop': None}, 'stop', 202),
    ({'reboot': {'type': 'soft'}}, 'reboot', 202),
    ({'resize': {'flavorRef': '2'}}, 'resize', 202),
    ({'confirmResize': None}, 'confirm_resize', 204),
    ({'revertResize': None}, 'revert_resize', 202),
    ({'migrate': None}, 'resize', 202), ({'lock': None}, 'lock', 202),
    ({'unlock': None}, 'unlock', 202),
    ({'os-migrateLive': {'host': None, 'block_migration': 'auto'}}, 'live_migrate', 202),
])
def test_action_codes(env, body, method, code):
    client, compute, _ = env
    inst = api_fakes.make_server(project='admin')
    resp = _action(client, inst, body, version='2.30')
    assert resp.status_int == code and resp.body == b''
    assert compute.calls[-1][0] == method


@pytest.mark.parametrize('method,exc,code', [
    ('stop', exception.InstanceIsLocked(instance_uuid='x'), 409),
    ('stop', exception.InstanceInvalidState(action='stop', instance_uuid='x',
                                            attr='vm_state', state='stopped'), 409),
    ('stop', exception.InstanceNotReady(instance_id='x'), 409),
    ('resize', exception.FlavorNotFound(flavor_id='9'), 400),
    ('resize', exception.CannotResizeToSameFlavor(), 400),
    ('resize', exception.OverQuota(overs='cores', req=1, used=1, allowed=1), 403),
    ('resize', exception.ComputeHostNotFound(host='h'), 400),
    ('confirm_resize', exception.MigrationNotFound(migration_id='x'), 400),
])
def test_action_error_mapping(env, method, exc, code):
    client, compute, _ = env
    inst = api_fakes.make_server(project='admin')
    compute.fail[method] = exc
    body = {'stop': {'os-stop': None}, 'resize': {'resize': {'flavorRef': '2'}},
            'confirm_resize': {'confirmResize': None}}[method]
    assert _action(client, inst, body).status_int == code


def test_migrate_host_and_live_migrate_rules(env):
    client, compute, _ = env
    inst = api_fakes.make_server(project='p1')
    manager = 'u1:p1:manager,member,reader'
    assert _action(client, inst, {'migrate': None}, token='u1:p1').status_int == 403
    assert _action(client, inst, {'migrate': None}, token=manager).status_int == 202
    assert _action(client, inst, {'migrate': {'host': 'c2'}}, token=manager,
                   version='2.56').status_int == 403
    assert _action(client, inst, {'migrate': {'host': 'c2'}},
                   version='2.56').status_int == 202
    assert compute.calls[-1][2]['host'] == 'c2'
    assert _action(client, inst, {'migrate': {'bogus': 1}}, version='2.56').status_int == 400
    live = {'os-migrateLive': {'host': None, 'block_migration': 'auto', 'force': True}}
    resp = _action(client, inst, live, version='2.30')
    assert resp.data['badRequest']['message'] == "Can't force to a non-provided destination"
    assert _action(client, inst, live, version='2.68').status_int == 400
    live = {'os-migrateLive': {'host': 'c2', 'block_migration': False,
                               'disk_over_commit': False}}
    assert _action(client, inst, live, version='2.1').status_int == 202
    args = compute.calls[-1][1]
    assert args[1:] == ('c2', False, False, True, False)
    assert _action(client, inst, live, version='2.25').status_int == 400


def test_server_migrations(env):
    client, compute, _ = env
    inst = api_fakes.make_server(project='p1', task_state='migrating')
    live = db.migration_create({'instance_uuid': inst['uuid'],
                                'migration_type': 'live-migration', 'status': 'running',
                                'source_compute': 'c1', 'dest_compute': 'c2'})
    db.migration_create({'instance_uuid': inst['uuid'], 'migration_type': 'migration',
                         'status': 'finished'})
    base = '/v2.1/servers/%s/migrations' % inst['uuid']
    assert client.get(base, version='2.22').status_int == 404
    items = client.get(base, version='2.23').data['migrations']
    assert [m['id'] for m in items] == [live['id']] and 'uuid' not in items[0]
    items = client.get(base, version='2.80',
                       token='u1:p1:manager,reader').data['migrations']
    assert items[0]['source_compute'] is None and items[0]['project_id'] is None
    resp = client.get('%s/%d' % (base, live['id']), version='2.59')
    assert resp.data['migration']['uuid'] == live['uuid']
    assert client.get('%s/999' % base, version='2.59').status_int == 404
    url = '%s/%d/action' % (base, live['id'])
    assert client.request('POST', url, {'force_complete': None},
                          version='2.21').status_int == 404
    assert client.request('POST', url, {'force_complete': None},
                          version='2.22').status_int == 202
    assert client.request('POST', url, {'force_complete': 'null'},
                          version='2.22').status_int == 400
    compute.fail['live_migrate_force_complete'] = exception.MigrationNotFoundForInstance(
        migration_id=1, instance_id='x')
    assert client.request('POST', url, {'force_complete': None},
                          version='2.22').status_int == 400
    delete = '%s/%d' % (base, live['id'])
    assert client.request('DELETE', delete, version='2.23').status_int == 404
    assert client.request('DELETE', delete, version='2.24').status_int == 202
    assert compute.calls[-1][1][2] is False
    client.request('DELETE', delete, version='2.65')
    assert compute.calls[-1][1][2] is True


def test_instance_actions(env):
    client, _, _ = env
    inst = api_fakes.make_server(project='p1')
    db.action_start(inst['uuid'], 'stop', 'req-1', user_id='u1', project_id='p1')
    db.action_event_start(inst['uuid'], 'req-1', 'compute_stop_instance', host='c1')
    db.action_event_finish(inst['uuid'], 'req-1', 'compute_stop_instance', 'Error',
                           traceback='tb', details='why', host='c1')
    base = '/v2.1/servers/%s/os-instance-actions' % inst['uuid']
    actions = client.get(base, token='u1:p1').data['instanceActions']
    assert actions[0]['action'] == 'stop' and actions[0]['message'] == 'Error'
    assert 'updated_at' not in actions[0]
    owner = client.get(base + '/req-1', token='u1:p1').data['instanceAction']
    assert 'events' not in owner
    owner = client.get(base + '/req-1', token='u1:p1', version='2.84').data
    (event,) = owner['instanceAction']['events']
    assert 'traceback' not in event and 'host' not in event and 'details' not in event
    assert event['hostId'] and event['result'] == 'Error'
    admin = client.get(base + '/req-1', version='2.84').data['instanceAction']
    (event,) = admin['events']
    assert event['traceback'] == 'tb' and event['host'] == 'c1' and event['details'] == 'why'
    assert client.get(base + '/req-404').status_int == 404
    resp = client.get(base + '?limit=1', version='2.58')
    assert resp.data['instanceActions'][0]['updated_at'] and 'links' in resp.data
    assert client.get(base + '?marker=req-x', version='2.58').status_int == 400
    db.instance_destroy(inst['uuid'])
    assert client.get(base, version='2.20').status_int == 404
    assert client.get(base, version='2.21').status_int == 200
