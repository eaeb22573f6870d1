"""A real Keystone (the PyPI package, SQLite, fernet tokens) and novalite behind it.

Once per session: ``keystone-manage`` creates the database and keys, Keystone is
served on a free 127.0.0.1 port by ``tests.keystone.serve``, ``keystone-manage
bootstrap`` makes the admin, and the test users, projects, role assignments and the
catalog entries (compute, and image for name lookups) are made over Keystone's API.
``novalite-all`` then runs as its own process with ``[api] auth_strategy = keystone``.
Both processes are stopped by their PIDs. Without the keystone package the tests skip
(fail with NOVALITE_REQUIRE_SERVICES=1).
"""

import getpass
import grp
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
import requests

from tests.conftest import require_service

BIN = os.path.dirname(sys.executable)
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ADMIN_PASSWORD = 'admin-secret'
PASSWORD = 'user-secret'
SERVICE_PASSWORD = 'nova-secret'
# user -> (password, [(kind, target name, role)])
USERS = {
    'alice': [('project', 'alpha', 'member'), ('project', 'alpha', 'reader')],
    'bob': [('project', 'beta', 'member'), ('project', 'beta', 'reader')],
    'dana': [('domain', 'default', 'reader')],
    'nova': [('project', 'service', 'service')],
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _need_keystone():
    def check():
        import keystone  # noqa: F401
        path = os.path.join(BIN, 'keystone-manage')
        if not os.access(path, os.X_OK):
            raise RuntimeError('keystone-manage is not installed')
        return path
    return require_service('keystone server (pip install .[keystone-server])', check)


def _wait_http(url, proc, what, timeout=120.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f'{what} exited with {proc.returncode}')
        try:
            if requests.get(url, timeout=5).status_code < 500:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise RuntimeError(f'{what} did not answer at {url} within {timeout:.0f}s')


def stop(proc):
    """Stop one process we started, by its PID: TERM, then KILL."""
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=20)


def keystone_conf(path, workdir, expiration=3600):
    path.write_text(f'''[DEFAULT]
log_file = {workdir}/keystone-{expiration}.log
[database]
connection = sqlite:///{workdir}/keystone.db
[token]
provider = fernet
expiration = {expiration}
[fernet_tokens]
key_repository = {workdir}/fernet-keys
[fernet_receipts]
key_repository = {workdir}/fernet-receipts
[credential]
key_repository = {workdir}/credential-keys
[identity]
password_hash_rounds = 4
''')
    return str(path)


def serve_keystone(config, port, workdir):
    log = open(os.path.join(workdir, f'serve-{port}.out'), 'ab')
    proc = subprocess.Popen([sys.executable, '-m', 'tests.keystone.serve', config, str(port)],
                            cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    url = f'http://127.0.0.1:{port}/v3'
    try:
        _wait_http(url, proc, 'keystone')
    except Exception:
        stop(proc)
        raise
    return proc, url


class Keystone:
    """The running Keystone: its URL, tokens, and the ids of what the fixture made."""

    def __init__(self, url, workdir):
        self.url = url
        self.workdir = workdir
        self.ids = {}

    def auth(self, user, password=PASSWORD, project=None, domain=None, system=False):
        """(token, token body) for a password authentication with one scope."""
        body = {'auth': {'identity': {'methods': ['password'], 'password': {'user': {
            'name': user, 'domain': {'id': 'default'}, 'password': password}}}}}
        if project:
            body['auth']['scope'] = {'project': {'name': project,
                                                 'domain': {'id': 'default'}}}
        elif domain:
            body['auth']['scope'] = {'domain': {'id': domain}}
        elif system:
            body['auth']['scope'] = {'system': {'all': True}}
        resp = requests.post(self.url + '/auth/tokens', json=body, timeout=30)
        assert resp.status_code == 201, resp.text
        return resp.headers['X-Subject-Token'], resp.json()['token']

    def admin_token(self):
        return self.auth('admin', ADMIN_PASSWORD, system=True)[0]

    def call(self, method, path, body=None, token=None, expect=(200, 201, 204)):
        resp = requests.request(method, self.url + path, json=body, timeout=30,
                                headers={'X-Auth-Token': token or self.admin_token()})
        assert resp.status_code in expect, f'{method} {path}: {resp.status_code} {resp.text}'
        return resp.json() if resp.content else None


def _populate(ks: Keystone, compute_url, image_url):
    token = ks.admin_token()
    roles = {r['name']: r['id'] for r in ks.call('GET', '/roles', token=token)['roles']}
    for name in ('alpha', 'beta', 'service'):
        project = ks.call('POST', '/projects', {'project': {
            'name': name, 'domain_id': 'default'}}, token=token)['project']
        ks.ids[name] = project['id']
    ks.ids['default'] = 'default'
    for user, grants in USERS.items():
        password = SERVICE_PASSWORD if user == 'nova' else PASSWORD
        made = ks.call('POST', '/users', {'user': {
            'name': user, 'domain_id': 'default', 'password': password}},
            token=token)['user']
        ks.ids[user] = made['id']
        for kind, target, role in grants:
            where = 'projects' if kind == 'project' else 'domains'
            ks.call('PUT', f'/{where}/{ks.ids[target]}/users/{made["id"]}/roles/'
                           f'{roles[role]}', token=token)
    for kind, name, url in (('compute', 'nova', compute_url), ('image', 'glance', image_url)):
        service = ks.call('POST', '/services', {'service': {'type': kind, 'name': name}},
                          token=token)['service']
        for interface in ('public', 'internal', 'admin'):
            ks.call('POST', '/endpoints', {'endpoint': {
                'service_id': service['id'], 'interface': interface, 'url': url,
                'region_id': 'RegionOne'}}, token=token)


def _novalite_conf(path, workdir, port, ks_url):
    path.write_text(f'''[DEFAULT]
state_path = {workdir}/novalite
log_file = {workdir}/novalite.log
debug = true
osapi_compute_listen = 127.0.0.1
osapi_compute_listen_port = {port}
[api]
auth_strategy = keystone
[fake_driver]
persist = false
[keystone_authtoken]
www_authenticate_uri = {ks_url}
auth_url = {ks_url}
auth_type = password
username = nova
password = {SERVICE_PASSWORD}
project_name = service
user_domain_id = default
project_domain_id = default
# No cache: a revoked token is refused at once.
token_cache_time = -1
''')
    return str(path)


@pytest.fixture(scope='session')
def keystone(tmp_path_factory):
    manage = _need_keystone()
    workdir = tmp_path_factory.mktemp('keystone')
    config = keystone_conf(workdir / 'keystone.conf', workdir)
    user, group = getpass.getuser(), grp.getgrgid(os.getgid()).gr_name
    for args in (['db_sync'],
                 ['fernet_setup', '--keystone-user', user, '--keystone-group', group],
                 ['credential_setup', '--keystone-user', user, '--keystone-group', group]):
        subprocess.run([manage, '--config-file', config, *args], check=True,
                       capture_output=True, timeout=300)
    port = free_port()
    proc, url = serve_keystone(config, port, str(workdir))
    try:
        subprocess.run([manage, '--config-file', config, 'bootstrap',
                        '--bootstrap-password', ADMIN_PASSWORD,
                        '--bootstrap-admin-url', url, '--bootstrap-internal-url', url,
                        '--bootstrap-public-url', url, '--bootstrap-region-id', 'RegionOne'],
                       check=True, capture_output=True, timeout=300)
        ks = Keystone(url, workdir)
        ks.nova_port = free_port()
        base = f'http://127.0.0.1:{ks.nova_port}'
        _populate(ks, base + '/v2.1', base + '/image')
        yield ks
    finally:
        stop(proc)


@pytest.fixture(scope='session')
def novalite(keystone):
    """The base URL (``http://127.0.0.1:PORT``) of novalite-all behind keystone."""
    workdir = keystone.workdir
    config = _novalite_conf(workdir / 'novalite.conf', workdir, keystone.nova_port,
                            keystone.url)
    out = open(workdir / 'novalite-all.out', 'ab')
    proc = subprocess.Popen([os.path.join(BIN, 'novalite-all'), '--config-file', config],
                            stdout=out, stderr=subprocess.STDOUT, cwd=str(workdir))
    base = f'http://127.0.0.1:{keystone.nova_port}'
    try:
        _wait_http(base + '/', proc, 'novalite-all')
        yield base
    finally:
        stop(proc)
