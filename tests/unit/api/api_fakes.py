"""A recording stand-in for novalite.api.compute_api.API and a REST app on a temp database."""

import json

import webob

from novalite import exception
from novalite.db import api as db
from novalite.db import models, session


class FakeComputeAPI:
    """Records calls; ``fail[method] = exc`` makes that method raise."""

    def __init__(self):
        self.calls = []
        self.fail = {}

    def _record(self, _name, *args, **kwargs):
        self.calls.append((_name, args, kwargs))
        if _name in self.fail:
            raise self.fail[_name]

    def get(self, ctx, instance_uuid):
        inst = db.instance_get(instance_uuid)
        if not ctx.is_admin and inst['project_id'] != ctx.project_id:
            raise exception.InstanceNotFound(instance_id=instance_uuid)
        return inst

    def create(self, ctx, **kwargs):
        self._record('create', **kwargs)
        insts = []
        for _ in range(kwargs.get('max_count', 1)):
            insts.append(db.instance_create({
                'display_name': kwargs['name'], 'project_id': ctx.project_id,
                'user_id': ctx.user_id, 'flavor': db.flavor_record(kwargs['flavor']),
                'image_ref': (kwargs.get('image') or {}).get('uuid'),
                'vm_state': 'building', 'task_state': 'scheduling',
                'reservation_id': 'r-fake'}))
        return insts, 'r-fake'

    def update(self, ctx, instance, values):
        self._record('update', instance['uuid'], values)
        return db.instance_update(instance['uuid'], values)

    def __getattr__(self, name):
        if name.startswith('_'):
            raise AttributeError(name)

        def method(ctx, *args, **kwargs):
            self._record(name, *args, **kwargs)
        return method


class Client:
    def __init__(self, app):
        self.app = app

    def request(self, method, path, body=None, token='admin:admin', version=None,
                headers=None, raw_body=None, content_type='application/json'):
        req = webob.Request.blank(path, method=method)
        if token:
            req.headers['X-Auth-Token'] = token
        if version:
            req.headers['OpenStack-API-Version'] = 'compute ' + version
        if body is not None:
            raw_body = json.dumps(body).encode()
        if raw_body is not None:
            req.body = raw_body
            if content_type:
                req.content_type = content_type
        for key, value in (headers or {}).items():
            req.headers[key] = value
        resp = req.get_response(self.app)
        resp.data = json.loads(resp.body) if resp.body and resp.content_type == \
            'application/json' else None
        return resp

    def get(self, path, **kw):
        return self.request('GET', path, **kw)


def setup_db(tmp_path):
    engine = session.create_engine('sqlite:///' + str(tmp_path / 't.sqlite'))
    models.Base.metadata.create_all(engine)
    session.set_engine(engine)
    db.ensure_default_flavors()


def make_client(conf, compute=None):
    from novalite.api import wsgi
    conf.set_override('auth_strategy', 'noauth2', group='api')
    compute = compute or FakeComputeAPI()
    return Client(wsgi.make_app(conf, compute_api=compute)), compute


def make_server(project='p1', user='u1', **values):
    flavor = db.flavor_record(db.flavor_get_by_flavorid('1'))
    base = {'display_name': 'vm', 'project_id': project, 'user_id': user,
            'flavor': flavor, 'vm_state': 'active', 'task_state': None, 'power_state': 1,
            'host': 'c1', 'node': 'c1'}
    base.update(values)
    return db.instance_create(base)
