"""A recording stand-in for novalite.api.compute_api.API and a REST app on a temp database."""

from novalite import exception
from novalite.db import api as db
from novalite.db import models, session
from tests.rest import RestClient


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

    def get_for_view(self, ctx, instance_uuid):
        inst, service, group = db.instance_get_for_view(instance_uuid, 'novalite-compute')
        self.get(ctx, instance_uuid)
        return inst, service, group

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


def setup_db(tmp_path):
    engine = session.create_engine('sqlite:///' + str(tmp_path / 't.sqlite'))
    models.Base.metadata.create_all(engine)
    session.set_engine(engine)
    db.ensure_default_flavors()


def make_client(conf, compute=None):
    from novalite.api import wsgi
    conf.set_override('auth_strategy', 'noauth2', group='api')
    compute = compute or FakeComputeAPI()
    # Paths from the server root and no version header unless a test sends one.
    client = RestClient(app=wsgi.make_app(conf, compute_api=compute), prefix='',
                        microversion=None)
    return client, compute


def make_server(project='p1', user='u1', **values):
    flavor = db.flavor_record(db.flavor_get_by_flavorid('1'))
    base = {'display_name': 'vm', 'project_id': project, 'user_id': user,
            'flavor': flavor, 'vm_state': 'active', 'task_state': None, 'power_state': 1,
            'host': 'c1', 'node': 'c1'}
    base.update(values)
    return db.instance_create(base)
