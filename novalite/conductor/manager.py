"""Conductor service: the table of contents of what it serves.

Compute hosts' requests (``host_requests``: reports, reads and move steps, each checked
against the calling host) and the orchestration of builds and moves (``tasks``).
"""

import logging
import threading

import oslo_messaging as messaging

from novalite import context as nl_context
from novalite import exception, rpc, service
from novalite.api import compute_api
from novalite.compute import rpcapi as compute_rpcapi
from novalite.conductor import admission, drain, policies, reconcile
from novalite.conductor import host_requests as hosts
from novalite.conductor import rpcapi as conductor_rpcapi
from novalite.conductor.tasks import build, evacuate, live_migrate, migrate
from novalite.db import api as db
from novalite.db import audit
from novalite.scheduler import rpcapi as scheduler_rpcapi

LOG = logging.getLogger(__name__)


class ConductorManager(service.Manager):
    target = messaging.Target(version=conductor_rpcapi.VERSION)
    rpc_methods = conductor_rpcapi.METHODS
    priority_methods = conductor_rpcapi.PRIORITY_METHODS  # heartbeats never queue

    def __init__(self, host, transport_url=None):
        super().__init__(host, 'novalite-conductor')
        policies.check_at_start()  # a bad policy file stops the conductor here
        self.compute_rpcapi = compute_rpcapi.ComputeAPI(url=transport_url)
        self.scheduler_rpcapi = scheduler_rpcapi.SchedulerAPI(url=transport_url)
        self.conductor_rpcapi = conductor_rpcapi.ConductorAPI(url=transport_url)
        self.driven = reconcile.Driven()  # instances this process's tasks are driving
        self.admission_stop = threading.Event()  # ends the waits for a live-migration slot
        self.reconciler = reconcile.Reconciler(host, self.compute_rpcapi, self.driven,
                                               rebuild=self._build_again,
                                               answers=self._answers,
                                               bus=lambda: rpc.bus_reachable(transport_url))
        # Drains start their moves through the API's own checks and steps.
        self.drainer = drain.Drainer(host, compute_api.API(transport_url), self.reconciler,
                                     live_slots=admission.live_slots_free)

    def init_host(self):
        # Before consuming: whatever this conductor was driving when it stopped is
        # rolled back now, not when a timeout notices.
        self.reconciler.run(nl_context.get_admin_context(), at_start=True)


    def cleanup_host(self):
        self.admission_stop.set()

    def ping(self, context):
        return {'host': self.host, 'service': self.service_name}

    # ------------------------------------------------ compute hosts (``caller`` is the host)

    @messaging.expected_exceptions(exception.NovaliteException)
    def service_register(self, context, caller, binary, topic, availability_zone=None):
        return hosts.service_register(caller, binary, topic, availability_zone)

    @messaging.expected_exceptions(exception.NovaliteException)
    def service_heartbeat(self, context, caller, binary):
        return hosts.service_heartbeat(caller, binary)

    @messaging.expected_exceptions(exception.NovaliteException)
    def compute_node_report(self, context, caller, nodename, resources, allocation_ratios,
                            reserved, traits):
        return hosts.compute_node_report(caller, nodename, resources, allocation_ratios,
                                         reserved, traits)

    @messaging.expected_exceptions(exception.NovaliteException)
    def compute_nodes_report(self, context, caller, reports):
        return hosts.compute_nodes_report(caller, reports)

    @messaging.expected_exceptions(exception.NovaliteException)
    def host_instances(self, context, caller):
        return hosts.host_instances(caller)

    @messaging.expected_exceptions(exception.NovaliteException)
    def host_migrations(self, context, caller):
        return hosts.host_migrations(caller)

    @messaging.expected_exceptions(exception.NovaliteException)
    def instance_get(self, context, caller, instance_uuid):
        return hosts.instance_get(caller, instance_uuid)

    @messaging.expected_exceptions(exception.NovaliteException)
    def record_step(self, context, caller, step, instance_uuid, migration_uuid, changes):
        return hosts.record_step(caller, step, instance_uuid, migration_uuid, changes)

    @messaging.expected_exceptions(exception.NovaliteException)
    def record_progress(self, context, caller, instance_uuid, progress=None,
                        migration_uuid=None, migration_values=None, decisions=None):
        return hosts.record_progress(caller, instance_uuid, progress, migration_uuid,
                                     migration_values, decisions)

    @messaging.expected_exceptions(exception.NovaliteException)
    def instance_power_synced(self, context, caller, instance_uuid, power_state,
                              expected_task_state=None):
        return hosts.instance_power_synced(caller, instance_uuid, power_state,
                                           expected_task_state)

    @messaging.expected_exceptions(exception.NovaliteException)
    def instance_destroyed(self, context, caller, instance_uuid, events=None):
        return hosts.instance_destroyed(caller, instance_uuid, events)

    @messaging.expected_exceptions(exception.NovaliteException)
    def record_events(self, context, caller, instance_uuid, events):
        return hosts.record_events(caller, instance_uuid, events)

    @messaging.expected_exceptions(exception.NovaliteException)
    def release_claim(self, context, caller, instance_uuid, nodename=None, events=None):
        return hosts.release_claim(caller, instance_uuid, nodename, events)

    # ------------------------------------------------ builds and moves

    def _answers(self, context, topic, host) -> bool:
        """Whether the service ``host`` on ``topic`` answers a ping over the bus."""
        context = context or nl_context.get_admin_context()
        if topic == compute_rpcapi.TOPIC:
            return self.compute_rpcapi.is_alive(context, host)
        return rpc.is_alive(self.conductor_rpcapi.client, context, topic, server=host)

    def _build_again_without(self, context, instance_uuid, failed_host, reason):
        """Schedule a build again from its recorded request, ``failed_host`` excluded."""
        try:
            inst = db.instance_get(instance_uuid)
        except exception.InstanceNotFound:
            return
        spec = db.request_spec_get(instance_uuid) or {}
        spec = dict(spec, instance_uuid=instance_uuid, instance_uuids=[instance_uuid],
                    num_instances=1,
                    ignore_hosts=sorted(set(spec.get('ignore_hosts') or []) | {failed_host}))
        try:
            image = db.image_get(inst['image_ref']) if inst['image_ref'] else None
        except exception.ImageNotFound:
            image = None
        LOG.info('Scheduling %s again without %s: %s', instance_uuid, failed_host, reason)
        self._build_again(context, inst, spec, image)

    def _build_again(self, context, instance, request_spec, image):
        """The reconciler's resend of a build whose conductor stopped while scheduling."""
        build.ScheduleAndBuildTask(self, context, [instance['uuid']], request_spec,
                                   image).run()

    def schedule_and_build_instances(self, context, instance_uuids, request_spec, image):
        build.ScheduleAndBuildTask(self, context, instance_uuids, request_spec,
                                   image).run()

    def build_instances(self, context, instance_uuid, request_spec, image, host_list, reason,
                        failed_host=None):
        if failed_host and not host_list:
            self._build_again_without(context, instance_uuid, failed_host, reason)
            return
        build.RescheduleBuildTask(self, context, instance_uuid, request_spec, image,
                                  host_list, reason).run()

    def migrate_server(self, context, instance_uuid, flavor, host_list=None,
                       migration_uuid=None, request_spec=None, reason=None, instance=None):
        migrate.MigrationTask(self, context, instance_uuid, flavor, host_list=host_list,
                              migration_uuid=migration_uuid, request_spec=request_spec,
                              reason=reason, instance=instance).run()

    @messaging.expected_exceptions(exception.NovaliteException)
    def live_migrate_instance(self, context, instance_uuid, host, block_migration,
                              disk_over_commit, force, migration_uuid):
        return live_migrate.LiveMigrationTask(
            self, context, instance_uuid, host, block_migration, disk_over_commit, force,
            migration_uuid).run()

    def evacuate_instance(self, context, instance_uuid, migration_uuid, host, force, stop,
                          request_spec):
        evacuate.EvacuateTask(self, context, instance_uuid, migration_uuid, host, force, stop,
                              request_spec).run()

    @service.periodic_task(spacing='conductor.audit_interval')
    def audit_allocations(self, context):
        """Fix allocations that certainly belong to nobody; log what is uncertain."""
        audit.run_periodic(self.host)

    @service.periodic_task(spacing='conductor.reconcile_interval')
    def reconcile_unfinished_work(self, context):
        """Drive every unfinished build and move from its recorded step."""
        self.reconciler.run(context)

    @service.periodic_task(spacing='conductor.drain_interval')
    def drive_host_drains(self, context):
        """Settle the moves of every active host drain and start the next ones."""
        self.drainer.run(context)
