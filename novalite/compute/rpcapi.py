"""Client side of the compute RPC API; messages go to topic ``compute``, server = host.

Version history:
  1.0 - build_and_run_instance, start_instance, stop_instance, reboot_instance,
        terminate_instance, prep_resize, resize_instance, finish_resize, confirm_resize,
        revert_resize, finish_revert_resize, check_can_live_migrate_destination,
        check_can_live_migrate_source, pre_live_migration, live_migration,
        post_live_migration_at_destination, rollback_live_migration_at_destination,
        live_migration_force_complete, live_migration_abort, ping
  2.0 - steps write their state through the conductor's record_step; the pre-checks,
        pre_live_migration and rollback_live_migration_at_destination (now a call) return
        their action events to the caller, which writes them with its next step;
        check_can_live_migrate_destination takes the source node record; prep_resize no
        longer takes the image (the destination never used it)
  2.1 - rebuild_instance (an evacuation's destination rebuilds the guest)

Every compute also serves ``ping`` on topic ``compute_priority`` (server = host) from
a pool of its own: callers check a silent host's liveness there. Calls are bounded by
that liveness (``_call``), never a blind ``long_rpc_timeout`` wait.
"""

import oslo_messaging as messaging

from novalite import exception, rpc
from novalite.conf import CONF

TOPIC = 'compute'
VERSION = '2.1'

# Everything a compute serves; its RPC server dispatches nothing else.
METHODS = ('ping', 'build_and_run_instance', 'start_instance', 'stop_instance',
           'reboot_instance', 'terminate_instance', 'prep_resize', 'resize_instance',
           'finish_resize', 'confirm_resize', 'revert_resize', 'finish_revert_resize',
           'check_can_live_migrate_destination', 'check_can_live_migrate_source',
           'pre_live_migration', 'live_migration', 'post_live_migration_at_destination',
           'rollback_live_migration_at_destination', 'live_migration_force_complete',
           'live_migration_abort', 'rebuild_instance')


class ComputeAPI:
    def __init__(self, url: str | None = None):
        target = messaging.Target(topic=TOPIC, version=VERSION)
        self.client = rpc.get_client(target, version_cap=VERSION, url=url)
        self.url = url

    def _cast(self, ctxt, host, method, **kwargs):
        self.client.prepare(server=host).cast(ctxt, method, **kwargs)

    def _call(self, ctxt, host, method, timeout=None, **kwargs):
        """A call that waits while the host lives: PeerUnavailable as soon as the host
        stops answering its ping while the broker is reachable and settled (no outage
        seen here for a reconnect back-off), sent again if it restarted or the broker
        was out of reach meanwhile, ``timeout`` (``long_rpc_timeout``) in all
        (``rpc.call_watching``)."""
        def dead(waited):
            return exception.PeerUnavailable(service='novalite-compute', host=host,
                                             method=method, waited=waited)

        return rpc.call_watching(
            self.client.prepare(server=host), ctxt, method,
            timeout=timeout or CONF.long_rpc_timeout,
            probe=lambda: rpc.probe(self.client, ctxt, TOPIC, host), on_dead=dead,
            reachable=lambda: rpc.bus_settled(self.url), **kwargs)

    def ping(self, ctxt, host, timeout=5):
        return self.client.prepare(server=host, timeout=timeout).call(ctxt, 'ping')

    def is_alive(self, ctxt, host, timeout=None) -> bool:
        """Whether the compute on ``host`` answers a ping on its priority server."""
        return rpc.is_alive(self.client, ctxt, TOPIC, server=host, timeout=timeout)

    def build_and_run_instance(self, ctxt, host, instance, image, request_spec, host_list):
        self._cast(ctxt, host, 'build_and_run_instance', instance=instance, image=image,
                   request_spec=request_spec, host_list=host_list)

    def start_instance(self, ctxt, instance):
        self._cast(ctxt, instance['host'], 'start_instance', instance=instance)

    def stop_instance(self, ctxt, instance):
        self._cast(ctxt, instance['host'], 'stop_instance', instance=instance)

    def reboot_instance(self, ctxt, instance, reboot_type):
        self._cast(ctxt, instance['host'], 'reboot_instance', instance=instance,
                   reboot_type=reboot_type)

    def terminate_instance(self, ctxt, instance):
        self._cast(ctxt, instance['host'], 'terminate_instance', instance=instance)

    def rebuild_instance(self, ctxt, host, instance, migration, image, stop):
        """An evacuation's destination rebuilds the guest from its image."""
        self.client.prepare(server=host, version='2.1').cast(
            ctxt, 'rebuild_instance', instance=instance, migration=migration, image=image,
            stop=stop)

    # cold migration / resize
    def prep_resize(self, ctxt, host, instance, flavor, migration, request_spec, host_list):
        self._cast(ctxt, host, 'prep_resize', instance=instance, flavor=flavor,
                   migration=migration, request_spec=request_spec, host_list=host_list)

    def resize_instance(self, ctxt, host, instance, migration, flavor):
        self._cast(ctxt, host, 'resize_instance', instance=instance, migration=migration,
                   flavor=flavor)

    def finish_resize(self, ctxt, host, instance, migration, disk_info):
        self._cast(ctxt, host, 'finish_resize', instance=instance, migration=migration,
                   disk_info=disk_info)

    def confirm_resize(self, ctxt, host, instance, migration, sync=False):
        if sync:
            return self._call(ctxt, host, 'confirm_resize', instance=instance,
                              migration=migration)
        self._cast(ctxt, host, 'confirm_resize', instance=instance, migration=migration)

    def revert_resize(self, ctxt, host, instance, migration):
        self._cast(ctxt, host, 'revert_resize', instance=instance, migration=migration)

    def finish_revert_resize(self, ctxt, host, instance, migration):
        self._cast(ctxt, host, 'finish_revert_resize', instance=instance,
                   migration=migration)

    # live migration
    def check_can_live_migrate_destination(self, ctxt, dest, instance, block_migration,
                                           disk_over_commit, migration, source_node):
        return self._call(ctxt, dest, 'check_can_live_migrate_destination',
                          instance=instance, block_migration=block_migration,
                          disk_over_commit=disk_over_commit, migration=migration,
                          source_node=source_node)

    def check_can_live_migrate_source(self, ctxt, source, instance, dest_check_data):
        return self._call(ctxt, source, 'check_can_live_migrate_source', instance=instance,
                          dest_check_data=dest_check_data)

    def pre_live_migration(self, ctxt, dest, instance, migrate_data):
        return self._call(ctxt, dest, 'pre_live_migration', instance=instance,
                          migrate_data=migrate_data)

    def live_migration(self, ctxt, source, instance, dest, migration, migrate_data):
        self._cast(ctxt, source, 'live_migration', instance=instance, dest=dest,
                   migration=migration, migrate_data=migrate_data)

    def post_live_migration_at_destination(self, ctxt, dest, instance, migration,
                                           migrate_data):
        return self._call(ctxt, dest, 'post_live_migration_at_destination',
                          instance=instance, migration=migration, migrate_data=migrate_data)

    def rollback_live_migration_at_destination(self, ctxt, dest, instance, migrate_data):
        """A call since 2.0: the source writes the rollback once the destination is clean,
        with the destination's action event."""
        return self._call(ctxt, dest, 'rollback_live_migration_at_destination',
                          timeout=CONF.rpc_response_timeout, instance=instance,
                          migrate_data=migrate_data)

    def live_migration_force_complete(self, ctxt, source, instance, migration):
        self._cast(ctxt, source, 'live_migration_force_complete', instance=instance,
                   migration=migration)

    def live_migration_abort(self, ctxt, source, instance, migration):
        self._cast(ctxt, source, 'live_migration_abort', instance=instance,
                   migration=migration)
