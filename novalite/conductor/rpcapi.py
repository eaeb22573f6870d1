"""Client side of the conductor RPC API: the only way to reach a conductor.

Version history:
  1.0 - db_call, schedule_and_build_instances, build_instances, migrate_server,
        live_migrate_instance, service_register
"""

import oslo_messaging as messaging

from novalite import rpc
from novalite.conf import CONF

TOPIC = 'conductor'
VERSION = '1.0'


class ConductorAPI:
    def __init__(self, url: str | None = None):
        target = messaging.Target(topic=TOPIC, version=VERSION)
        self.client = rpc.get_client(target, version_cap=VERSION, url=url)

    def ping(self, ctxt, timeout=2):
        return self.client.prepare(timeout=timeout).call(ctxt, 'ping')

    def wait_until_ready(self, ctxt, timeout=None):
        """Block until a conductor answers; a compute starting before any conductor
        would otherwise lose its first calls (no queue is bound yet on the broker)."""
        import logging
        import time
        deadline = None if timeout is None else time.monotonic() + timeout
        attempt = 0
        while True:
            attempt += 1
            try:
                return self.ping(ctxt, timeout=2)
            except messaging.MessagingTimeout:
                if deadline is not None and time.monotonic() > deadline:
                    raise
                if attempt % 5 == 1:
                    logging.getLogger(__name__).warning(
                        'Waiting for a conductor to answer (attempt %d)', attempt)

    def db_call(self, ctxt, name: str, args: list, kwargs: dict):
        """Run one allow-listed database function on behalf of a compute host."""
        return self.client.call(ctxt, 'db_call', name=name, args=args, kwargs=kwargs)

    def schedule_and_build_instances(self, ctxt, instance_uuids: list, request_spec: dict,
                                     image: dict | None):
        self.client.cast(ctxt, 'schedule_and_build_instances', instance_uuids=instance_uuids,
                         request_spec=request_spec, image=image)

    def build_instances(self, ctxt, instance_uuid: str, request_spec: dict,
                        image: dict | None, host_list: list, reason: str):
        """Reschedule one failed build to the next alternate host."""
        self.client.cast(ctxt, 'build_instances', instance_uuid=instance_uuid,
                         request_spec=request_spec, image=image, host_list=host_list,
                         reason=reason)

    def migrate_server(self, ctxt, instance_uuid: str, flavor: dict | None,
                       host_list: list | None = None, migration_uuid: str | None = None,
                       request_spec: dict | None = None, reason: str | None = None):
        self.client.cast(ctxt, 'migrate_server', instance_uuid=instance_uuid, flavor=flavor,
                         host_list=host_list, migration_uuid=migration_uuid,
                         request_spec=request_spec, reason=reason)

    def live_migrate_instance(self, ctxt, instance_uuid: str, host: str | None,
                              block_migration, disk_over_commit, force: bool,
                              migration_uuid: str, sync: bool = False):
        cctxt = self.client.prepare(timeout=CONF.long_rpc_timeout) if sync else self.client
        method = cctxt.call if sync else cctxt.cast
        return method(ctxt, 'live_migrate_instance', instance_uuid=instance_uuid, host=host,
                      block_migration=block_migration, disk_over_commit=disk_over_commit,
                      force=force, migration_uuid=migration_uuid)


class RemoteDB:
    """The database functions a compute host may use, each one conductor RPC call."""

    ALLOWED = frozenset({
        'service_create', 'service_heartbeat', 'service_get_all', 'compute_node_update',
        'compute_node_get_by_host_and_node', 'instance_get', 'instance_get_all_by_host',
        'instance_get_all_filtered', 'instance_update', 'instance_destroy',
        'action_event_start', 'action_event_finish', 'fault_create', 'migration_get',
        'migration_update', 'migration_get_all', 'get_allocations', 'get_allocations_full',
        'delete_allocations', 'move_allocations', 'claim_resources', 'request_spec_get',
        'image_get', 'flavor_get',
    })

    def __init__(self, conductor: ConductorAPI, context_factory):
        self._conductor = conductor
        self._context_factory = context_factory

    def __getattr__(self, name):
        if name not in self.ALLOWED:
            raise AttributeError(name)

        def call(*args, context=None, **kwargs):
            ctxt = context or self._context_factory()
            return self._conductor.db_call(ctxt, name, list(args), kwargs)
        call.__name__ = name
        return call
