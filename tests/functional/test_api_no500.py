"""Malformed ids, query values and bodies never produce a 500."""

import itertools

import pytest

from novalite.db import api as db
from novalite.db import session
from tests.unit.api import api_fakes

PATHS = [
    '/servers', '/servers/detail', '/servers/{sid}', '/servers/{sid}/action',
    '/servers/{sid}/migrations', '/servers/{sid}/migrations/{x}',
    '/servers/{sid}/migrations/{x}/action', '/servers/{sid}/os-instance-actions',
    '/servers/{sid}/os-instance-actions/{x}', '/flavors', '/flavors/detail', '/flavors/{x}',
    '/flavors/{x}/os-extra_specs', '/os-hypervisors', '/os-hypervisors/detail',
    '/os-hypervisors/{x}', '/os-hypervisors/{x}/servers', '/os-hypervisors/{x}/uptime',
    '/os-services', '/os-services/{x}', '/os-migrations', '/limits', '/images',
    '/images/{x}', '/os-novalite-images',
]
IDS = ['x', '0', '-1', '99999999999999999999', '%00', 'a%20b', '00000000-0000-0000-0000-'
       '000000000000', 'disable', 'force-down', '..']
QUERIES = ['', '?limit=abc', '?limit=-5', '?marker=zzz', '?limit=1&marker=1',
           '?changes-since=notadate', '?sort_key=;drop', '?status=%00', '?is_public=2',
           '?minRam=-1', '?with_servers=perhaps', '?all_tenants', '?power_state=x',
           '?locked=maybe', '?hypervisor_hostname_pattern=%25', '?name=(unclosed']
BODIES = [None, {}, [], 'str', 1, {'server': None}, {'server': {}}, {'flavor': {'name': 1}},
          {'resize': None}, {'os-migrateLive': None}, {'reboot': {}},
          {'migrate': 'x'}, {'lock': 5}, {'force_complete': 1}, {'status': 1},
          {'host': 'c1', 'binary': 5}, {'image': {'name': ''}}]
VERSIONS = ['2.1', '2.25', '2.53', '2.75', 'latest']


@pytest.fixture
def env(conf, tmp_path):
    api_fakes.setup_db(tmp_path)
    client, _ = api_fakes.make_client(conf)
    db.service_create('c1', 'novalite-compute', 'compute')
    inst = api_fakes.make_server(project='admin')
    yield client, inst
    session.set_engine(None)


@pytest.mark.parametrize('token', ['admin:admin', 'bob:p1'])
def test_no_500_on_garbage(env, token):
    client, inst = env
    seen = 0
    for path, ident, version in itertools.product(PATHS, IDS, VERSIONS):
        url = '/v2.1' + path.format(sid=inst['uuid'], x=ident)
        for query in QUERIES:
            resp = client.get(url + query, version=version, token=token)
            assert resp.status_int < 500, (url + query, version, resp.body)
            seen += 1
        for method, body in itertools.product(('POST', 'PUT', 'DELETE'), BODIES):
            if method == 'DELETE' and body is not None:
                continue
            resp = client.request(method, url, body=body, version=version, token=token)
            assert resp.status_int < 500, (method, url, body, version, resp.body)
            seen += 1
    assert seen > 1000
