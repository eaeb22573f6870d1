"""Every response of the move scenario against tempest.lib's compute response schemas.

tempest's schemas are the strictest published contract of the compute API (nested
objects mostly forbid additional properties). The scenario runs in-process at several
microversions; each body is checked with tempest's own validator, against the schema
module tempest's client would pick for that microversion.
"""

import pytest

from tests.clients.conftest import need_module

MICROVERSIONS = ['2.1', '2.47', '2.53', '2.80', '2.96', '2.100']


def _tempest():
    need_module('tempest.lib')
    from tempest.lib.api_schema.response.compute.v2_1 import versions
    from tempest.lib.common import api_version_request, rest_client
    from tempest.lib.services.compute import (
        flavors_client,
        hypervisor_client,
        migrations_client,
        server_groups_client,
        servers_client,
        services_client,
    )
    return {'rest': rest_client, 'avr': api_version_request, 'versions': versions,
            'servers': servers_client.ServersClient,
            'flavors': flavors_client.FlavorsClient,
            'migrations': migrations_client.MigrationsClient,
            'hypervisors': hypervisor_client.HypervisorClient,
            'services': services_client.ServicesClient,
            'server_groups': server_groups_client.ServerGroupsClient}


class _Resp(dict):
    """The bits of a urllib3 response tempest's validator looks at."""

    def __init__(self, resp):
        super().__init__((k.lower(), v) for k, v in resp.headers.items())
        self.status = resp.status_int


class Checker:
    def __init__(self, cloud, mv):
        self.t = _tempest()
        self.cloud = cloud
        self.mv = mv
        self.checked = []

    def module(self, client: str):
        """The schema module tempest's ``client`` uses at this microversion."""
        return self.module_at(client, self.mv)

    def module_at(self, client: str, mv: str):
        avr = self.t['avr'].APIVersionRequest
        want = avr(mv)
        for entry in self.t[client].schema_versions_info:
            low = avr(entry['min']) if entry['min'] else avr('2.1')
            high = avr(entry['max']) if entry['max'] else avr('2.1000')
            if low <= want <= high:
                return entry['schema']
        raise AssertionError('no %s schema for %s' % (client, self.mv))

    def call(self, method, path, schema, body=None):
        """One request; its response must satisfy ``schema`` (a tempest schema dict).

        ``path`` is below /v2.1 unless it starts with ``//`` (then from the root)."""
        resp = self.cloud.request(method, path, body, version=self.mv)
        data = resp.data
        assert resp.status_int < 400, '%s %s -> %s %s' % (method, path, resp.status_int,
                                                          data)
        if path != '//':
            # tempest.lib fails any call whose response does not echo the version.
            assert resp.headers.get('X-OpenStack-Nova-API-Version') == self.mv, path
        try:
            self.t['rest'].RestClient.validate_response(schema, _Resp(resp), data)
        except Exception as exc:
            raise AssertionError('%s %s at %s: %s' % (method, path, self.mv, exc))
        self.checked.append('%s %s' % (method, path))
        return data

    def server_schema(self, name):
        return getattr(self.module('servers'), name)


def _at_least(mv, other):
    return tuple(map(int, mv.split('.'))) >= tuple(map(int, other.split('.')))


@pytest.fixture
def cloud(tmp_path):
    from tests.functional import harness
    c = harness.Cloud(tmp_path / 'cloud')
    c.start()
    try:
        yield c
    finally:
        c.stop()


@pytest.mark.parametrize('mv', MICROVERSIONS)
def test_scenario_matches_tempest_schemas(cloud, mv):
    chk = Checker(cloud, mv)
    srv = chk.server_schema
    versions = chk.t['versions']
    chk.call('GET', '//', versions.list_versions)
    chk.call('GET', '/', versions.get_one_version)

    flv = chk.module('flavors')
    chk.call('GET', '/flavors', flv.list_flavors)
    chk.call('GET', '/flavors/detail', flv.list_flavors_details)
    chk.call('GET', '/flavors/1', flv.create_update_get_flavor_details)

    body = {'server': {'name': 'vm-schema', 'flavorRef': '1',
                       'imageRef': cloud.first_image()}}
    if _at_least(mv, '2.37'):
        body['server']['networks'] = 'none'
    # tempest validates every create against its 2.1 schema.
    created = chk.call('POST', '/servers', chk.module_at('servers', '2.1')
                       .create_server_with_admin_pass, body)
    sid = created['server']['id']
    cloud.wait_for_server(sid, 'ACTIVE', version=mv)
    chk.call('GET', '/servers', srv('list_servers'))
    chk.call('GET', '/servers/detail', srv('list_servers_detail'))
    chk.call('GET', '/servers/%s' % sid, srv('get_server'))
    chk.call('PUT', '/servers/%s' % sid, srv('update_server'),
             {'server': {'name': 'vm-renamed'}})

    action = '/servers/%s/action' % sid
    # Action and delete responses are checked against the 2.1 module at any version.
    base = chk.module_at('servers', '2.1')
    common = base.server_actions_common_schema
    chk.call('POST', action, common, {'resize': {'flavorRef': '2'}})
    cloud.wait_for_server(sid, 'VERIFY_RESIZE', version=mv)
    chk.call('GET', '/servers/%s' % sid, srv('get_server'))
    chk.call('POST', action, base.server_actions_confirm_resize, {'confirmResize': None})
    cloud.wait_for_server(sid, 'ACTIVE', version=mv)
    chk.call('POST', action, common, {'migrate': None})
    cloud.wait_for_server(sid, 'VERIFY_RESIZE', version=mv)
    chk.call('POST', action, common, {'revertResize': None})
    cloud.wait_for_server(sid, 'ACTIVE', version=mv)
    live = {'host': None, 'block_migration': 'auto'}
    if not _at_least(mv, '2.25'):
        live = {'host': None, 'block_migration': True, 'disk_over_commit': False}
    chk.call('POST', action, common, {'os-migrateLive': live})
    cloud.wait_for_migration(sid)
    cloud.wait_for_server(sid, 'ACTIVE', version=mv)
    if _at_least(mv, '2.23'):
        chk.call('GET', '/servers/%s/migrations' % sid, srv('list_live_migrations'))

    chk.call('GET', '/os-migrations', chk.module('migrations').list_migrations)
    actions = chk.call('GET', '/servers/%s/os-instance-actions' % sid,
                       srv('list_instance_actions'))['instanceActions']
    assert len(actions) == 6
    for act in actions:
        chk.call('GET', '/servers/%s/os-instance-actions/%s' % (sid, act['request_id']),
                 srv('show_instance_action'))

    hyp = chk.module('hypervisors')
    hyps = chk.call('GET', '/os-hypervisors', hyp.list_search_hypervisors)['hypervisors']
    if not _at_least(mv, '2.88'):
        # tempest 47 has no hypervisor schema for 2.88+, where the resource fields
        # (vcpus, memory_mb, cpu_info, ...) are gone and ``uptime`` appears.
        chk.call('GET', '/os-hypervisors/detail', hyp.list_hypervisors_detail)
        chk.call('GET', '/os-hypervisors/%s' % hyps[0]['id'], hyp.get_hypervisor)
        chk.call('GET', '/os-hypervisors/statistics', hyp.get_hypervisor_statistics)
        chk.call('GET', '/os-hypervisors/%s/uptime' % hyps[0]['id'],
                 hyp.get_hypervisor_uptime)
    if not _at_least(mv, '2.53'):
        name = hyps[0]['hypervisor_hostname']
        chk.call('GET', '/os-hypervisors/%s/search' % name, hyp.list_search_hypervisors)
        chk.call('GET', '/os-hypervisors/%s/servers' % name, hyp.get_hypervisors_servers)

    svc = chk.module('services')
    services = chk.call('GET', '/os-services', svc.list_services)['services']
    compute = [s for s in services if s['binary'] == 'novalite-compute'][0]
    if _at_least(mv, '2.53'):
        chk.call('PUT', '/os-services/%s' % compute['id'], svc.update_service,
                 {'status': 'disabled', 'disabled_reason': 'schema test'})
        chk.call('PUT', '/os-services/%s' % compute['id'], svc.update_service,
                 {'status': 'enabled'})
    else:
        legacy = chk.module_at('services', '2.1')
        hostbin = {'host': compute['host'], 'binary': compute['binary']}
        chk.call('PUT', '/os-services/disable', legacy.enable_disable_service, hostbin)
        chk.call('PUT', '/os-services/disable-log-reason', legacy.disable_log_reason,
                 dict(hostbin, disabled_reason='schema test'))
        chk.call('PUT', '/os-services/enable', legacy.enable_disable_service, hostbin)

    chk.call('DELETE', '/servers/%s' % sid, base.delete_server)
    cloud.wait_for_server(sid, 'DELETED', version=mv)
    assert len(chk.checked) >= 25


@pytest.mark.parametrize('mv', ['2.1', '2.13', '2.15', '2.63', '2.64', '2.71', '2.100'])
def test_server_groups_match_tempest_schemas(cloud, mv):
    chk = Checker(cloud, mv)
    sg = chk.module('server_groups')
    policy = 'soft-anti-affinity' if _at_least(mv, '2.15') else 'anti-affinity'
    if _at_least(mv, '2.64'):
        body = {'name': 'schema', 'policy': 'anti-affinity',
                'rules': {'max_server_per_host': 2}}
    else:
        body = {'name': 'schema', 'policies': [policy]}
    group = chk.call('POST', '/os-server-groups', sg.create_show_server_group,
                     {'server_group': body})['server_group']
    server = {'server': {'name': 'member', 'flavorRef': '1', 'imageRef': cloud.first_image()},
              'os:scheduler_hints': {'group': group['id']}}
    if _at_least(mv, '2.37'):
        server['server']['networks'] = 'none'
    sid = cloud.request('POST', '/servers', server, version=mv, expect=202).data[
        'server']['id']
    cloud.wait_for_server(sid, 'ACTIVE', version=mv)
    shown = chk.call('GET', '/os-server-groups/%s' % group['id'],
                     sg.create_show_server_group)['server_group']
    assert shown['members'] == [sid]
    chk.call('GET', '/os-server-groups', sg.list_server_groups)
    chk.call('GET', '/os-server-groups?all_projects=True&limit=5&offset=0',
             sg.list_server_groups)
    got = chk.call('GET', '/servers/%s' % sid, chk.server_schema('get_server'))['server']
    if _at_least(mv, '2.71'):
        assert got['server_groups'] == [group['id']]
    chk.call('DELETE', '/os-server-groups/%s' % group['id'], sg.delete_server_group)
