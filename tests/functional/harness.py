"""An in-process cloud for tests: start it, talk REST to it, wait for states."""

import json
import time

import webob

from novalite import rpc
from novalite.conf import CONF
from novalite.db import session
from novalite.virt import fake


class ApiError(AssertionError):
    pass


class Cloud:
    def __init__(self, tmp_path, compute_hosts=3, **overrides):
        self.tmp_path = tmp_path
        self.compute_hosts = compute_hosts
        self.overrides = overrides
        self.aio = None
        self.microversion = '2.80'

    def start(self):
        from novalite import all_in_one
        self.tmp_path.mkdir(parents=True, exist_ok=True)
        rpc.set_defaults()
        try:
            CONF([], project='novalite')
        except Exception:
            pass
        CONF.set_override('state_path', str(self.tmp_path))
        CONF.set_override('auth_strategy', 'noauth2', group='api')
        CONF.set_override('report_interval', 1)
        CONF.set_override('persist', False, group='fake_driver')
        for key, value in self.overrides.items():
            group, _, name = key.rpartition('.')
            CONF.set_override(name, value, group=group or None)
        session.set_engine(None)
        fake.reset_hypervisors()
        self.aio = all_in_one.AllInOne(compute_hosts=self.compute_hosts,
                                       transport_url='inproc://')
        self.aio.start()
        return self

    def stop(self):
        if self.aio:
            self.aio.stop()
        session.set_engine(None)
        fake.reset_hypervisors()
        CONF.clear_override('state_path')
        for opt, group in (('auth_strategy', 'api'), ('report_interval', None),
                           ('persist', 'fake_driver')):
            CONF.clear_override(opt, group=group)
        for key in self.overrides:
            group, _, name = key.rpartition('.')
            CONF.clear_override(name, group=group or None)

    # ------------------------------------------------------------ REST

    def request(self, method, path, body=None, token='admin:admin', version=None,
                headers=None, expect=None):
        req = webob.Request.blank('/v2.1' + path if not path.startswith('/v') else path,
                                  method=method)
        if token:
            req.headers['X-Auth-Token'] = token
        req.headers['OpenStack-API-Version'] = f'compute {version or self.microversion}'
        if body is not None:
            req.body = json.dumps(body).encode()
            req.content_type = 'application/json'
        for k, v in (headers or {}).items():
            req.headers[k] = v
        resp = req.get_response(self.aio.app)
        data = None
        if resp.body:
            try:
                data = json.loads(resp.body)
            except ValueError:
                data = resp.text
        if expect is not None and resp.status_int != expect:
            raise ApiError(f'{method} {path}: expected {expect}, got {resp.status_int}: '
                           f'{resp.body[:500]!r}')
        return resp, data

    def get(self, path, **kw):
        return self.request('GET', path, **kw)[1]

    def post(self, path, body, **kw):
        return self.request('POST', path, body, **kw)

    def action(self, server_id, body, expect=202, **kw):
        return self.request('POST', f'/servers/{server_id}/action', body, expect=expect, **kw)

    def boot(self, name='vm', flavor='1', wait=True, token='admin:admin', **extra):
        body = {'server': {'name': name, 'flavorRef': flavor, 'networks': 'none',
                           'imageRef': self.default_image(), **extra}}
        _, data = self.request('POST', '/servers', body, token=token, expect=202)
        server_id = data['server']['id']
        if wait:
            return self.wait_status(server_id, 'ACTIVE', token=token)
        return data['server']

    def default_image(self):
        from novalite.db import api as db
        return db.image_get_all()[0]['uuid']

    def server(self, server_id, token='admin:admin', version=None):
        return self.get(f'/servers/{server_id}', token=token, version=version)['server']

    def wait_status(self, server_id, status, timeout=10.0, token='admin:admin',
                    task_state=None, version=None):
        deadline = time.monotonic() + timeout
        seen = []
        while True:
            resp, data = self.request('GET', f'/servers/{server_id}', token=token,
                                      version=version)
            if resp.status_int == 404 and status == 'DELETED':
                return None
            server = data['server']
            if not seen or seen[-1] != server['status']:
                seen.append(server['status'])
            if server['status'] == status and (
                    task_state is None or server['OS-EXT-STS:task_state'] == task_state) \
                    and server.get('OS-EXT-STS:task_state') is None:
                return server
            if server['status'] == 'ERROR' and status != 'ERROR':
                raise AssertionError(f'server went to ERROR: {server.get("fault")}')
            if time.monotonic() > deadline:
                raise AssertionError(f'timeout waiting for {status}; seen {seen}; '
                                     f'last {server["status"]}/'
                                     f'{server.get("OS-EXT-STS:task_state")}')
            time.sleep(0.005)

    def wait_for(self, predicate, timeout=10.0, what='condition'):
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f'timeout waiting for {what}')
            time.sleep(0.005)

    def hypervisor(self, host):
        return fake.get_hypervisor(host)
