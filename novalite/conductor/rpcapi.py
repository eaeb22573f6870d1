"""Client side of the conductor RPC API: the only way to reach a conductor.

Version history:
  1.0 - db_call, schedule_and_build_instances, build_instances, migrate_server,
        live_migrate_instance, service_register
  2.0 - db_call removed. Compute hosts use named methods instead, each checked against
        the calling host: service_register, service_heartbeat, compute_node_report,
        host_instances, host_migrations, instance_get, record_step, record_progress,
        record_events, instance_power_synced, instance_destroyed, release_claim;
        migrate_server takes the instance record the API wrote
  2.1 - build_instances takes ``failed_host``: with no alternates and no request spec
        or image, the conductor schedules the build again from its recorded request,
        that host excluded (a compute that restarted during the build)
  2.2 - evacuate_instance
  2.3 - record_progress takes ``decisions``: a live migration's policy decisions
        ({'at', 'decision', 'detail'}), appended to the migration's policy_log
  2.4 - compute_nodes_report: several nodes of a multi-node host in one call and one
        transaction

A conductor also serves ``PRIORITY_METHODS`` on topic ``conductor_priority`` from a
pool of its own, so heartbeats and pings never queue behind busy workers. A compute's
calls are bounded by the conductors' liveness and sent again when lost
(``HostConductor._call``); its heartbeats go to the priority topic with their own
client and a timeout of about ``report_interval``.
"""

import oslo_messaging as messaging

from novalite import rpc
from novalite.conf import CONF

TOPIC = 'conductor'
VERSION = '2.4'

# Everything a conductor serves; its RPC server dispatches nothing else.
METHODS = ('ping', 'schedule_and_build_instances', 'build_instances', 'migrate_server',
           'live_migrate_instance', 'evacuate_instance', 'service_register', 'service_heartbeat',
           'compute_node_report', 'compute_nodes_report', 'host_instances', 'host_migrations',
           'instance_get',
           'record_step', 'record_progress', 'record_events', 'instance_power_synced',
           'instance_destroyed', 'release_claim')

# Served again on the priority topic: liveness and service registration/heartbeats.
PRIORITY_METHODS = ('ping', 'service_register', 'service_heartbeat')


class ConductorAPI:
    def __init__(self, url: str | None = None):
        target = messaging.Target(topic=TOPIC, version=VERSION)
        self.url = url
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

    def schedule_and_build_instances(self, ctxt, instance_uuids: list, request_spec: dict,
                                     image: dict | None):
        self.client.cast(ctxt, 'schedule_and_build_instances', instance_uuids=instance_uuids,
                         request_spec=request_spec, image=image)

    def build_instances(self, ctxt, instance_uuid: str, request_spec: dict | None,
                        image: dict | None, host_list: list, reason: str,
                        failed_host: str | None = None):
        """Reschedule one failed build to the next alternate host, or (no alternates,
        ``failed_host`` given) schedule it again from its recorded request."""
        kwargs = dict(instance_uuid=instance_uuid, request_spec=request_spec, image=image,
                      host_list=host_list, reason=reason)
        if failed_host is not None:
            kwargs['failed_host'] = failed_host
        self.client.prepare(version='2.1' if failed_host else '2.0').cast(
            ctxt, 'build_instances', **kwargs)

    def migrate_server(self, ctxt, instance_uuid: str, flavor: dict | None,
                       host_list: list | None = None, migration_uuid: str | None = None,
                       request_spec: dict | None = None, reason: str | None = None,
                       instance: dict | None = None):
        """``instance`` is the record as the API's step wrote it (saves a read)."""
        self.client.cast(ctxt, 'migrate_server', instance_uuid=instance_uuid, flavor=flavor,
                         host_list=host_list, migration_uuid=migration_uuid,
                         request_spec=request_spec, reason=reason, instance=instance)

    def live_migrate_instance(self, ctxt, instance_uuid: str, host: str | None,
                              block_migration, disk_over_commit, force: bool,
                              migration_uuid: str, sync: bool = False):
        cctxt = self.client.prepare(timeout=CONF.long_rpc_timeout) if sync else self.client
        method = cctxt.call if sync else cctxt.cast
        return method(ctxt, 'live_migrate_instance', instance_uuid=instance_uuid, host=host,
                      block_migration=block_migration, disk_over_commit=disk_over_commit,
                      force=force, migration_uuid=migration_uuid)


    def evacuate_instance(self, ctxt, instance_uuid: str, migration_uuid: str,
                          host: str | None, force: bool, stop: bool, request_spec: dict):
        self.client.prepare(version='2.2').cast(
            ctxt, 'evacuate_instance', instance_uuid=instance_uuid,
            migration_uuid=migration_uuid, host=host, force=force, stop=stop,
            request_spec=request_spec)


class HostConductor:
    """What one compute host may ask of the conductors: named methods, each one RPC call
    and at most one transaction, each carrying the calling host so the conductor can
    refuse work on instances that are not this host's."""

    def __init__(self, conductor: ConductorAPI, host: str, context_factory):
        self._client = conductor.client
        # Heartbeats have a client of their own, aimed at the conductors' priority
        # server: they never wait behind another call, here or on the conductor.
        self._priority_client = rpc.get_client(
            messaging.Target(topic=rpc.priority_topic(TOPIC), version=VERSION),
            version_cap=VERSION, url=conductor.url)
        self.host = host
        self._context_factory = context_factory

    def _call(self, method, context=None, priority_timeout=None, version=None, **kwargs):
        """Bounded by the conductors' liveness: a call lost with a conductor that died
        is sent again to the topic, where another or a restarted conductor takes it
        (each method is a read or an idempotent, compare-and-swap guarded write).
        With ``priority_timeout``: one attempt on the priority topic (heartbeats)."""
        ctxt = context or self._context_factory()
        if priority_timeout is not None:
            return self._priority_client.prepare(timeout=priority_timeout).call(
                ctxt, method, caller=self.host, **kwargs)
        client = self._client.prepare(version=version) if version else self._client
        return rpc.call_while_alive(
            client, ctxt, method, timeout=CONF.rpc_response_timeout,
            alive=lambda: rpc.is_alive(self._client, ctxt, TOPIC),
            caller=self.host, **kwargs)

    def service_register(self, binary, topic, availability_zone=None):
        return self._call('service_register', binary=binary, topic=topic,
                          availability_zone=availability_zone,
                          priority_timeout=CONF.rpc_response_timeout)

    def service_heartbeat(self, binary):
        """One attempt of about ``report_interval``: a lost heartbeat is replaced by the
        next one, never queued behind it."""
        return self._call('service_heartbeat', binary=binary,
                          priority_timeout=CONF.report_interval)

    def compute_node_report(self, nodename, resources, allocation_ratios, reserved, traits):
        return self._call('compute_node_report', nodename=nodename, resources=resources,
                          allocation_ratios=allocation_ratios, reserved=reserved,
                          traits=list(traits))

    def compute_nodes_report(self, reports):
        """``reports``: dicts of nodename, resources, allocation_ratios, reserved and
        traits. Returns nodename -> compute node uuid."""
        return self._call('compute_nodes_report', reports=reports, version='2.4')

    def host_instances(self):
        return self._call('host_instances')

    def host_migrations(self):
        return self._call('host_migrations')

    def instance_get(self, instance_uuid):
        return self._call('instance_get', instance_uuid=instance_uuid)

    def record_step(self, context, step, instance_uuid, migration_uuid=None, **changes):
        """Apply one step of the state table in one transaction; returns
        ``{'instance', 'migration'}``. ``changes``: instance_values, migration_values,
        vm_state, status, event, fault."""
        return self._call('record_step', context, step=step, instance_uuid=instance_uuid,
                          migration_uuid=migration_uuid, changes=changes)

    def record_progress(self, instance_uuid, progress=None, migration_uuid=None,
                        migration_values=None, decisions=None):
        """Progress figures of a move; ``decisions`` (2.3) are policy decisions of a
        live migration, appended to its policy_log."""
        if decisions:
            return self._call('record_progress', version='2.3', instance_uuid=instance_uuid,
                              progress=progress, migration_uuid=migration_uuid,
                              migration_values=migration_values, decisions=decisions)
        return self._call('record_progress', instance_uuid=instance_uuid, progress=progress,
                          migration_uuid=migration_uuid, migration_values=migration_values)

    def instance_power_synced(self, instance_uuid, power_state, expected_task_state=None):
        return self._call('instance_power_synced', instance_uuid=instance_uuid,
                          power_state=power_state, expected_task_state=expected_task_state)

    def instance_destroyed(self, context, instance_uuid, events=None):
        return self._call('instance_destroyed', context, instance_uuid=instance_uuid,
                          events=events)

    def record_events(self, context, instance_uuid, events):
        """Events of steps that change no state (pre-checks, abort, force-complete)."""
        return self._call('record_events', context, instance_uuid=instance_uuid,
                          events=events)

    def release_claim(self, context, instance_uuid, nodename=None, events=None):
        """Drop the instance's claim on this host (a build or prep that will not run)."""
        return self._call('release_claim', context, instance_uuid=instance_uuid,
                          nodename=nodename, events=events)
