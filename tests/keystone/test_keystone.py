"""novalite behind a real Keystone: password auth with the clients, project isolation,
domain and system scopes as Nova 2024.1+ treats them, revoked and expired tokens."""

import json
import os
import subprocess
import sys
import time

import pytest
import requests

from tests.keystone import conftest as ks_fixtures

pytestmark = pytest.mark.slow
V = 'compute 2.100'
FLAVOR = 'm1.tiny'


def _h(token, version=V):
    return {'X-Auth-Token': token, 'OpenStack-API-Version': version}


def _get(novalite, path, token):
    return requests.get(novalite + '/v2.1' + path, headers=_h(token), timeout=30)


def _image(novalite, token):
    images = requests.get(novalite + '/image/v2/images', headers={'X-Auth-Token': token},
                          timeout=30).json()['images']
    return images[0]


def _boot(novalite, token, name):
    image = _image(novalite, token)
    body = {'server': {'name': name, 'flavorRef': '1', 'imageRef': image['id'],
                       'networks': 'none'}}
    resp = requests.post(novalite + '/v2.1/servers', json=body, headers=_h(token),
                         timeout=30)
    assert resp.status_code == 202, resp.text
    return resp.json()['server']['id']


def _env(user, project):
    env = {k: v for k, v in os.environ.items() if not k.startswith('OS_')}
    env.update(OS_AUTH_URL=KS_URL[0], OS_USERNAME=user, OS_PASSWORD=ks_fixtures.PASSWORD,
               OS_PROJECT_NAME=project, OS_USER_DOMAIN_ID='default',
               OS_PROJECT_DOMAIN_ID='default', OS_IDENTITY_API_VERSION='3',
               OS_REGION_NAME='RegionOne', OS_INTERFACE='public')
    return env


KS_URL = ['']


@pytest.fixture
def cli(keystone, novalite):
    KS_URL[0] = keystone.url

    def run(tool, *args, user='alice', project='alpha'):
        path = os.path.join(os.path.dirname(sys.executable), tool)
        proc = subprocess.run([path, *args], env=_env(user, project), capture_output=True,
                              text=True, timeout=300)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return proc.stdout
    return run


def test_openstack_and_nova_clients_with_passwords(cli, keystone, novalite):
    # Image names resolve through the catalog's image endpoint.
    out = cli('openstack', 'server', 'create', '--flavor', FLAVOR, '--image',
              'cirros-0.6.2-x86_64-disk', '--no-network', '--wait', '-f', 'json', 'osc-vm')
    server = json.loads(out)
    assert server['status'] == 'ACTIVE'
    listed = json.loads(cli('openstack', 'server', 'list', '-f', 'json'))
    assert 'osc-vm' in [s['Name'] for s in listed]
    assert 'osc-vm' in cli('nova', 'list')
    # bob's project sees none of alice's servers.
    listed = json.loads(cli('openstack', 'server', 'list', '-f', 'json', user='bob',
                            project='beta'))
    assert listed == []


def test_openstacksdk_project_isolation(keystone, novalite):
    import openstack
    conn = openstack.connect(auth_url=keystone.url, username='alice',
                             password=ks_fixtures.PASSWORD, project_name='alpha',
                             user_domain_id='default', project_domain_id='default',
                             region_name='RegionOne')
    image = conn.image.find_image('cirros-0.6.2-x86_64-disk')
    flavor = conn.compute.find_flavor(FLAVOR)
    server = conn.compute.create_server(name='sdk-vm', image_id=image.id,
                                        flavor_id=flavor.id, networks='none')
    server = conn.compute.wait_for_server(server, wait=120)
    assert server.status == 'ACTIVE' and server.project_id == keystone.ids['alpha']
    assert 'sdk-vm' in [s.name for s in conn.compute.servers()]

    bob, _ = keystone.auth('bob', project='beta')
    assert _get(novalite, '/servers/' + server.id, bob).status_code == 404
    names = [s['name'] for s in _get(novalite, '/servers', bob).json()['servers']]
    assert 'sdk-vm' not in names
    resp = _get(novalite, '/servers?all_tenants=1', bob)
    assert resp.status_code == 403


def test_domain_scoped_reader_lists_no_servers(keystone, novalite):
    alice, _ = keystone.auth('alice', project='alpha')
    _boot(novalite, alice, 'alpha-vm')
    dana, body = keystone.auth('dana', domain='default')
    assert body['domain']['id'] == 'default'
    for path in ('/servers', '/servers/detail', '/servers/detail?all_tenants=1'):
        resp = _get(novalite, path, dana)
        assert resp.status_code == 403, (path, resp.text)


def test_system_scoped_admin_gets_403_never_500(keystone, novalite):
    admin, body = keystone.auth('admin', ks_fixtures.ADMIN_PASSWORD, system=True)
    assert body['system'] == {'all': True}
    assert _get(novalite, '/servers', admin).status_code == 403
    assert _get(novalite, '/servers/detail?all_tenants=1', admin).status_code == 403
    body = {'server': {'name': 'sys', 'flavorRef': '1', 'networks': 'none',
                       'imageRef': _image(novalite, admin)['id']}}
    resp = requests.post(novalite + '/v2.1/servers', json=body, headers=_h(admin),
                         timeout=30)
    assert resp.status_code == 403, resp.text
    # The same user scoped to the admin project is a compute administrator.
    project_admin, _ = keystone.auth('admin', ks_fixtures.ADMIN_PASSWORD, project='admin')
    resp = _get(novalite, '/servers/detail?all_tenants=1', project_admin)
    assert resp.status_code == 200


def _assert_401(resp):
    assert resp.status_code == 401, resp.text
    assert resp.headers['WWW-Authenticate'].startswith('Keystone uri=')


def test_revoked_token_is_401(keystone, novalite):
    token, _ = keystone.auth('alice', project='alpha')
    assert _get(novalite, '/servers', token).status_code == 200
    resp = requests.delete(keystone.url + '/auth/tokens', timeout=30,
                           headers={'X-Auth-Token': token, 'X-Subject-Token': token})
    assert resp.status_code == 204
    _assert_401(_get(novalite, '/servers', token))


def test_expired_token_is_401(keystone, novalite, tmp_path):
    # A second Keystone on the same database and keys issues tokens that live 2 s.
    config = ks_fixtures.keystone_conf(tmp_path / 'short.conf', keystone.workdir,
                                       expiration=2)
    proc, url = ks_fixtures.serve_keystone(config, ks_fixtures.free_port(),
                                           str(keystone.workdir))
    try:
        short = ks_fixtures.Keystone(url, keystone.workdir)
        token, body = short.auth('alice', project='alpha')
    finally:
        ks_fixtures.stop(proc)
    assert _get(novalite, '/servers', token).status_code == 200
    deadline = time.monotonic() + 60
    resp = _get(novalite, '/servers', token)
    while resp.status_code == 200 and time.monotonic() < deadline:
        time.sleep(0.5)
        resp = _get(novalite, '/servers', token)
    _assert_401(resp)


def test_missing_and_garbage_tokens_are_401_and_logged_with_their_request_id(
        keystone, novalite):
    _assert_401(requests.get(novalite + '/v2.1/servers', timeout=30))
    good, _ = keystone.auth('alice', project='alpha')
    previous = _get(novalite, '/servers', good).headers['X-OpenStack-Request-ID']
    resp = _get(novalite, '/servers', 'not-a-token')
    _assert_401(resp)
    rejected = resp.headers['X-OpenStack-Request-ID']
    log = (keystone.workdir / 'novalite.log').read_text()
    lines = [line for line in log.splitlines()
             if 'keystonemiddleware' in line and rejected in line]
    assert lines, 'no keystonemiddleware line carries ' + rejected
    # Before, the rejection was logged under the id the previous request left behind.
    assert not [line for line in log.splitlines()
                if 'Authorization failed' in line and previous in line]
