"""Every service in one process: API, conductor, scheduler and N fake compute hosts over
the in-process transport and the embedded SQLite database."""

import logging
import threading

from novalite import rpc, service
from novalite.conductor import manager as conductor_manager
from novalite.conf import CONF
from novalite.db import api as db
from novalite.db import session

LOG = logging.getLogger(__name__)


def sync_database() -> None:
    """Bring the schema to head (alembic), creating the SQLite file if needed."""
    from novalite.db import migration
    migration.upgrade(session.default_url())


def ensure_seed_data(register_image: bool = True) -> None:
    db.ensure_default_flavors()
    if register_image and not db.image_get_all():
        db.image_create('cirros-0.6.2-x86_64-disk', location='fake://cirros',
                        size=21430272, disk_format='qcow2', container_format='bare',
                        uuid='7e2a7a4b-3b2f-4c9e-9a0e-1f0c2c9d5f01')


def db_register(host, binary, topic):
    return db.service_create(host, binary, topic)


def compute_registration(conductor) -> dict:
    """A compute registers and heartbeats through its own conductor methods."""
    return {'register': lambda h, b, t: conductor.service_register(
                b, t, CONF.default_availability_zone),
            'heartbeat': lambda h, b: conductor.service_heartbeat(b)}


class ComputeNode:
    """One fake compute host: its manager and service loop."""

    def __init__(self, host, transport_url, report_interval=None):
        from novalite.compute import manager as compute_manager
        self.host = host
        self.manager = compute_manager.ComputeManager(host, transport_url=transport_url)
        self.service = service.Service(
            self.manager, 'novalite-compute', 'compute', host,
            transport_url=transport_url, report_interval=report_interval,
            **compute_registration(self.manager.conductor))

    def start(self):
        self.service.start()

    def stop(self, graceful_timeout=None):
        self.service.stop(graceful_timeout)


class AllInOne:
    """Starts and stops the whole control plane inside this process."""

    def __init__(self, compute_hosts=None, transport_url=None, sync_db=True,
                 report_interval=None):
        self.transport_url = transport_url or CONF.all_in_one.transport_url
        self.num_hosts = compute_hosts or CONF.all_in_one.compute_hosts
        self.sync_db = sync_db
        self.report_interval = report_interval
        self.services: list[service.Service] = []
        self.computes: dict[str, ComputeNode] = {}
        self.app = None
        self._http = None
        self._http_thread = None

    def start(self, with_http=False):
        # Everything in this process, notifications included, uses the one transport.
        CONF.set_override('transport_url', self.transport_url)
        if self.sync_db:
            sync_database()
        ensure_seed_data(CONF.all_in_one.register_default_image)
        from novalite.scheduler import manager as scheduler_manager
        host = CONF.host
        conductor = service.Service(
            conductor_manager.ConductorManager(host, transport_url=self.transport_url),
            'novalite-conductor', 'conductor', host, register=db_register,
            heartbeat=db.service_heartbeat, transport_url=self.transport_url,
            report_interval=self.report_interval)
        scheduler = service.Service(
            scheduler_manager.SchedulerManager(host), 'novalite-scheduler', 'scheduler', host,
            register=db_register, heartbeat=db.service_heartbeat,
            transport_url=self.transport_url, report_interval=self.report_interval)
        for svc in (conductor, scheduler):
            svc.start()
            self.services.append(svc)
        for i in range(1, self.num_hosts + 1):
            self.add_compute(f'compute{i}')
        from novalite.api import compute_api, wsgi
        self.app = wsgi.make_app(CONF, compute_api=compute_api.API(self.transport_url))
        if with_http:
            self._start_http()
        return self

    def add_compute(self, host) -> ComputeNode:
        node = ComputeNode(host, self.transport_url, self.report_interval)
        node.start()
        self.computes[host] = node
        return node

    def stop_compute(self, host, graceful_timeout=None):
        self.computes.pop(host).stop(graceful_timeout)

    def _start_http(self):
        from novalite import wsgi_server as server
        self._http = server.make_server(self.app, CONF.osapi_compute_listen,
                                        CONF.osapi_compute_listen_port,
                                        CONF.osapi_compute_workers)
        self._http.prepare()
        self._http_thread = threading.Thread(target=self._http.serve, daemon=True,
                                             name='novalite-api-http')
        self._http_thread.start()

    @property
    def endpoint(self):
        host, port = self._http.bind_addr[:2]
        return f'http://{host}:{port}'

    def stop(self):
        if self._http is not None:
            self._http.stop()
        # Services stop in parallel: each waits up to a second for its RPC executor.
        computes = [n.service for n in self.computes.values()]
        self._stop_all(computes)
        self.computes.clear()
        self._stop_all(self.services)
        self.services.clear()
        rpc.cleanup()

    @staticmethod
    def _stop_all(services):
        threads = [threading.Thread(target=svc.stop, kwargs={'graceful_timeout': 5,
                                                              'wait_executor': False})
                   for svc in services]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
