"""Compute service: the table of contents of what a compute host serves.

Every RPC entry point is one line delegating to a flow object: ``LifecycleFlow`` (build,
power, delete), ``ResizeFlow`` (cold moves), ``LiveMigrationFlow`` and
``EvacuationFlow``. The host never opens the database: it reads and writes through its
conductor methods
(``conductor.rpcapi.HostConductor``), which accept only work about this host's
instances and moves. On start it reconciles the instances and moves it owns.
"""

import logging
import threading

import oslo_messaging as messaging

from novalite import context as nl_context
from novalite import exception, service
from novalite.compute import orphans, resource_tracker, states
from novalite.compute import rpcapi as compute_rpcapi
from novalite.compute import utils as compute_utils
from novalite.compute.evacuation import EvacuationFlow
from novalite.compute.lifecycle import LifecycleFlow
from novalite.compute.live_migration import LiveMigrationFlow
from novalite.compute.resize import ResizeFlow
from novalite.compute.utils import InstanceLocks
from novalite.conductor import rpcapi as conductor_rpcapi
from novalite.conf import CONF
from novalite.virt import driver as virt_driver
from novalite.virt import power_state

LOG = logging.getLogger(__name__)

# Seconds after this process starts consuming before a build found at start without a
# guest, whose request has not come from the queue by then, is given back.
QUEUED_BUILD_WAIT = 3.0


class ComputeManager(service.Manager):
    target = messaging.Target(version=compute_rpcapi.VERSION)
    rpc_methods = compute_rpcapi.METHODS

    def __init__(self, host, driver=None, transport_url=None):
        super().__init__(host, 'novalite-compute')
        self.driver = driver or virt_driver.load_driver(CONF, host)
        self.conductor_api = conductor_rpcapi.ConductorAPI(url=transport_url)
        self.conductor = conductor_rpcapi.HostConductor(self.conductor_api, host,
                                                        nl_context.get_admin_context)
        computes = compute_rpcapi.ComputeAPI(url=transport_url)
        self.rt = resource_tracker.ResourceTracker(host, self.driver, self.conductor)
        lock = InstanceLocks()
        self.lifecycle = LifecycleFlow(host, self.driver, self.conductor, self.conductor_api,
                                       lock, self._power_state, self._enter, self._leave)
        self._locks = lock
        self._builds_at_start: set[str] = set()
        self._queued_builds_check = None
        self.resize = ResizeFlow(host, self.driver, self.conductor, self.conductor_api,
                                 computes, lock, self._power_state)
        self.live = LiveMigrationFlow(host, self.driver, self.conductor, computes,
                                      self._host_info, self._power_state, self._enter,
                                      self._leave)
        self.evacuation = EvacuationFlow(host, self.driver, self.conductor, lock,
                                         self._power_state, self._enter, self._leave)

    # ------------------------------------------------------------ lifecycle of the service

    def init_host(self):
        self.conductor_api.wait_until_ready(nl_context.get_admin_context())
        self.driver.init_host(self.host)
        # Before consuming: only what died with the previous process is reconciled, never
        # a request that has just arrived.
        self.reconcile_instances(nl_context.get_admin_context())

    def after_start(self):
        self.rt.update_available_resource()
        if self._builds_at_start:
            # Requests waiting in the queue reach this process as soon as it consumes.
            self._queued_builds_check = threading.Timer(
                QUEUED_BUILD_WAIT, self._reconcile_builds_left, args=(self._builds_at_start,))
            self._queued_builds_check.daemon = True
            self._queued_builds_check.start()

    def cleanup_host(self):
        if self._queued_builds_check is not None:
            self._queued_builds_check.cancel()
        self.live.stop()
        self.driver.cleanup_host()

    def ping(self, context):
        return {'host': self.host, 'service': self.service_name}

    def _power_state(self, instance) -> int:
        try:
            return self.driver.get_info(instance)['state']
        except virt_driver.InstanceNotFoundOnHost:
            return power_state.NOSTATE

    def _host_info(self):
        cn = self.rt.compute_nodes or self.rt.update_available_resource()
        return next(iter(cn.values()))

    # ------------------------------------------------------------ RPC entry points

    def build_and_run_instance(self, context, instance, image, request_spec, host_list):
        self.lifecycle.build(context, instance, image, request_spec, host_list)

    def start_instance(self, context, instance):
        self.lifecycle.start(context, instance)

    def stop_instance(self, context, instance):
        self.lifecycle.stop(context, instance)

    def reboot_instance(self, context, instance, reboot_type):
        self.lifecycle.reboot(context, instance, reboot_type)

    def terminate_instance(self, context, instance):
        self.lifecycle.terminate(context, instance)

    def prep_resize(self, context, instance, flavor, migration, request_spec, host_list):
        self.resize.prep_resize(context, instance, flavor, migration, request_spec,
                                host_list)

    def resize_instance(self, context, instance, migration, flavor):
        self.resize.resize_instance(context, instance, migration, flavor)

    def finish_resize(self, context, instance, migration, disk_info):
        self.resize.finish_resize(context, instance, migration, disk_info)

    def confirm_resize(self, context, instance, migration):
        self.resize.confirm_resize(context, instance, migration)

    def revert_resize(self, context, instance, migration):
        self.resize.revert_resize(context, instance, migration)

    def finish_revert_resize(self, context, instance, migration):
        self.resize.finish_revert_resize(context, instance, migration)

    @messaging.expected_exceptions(exception.NovaliteException)
    def check_can_live_migrate_destination(self, context, instance, block_migration,
                                           disk_over_commit, migration, source_node):
        return self.live.check_can_live_migrate_destination(
            context, instance, block_migration, disk_over_commit, migration, source_node)

    @messaging.expected_exceptions(exception.NovaliteException)
    def check_can_live_migrate_source(self, context, instance, dest_check_data):
        return self.live.check_can_live_migrate_source(context, instance, dest_check_data)

    @messaging.expected_exceptions(exception.NovaliteException)
    def pre_live_migration(self, context, instance, migrate_data):
        return self.live.pre_live_migration(context, instance, migrate_data)

    def live_migration(self, context, instance, dest, migration, migrate_data):
        self.live.live_migration(context, instance, dest, migration, migrate_data)

    @messaging.expected_exceptions(exception.NovaliteException)
    def post_live_migration_at_destination(self, context, instance, migration, migrate_data):
        return self.live.post_live_migration_at_destination(context, instance, migration,
                                                            migrate_data)

    @messaging.expected_exceptions(exception.NovaliteException)
    def rollback_live_migration_at_destination(self, context, instance, migrate_data):
        return self.live.rollback_live_migration_at_destination(context, instance,
                                                                migrate_data)

    def live_migration_force_complete(self, context, instance, migration):
        self.live.force_complete(context, instance, migration)

    def live_migration_abort(self, context, instance, migration):
        self.live.abort(context, instance, migration)

    def rebuild_instance(self, context, instance, migration, image, stop):
        self.evacuation.rebuild(context, instance, migration, image, stop)

    # ------------------------------------------------------------ periodic reconciles

    @service.periodic_task(spacing='compute.resource_update_interval')
    def update_available_resource(self, context):
        self.rt.update_available_resource()

    @service.periodic_task(spacing='periodic_interval')
    def sync_power_states(self, context):
        for inst in self.conductor.host_instances():
            if inst['task_state'] is None:
                self.lifecycle.sync_power_state(inst)

    @service.periodic_task(spacing='periodic_interval')
    def auto_confirm_resizes(self, context):
        self.resize.auto_confirm(context, self.conductor.host_migrations())

    @service.periodic_task(spacing='periodic_interval')
    def reconcile_stale_work(self, context):
        """Level-triggered: a step this host owes that nothing here works on and that has
        not changed for ``compute.reconcile_grace`` seconds (its request was lost, or its
        write failed while the database or the conductor was away) is driven from its
        recorded state, as after a restart."""
        grace = CONF.compute.reconcile_grace
        for inst in self.conductor.host_instances():
            if inst['task_state'] in states.BUILD_TASKS + states.POWER_TASKS + (
                    states.DELETING,) and compute_utils.age(inst) >= grace:
                self._reconcile_idle(inst, self.lifecycle.reconcile, context, inst)
        migrations = self.conductor.host_migrations()
        self.evacuation.clean_up_evacuated(context, migrations)
        for mig in migrations:
            flow = self._flow(mig)
            if flow is None or compute_utils.age(mig) < grace:
                continue
            if self.live.running(mig['instance_uuid']):
                # Queued or running on this host's executor: its job drives it (a lost
                # request is not there, and is driven below).
                continue
            try:
                inst = self.conductor.instance_get(mig['instance_uuid'])
            except exception.InstanceNotFound:
                continue
            step = states.pending_step(mig, inst)
            if step is None or states.owner_host(step, mig, inst) != self.host or \
                    compute_utils.age(inst) < grace:
                continue
            LOG.info('Driving %s of %s from its recorded state (%s, %s)', step.name,
                     inst['uuid'], mig['status'], inst['task_state'])
            self._reconcile_idle(inst, flow.reconcile, context, mig)

    def _flow(self, mig):
        """The flow that drives a migration of this host (None: nothing to drive)."""
        kind = mig['migration_type']
        if kind == states.LIVE_MIGRATION:
            return self.live
        if kind in states.COLD_MOVES:
            return self.resize
        if kind == states.EVACUATION:
            return self.evacuation
        return None

    def _reconcile_idle(self, inst, fn, *args):
        """Run ``fn`` under the instance lock unless a request of this process holds it
        or a live migration of the instance is queued or running here."""
        lock = self._locks(inst['uuid'])
        if self.live.running(inst['uuid']) or not lock.acquire(blocking=False):
            return
        try:
            fn(*args)
        except Exception:
            LOG.exception('Could not reconcile instance %s', inst['uuid'])
        finally:
            lock.release()

    @service.periodic_task(spacing='compute.resource_update_interval', run_immediately=True)
    def remove_orphan_guests(self, context):
        """Remove guests, resize backups and prepared guests the database gives this
        host no reason to keep (a backup left because this host was down at confirm or
        delete, a guest a dead-host recovery moved elsewhere). The hypervisor is listed
        before the database is read, so a move starting meanwhile is never touched; the
        moves are read before the instances, so a move ending between the two reads is
        seen unfinished in the first (see orphans.owned_uuids)."""
        listing = self.driver.list_guest_uuids()
        if not listing:
            return
        migrations = self.conductor.host_migrations()
        keep = orphans.owned_uuids(self.host, self.conductor.host_instances(), migrations)
        removed = self.driver.remove_orphans(keep, among=listing)
        if removed:
            LOG.warning('Removed what no instance or move of this host owns: %s',
                        ', '.join(removed))

    def _reconcile_builds_left(self, uuids):
        """Builds found at start without a guest whose request did not come from the
        queue once this process consumed (it died with the previous process): given back
        to the conductor, as a restart's reconcile does with a build it interrupted."""
        def give_back(inst):
            LOG.info('No build request for %s came from the queue; giving it back',
                     inst['uuid'])
            self.lifecycle.reconcile(context, inst)

        context = nl_context.get_admin_context()
        try:
            for inst in self.conductor.host_instances():
                # Under the instance lock, which a build whose request came holds.
                if inst['uuid'] in uuids and self.lifecycle.may_be_queued(inst):
                    self._reconcile_idle(inst, give_back, inst)
        except Exception:
            LOG.exception('Could not reconcile the builds found at start')

    def reconcile_instances(self, context):
        """Bring every instance and move this host owns out of a transitional state.

        Run at start, before consuming: whatever this process was doing when it died is
        finished or rolled back here, so nothing stays in building/deleting/powering-*
        forever. Work that may only be waiting in this host's queue (a build with no
        guest here, a move whose hand-over to this host is recorded but not started) is
        left to the queue: builds whose request has not come a few seconds after this
        process consumes are given back (``_reconcile_builds_left``), lost move requests
        are ``reconcile_stale_work``'s.
        """
        for inst in self.conductor.host_instances():
            if inst['task_state'] == states.SCHEDULING:
                continue
            if self.lifecycle.may_be_queued(inst):
                self._builds_at_start.add(inst['uuid'])
                continue
            try:
                self.lifecycle.reconcile(context, inst)
            except Exception:
                LOG.exception('Could not reconcile instance %s', inst['uuid'])
        migrations = self.conductor.host_migrations()
        # Guests evacuated away while this host was down go first: they must not run
        # beside their rebuilt copies a moment longer than needed.
        self.evacuation.clean_up_evacuated(context, migrations)
        for mig in migrations:
            flow = self._flow(mig)
            # Accepted and pre-migrating moves may only be waiting in this host's queue;
            # an evacuation's pre-migrating step is this host's rebuild, which died with
            # the previous process.
            waiting = (states.MS.ACCEPTED,) if flow is self.evacuation else (
                states.MS.PRE_MIGRATING, states.MS.ACCEPTED)
            if flow is None or mig['status'] in waiting:
                continue
            try:
                inst = self.conductor.instance_get(mig['instance_uuid'])
                step = states.pending_step(mig, inst)
                if step is None or states.owner_host(step, mig, inst) != self.host:
                    continue
                LOG.info('Reconciling %s of %s after a restart (%s, %s)', step.name,
                         inst['uuid'], mig['status'], inst['task_state'])
                flow.reconcile(context, mig)
            except exception.InstanceNotFound:
                continue
            except Exception:
                LOG.exception('Could not reconcile migration %s', mig['uuid'])
