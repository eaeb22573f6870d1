"""os-hypervisors, os-services, os-migrations, limits and images over REST."""

import datetime

import pytest

from novalite.db import api as db
from novalite.db import session
from novalite.db.models import utcnow
from tests.unit.api import api_fakes

RATIOS = {'VCPU': 4.0, 'MEMORY_MB': 1.0, 'DISK_GB': 1.0}


@pytest.fixture
def env(conf, tmp_path):
    api_fakes.setup_db(tmp_path)
    client, compute = api_fakes.make_client(conf)
    for host in ('c1', 'c2'):
        db.service_create(host, 'novalite-compute', 'compute')
        db.compute_node_update(host, host, {'vcpus': 8, 'memory_mb': 16384, 'local_gb': 100,
                                            'hypervisor_type': 'fake',
                                            'hypervisor_version': 1000,
                                            'cpu_info': {'arch': 'x86_64'},
                                            'host_ip': '10.0.0.1'}, RATIOS, {})
    db.service_create('ctl', 'novalite-conductor', 'conductor')
    yield client, compute
    session.set_engine(None)


def test_hypervisors_list_versions(env):
    client, _ = env
    old = client.get('/v2.1/os-hypervisors').data['hypervisors']
    assert [h['id'] for h in old] == [1, 2]
    assert old[0] == {'id': 1, 'hypervisor_hostname': 'c1', 'state': 'up',
                      'status': 'enabled'}
    new = client.get('/v2.1/os-hypervisors', version='2.53').data['hypervisors']
    assert all(len(h['id']) == 36 for h in new)
    detail = client.get('/v2.1/os-hypervisors/detail', version='2.27').data['hypervisors']
    assert detail[0]['cpu_info'] == '{"arch": "x86_64"}' and detail[0]['vcpus'] == 8
    detail = client.get('/v2.1/os-hypervisors/detail', version='2.28').data['hypervisors']
    assert detail[0]['cpu_info'] == {'arch': 'x86_64'}
    detail = client.get('/v2.1/os-hypervisors/detail', version='2.88').data['hypervisors']
    assert 'vcpus' not in detail[0] and 'uptime' in detail[0]
    assert detail[0]['service']['host'] == 'c1'


def test_hypervisors_paging_and_pattern(env):
    client, _ = env
    resp = client.get('/v2.1/os-hypervisors?limit=1', version='2.33')
    assert len(resp.data['hypervisors']) == 1 and 'hypervisors_links' in resp.data
    resp = client.get('/v2.1/os-hypervisors?marker=1', version='2.33')
    assert [h['id'] for h in resp.data['hypervisors']] == [2]
    assert client.get('/v2.1/os-hypervisors?marker=99', version='2.33').status_int == 400
    resp = client.get('/v2.1/os-hypervisors?hypervisor_hostname_pattern=c2', version='2.53')
    assert [h['hypervisor_hostname'] for h in resp.data['hypervisors']] == ['c2']
    assert client.get('/v2.1/os-hypervisors?hypervisor_hostname_pattern=zz',
                      version='2.53').status_int == 404
    assert client.get('/v2.1/os-hypervisors?hypervisor_hostname_pattern=c&limit=1',
                      version='2.53').status_int == 400
    assert client.get('/v2.1/os-hypervisors?with_servers=maybe',
                      version='2.53').status_int == 400
    assert client.get('/v2.1/os-hypervisors?bogus=1', version='2.75').status_int == 400


def test_hypervisor_show_and_servers(env):
    client, _ = env
    api_fakes.make_server(host='c1', node='c1', display_name='on-c1')
    node = db.compute_node_get_by_host_and_node('c1', 'c1')
    resp = client.get('/v2.1/os-hypervisors/%s?with_servers=true' % node['uuid'],
                      version='2.75')
    assert [s['name'] for s in resp.data['hypervisor']['servers']] == ['on-c1']
    assert client.get('/v2.1/os-hypervisors/1', version='2.53').status_int == 400
    assert client.get('/v2.1/os-hypervisors/%s' % node['id']).status_int == 200
    assert client.get('/v2.1/os-hypervisors/abc').status_int == 404
    assert client.get('/v2.1/os-hypervisors/99').status_int == 404
    resp = client.get('/v2.1/os-hypervisors/c1/servers', version='2.52')
    assert resp.data['hypervisors'][0]['servers'][0]['name'] == 'on-c1'
    assert client.get('/v2.1/os-hypervisors/c1/servers', version='2.53').status_int == 404
    stats = client.get('/v2.1/os-hypervisors/statistics').data['hypervisor_statistics']
    assert stats['count'] == 2 and stats['vcpus'] == 16


def test_services_list_and_state(env):
    client, _ = env
    services = client.get('/v2.1/os-services').data['services']
    assert {s['binary'] for s in services} == {'novalite-compute', 'novalite-conductor'}
    compute = [s for s in services if s['host'] == 'c1'][0]
    assert compute['zone'] == 'nova' and compute['state'] == 'up'
    assert isinstance(compute['id'], int) and 'forced_down' not in compute
    conductor = [s for s in services if s['binary'] == 'novalite-conductor'][0]
    assert conductor['zone'] == 'internal'
    resp = client.get('/v2.1/os-services?binary=nova-compute&host=c2', version='2.53')
    (svc,) = resp.data['services']
    assert len(svc['id']) == 36 and svc['forced_down'] is False
    stale = utcnow() - datetime.timedelta(seconds=3600)
    db.service_update(svc['id'], last_seen_up=stale)
    resp = client.get('/v2.1/os-services?host=c2', version='2.53')
    assert resp.data['services'][0]['state'] == 'down'
    assert client.get('/v2.1/os-services?x=1', version='2.75').status_int == 400
    assert client.get('/v2.1/os-services', token='bob:p1').status_int == 403


def test_services_update_legacy(env):
    client, compute = env
    body = {'host': 'c1', 'binary': 'nova-compute'}
    resp = client.request('PUT', '/v2.1/os-services/disable', body)
    assert resp.status_int == 200
    assert resp.data['service'] == {'host': 'c1', 'binary': 'nova-compute',
                                    'status': 'disabled'}
    assert compute.calls[-1][0] == 'service_set_enabled'
    assert client.request('PUT', '/v2.1/os-services/disable-log-reason',
                          body).status_int == 400
    resp = client.request('PUT', '/v2.1/os-services/disable-log-reason',
                          dict(body, disabled_reason='maint'))
    assert resp.data['service']['disabled_reason'] == 'maint'
    assert client.request('PUT', '/v2.1/os-services/force-down',
                          dict(body, forced_down=True)).status_int == 404
    resp = client.request('PUT', '/v2.1/os-services/force-down',
                          dict(body, forced_down=True), version='2.11')
    assert resp.data['service']['forced_down'] is True
    assert client.request('PUT', '/v2.1/os-services/bogus', body).status_int == 404
    assert client.request('PUT', '/v2.1/os-services/enable',
                          {'host': 'nohost', 'binary': 'nova-compute'}).status_int == 404
    assert client.request('PUT', '/v2.1/os-services/enable',
                          {'host': 'ctl', 'binary': 'novalite-conductor'}).status_int == 400


def test_services_update_v253(env):
    client, compute = env
    svc = db.service_get_all(host='c1', binary='novalite-compute')[0]
    url = '/v2.1/os-services/%s' % svc['uuid']
    put = lambda body: client.request('PUT', url, body, version='2.53')  # noqa: E731
    resp = put({'status': 'disabled', 'disabled_reason': 'maint'})
    assert resp.status_int == 200 and resp.data['service']['id'] == svc['uuid']
    assert put({}).status_int == 400
    assert put({'status': 'enabled', 'disabled_reason': 'x'}).status_int == 400
    assert put({'status': 'bogus'}).status_int == 400
    assert put({'forced_down': True}).status_int == 200
    assert client.request('PUT', '/v2.1/os-services/1', {'status': 'enabled'},
                          version='2.53').status_int == 400
    missing = '/v2.1/os-services/00000000-0000-0000-0000-000000000000'
    assert client.request('PUT', missing, {'status': 'enabled'},
                          version='2.53').status_int == 404


def test_services_delete(env):
    client, _ = env
    svc = db.service_get_all(host='c1', binary='novalite-compute')[0]
    api_fakes.make_server(host='c1')
    url = '/v2.1/os-services/%s' % svc['uuid']
    assert client.request('DELETE', url, version='2.53').status_int == 409
    other = db.service_get_all(host='c2', binary='novalite-compute')[0]
    assert client.request('DELETE', '/v2.1/os-services/abc').status_int == 400
    assert client.request('DELETE', '/v2.1/os-services/%d' % other['id']).status_int == 204
    assert client.request('DELETE', '/v2.1/os-services/%d' % other['id']).status_int == 404


def _migration(inst, **kw):
    values = {'instance_uuid': inst['uuid'], 'migration_type': 'live-migration',
              'status': 'running', 'source_compute': 'c1', 'source_node': 'c1',
              'dest_compute': 'c2', 'dest_node': 'c2', 'old_instance_type_id': 1,
              'new_instance_type_id': 1, 'project_id': inst['project_id'],
              'user_id': inst['user_id']}
    values.update(kw)
    return db.migration_create(values)


def test_os_migrations_versions(env):
    client, _ = env
    inst = api_fakes.make_server()
    live = _migration(inst)
    _migration(inst, migration_type='migration', status='finished')
    items = client.get('/v2.1/os-migrations').data['migrations']
    assert len(items) == 2 and 'migration_type' not in items[0]
    assert items[0]['created_at'].count('.') == 1 and not items[0]['created_at'].endswith('Z')
    items = client.get('/v2.1/os-migrations', version='2.23').data['migrations']
    by_type = {m['migration_type']: m for m in items}
    assert 'links' in by_type['live-migration'] and 'links' not in by_type['migration']
    items = client.get('/v2.1/os-migrations', version='2.80').data['migrations']
    assert items[0]['project_id'] == 'p1' and 'uuid' in items[0]
    resp = client.get('/v2.1/os-migrations?limit=1', version='2.59')
    assert len(resp.data['migrations']) == 1 and 'migrations_links' in resp.data
    resp = client.get('/v2.1/os-migrations?marker=%s' % live['uuid'], version='2.59')
    assert client.get('/v2.1/os-migrations?marker=nope', version='2.59').status_int == 400
    assert client.get('/v2.1/os-migrations?bogus=1', version='2.59').status_int == 400
    assert client.get('/v2.1/os-migrations?bogus=1', version='2.58').status_int == 200
    resp = client.get('/v2.1/os-migrations?migration_type=migration', version='2.23')
    assert [m['migration_type'] for m in resp.data['migrations']] == ['migration']
    assert client.get('/v2.1/os-migrations?changes-since=garbage',
                      version='2.59').status_int == 400
    assert client.get('/v2.1/os-migrations', token='bob:p1').status_int == 403


def test_limits(env):
    client, _ = env
    api_fakes.make_server(project='admin')
    absolute = client.get('/v2.1/limits').data['limits']['absolute']
    assert absolute['maxTotalInstances'] == 10 and absolute['totalInstancesUsed'] == 1
    assert absolute['totalCoresUsed'] == 1 and absolute['totalRAMUsed'] == 512


def test_images(env):
    client, _ = env
    body = {'image': {'name': 'cirros', 'size': 1024, 'min_ram': 64,
                      'location': 'file:///tmp/cirros.img'}}
    assert client.request('POST', '/v2.1/os-novalite-images', body,
                          token='bob:p1').status_int == 403
    resp = client.request('POST', '/v2.1/os-novalite-images', body)
    assert resp.status_int == 201
    image_id = resp.data['image']['id']
    resp = client.get('/v2.1/images/detail')
    assert resp.data['images'][0]['minRam'] == 64
    assert client.get('/v2.1/images/%s' % image_id).data['image']['id'] == image_id
    assert client.get('/v2.1/images/nope').status_int == 404
    assert client.get('/image/v2/images').data['images'][0]['id'] == image_id
    assert client.get('/image/v2/images/%s' % image_id).data['name'] == 'cirros'
    assert client.get('/image/v2/images/nope').status_int == 404
    assert client.get('/image', token=None).status_int == 200
    assert client.request('DELETE', '/v2.1/os-novalite-images/%s'
                          % image_id).status_int == 204
