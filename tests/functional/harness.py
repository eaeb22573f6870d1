"""An in-process cloud for tests: every service in this process, its API reached
without a socket through the REST client of all tiers."""

from novalite import rpc
from novalite.conf import CONF
from novalite.db import session
from novalite.virt import fake
from tests.rest import RestClient


class Cloud(RestClient):
    """An all-in-one novalite (fake:// transport, fake hosts) and a client of its API."""

    def __init__(self, tmp_path, compute_hosts=3, **overrides):
        # The services answer in-process within microseconds: poll often, fail fast.
        super().__init__(wait_timeout=10.0, poll_interval=0.005)
        self.tmp_path = tmp_path
        self.compute_hosts = compute_hosts
        self.overrides = overrides
        self.aio = None

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
        self.app = self.aio.app
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

    def first_image(self):
        # The database's order, not the image API's: the image every test has booted.
        from novalite.db import api as db
        return db.image_get_all()[0]['uuid']

    def hypervisor(self, host):
        return fake.get_hypervisor(host)
