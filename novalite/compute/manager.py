"""Compute service: runs guests on this host through the virt driver.

It never opens the database: every read and write goes through conductor RPC
(``self.db`` is a RemoteDB proxy). On start it reconciles the instances it owns so a
crash never leaves one in a transitional state.
"""

import logging
import threading

import oslo_messaging as messaging

from novalite import context as nl_context
from novalite import exception, service
from novalite.compute import resource_tracker, states
from novalite.compute import rpcapi as compute_rpcapi
from novalite.compute import utils as compute_utils
from novalite.compute.live_migration import LiveMigrationMixin
from novalite.compute.resize import ResizeMixin
from novalite.conductor import rpcapi as conductor_rpcapi
from novalite.conf import CONF
from novalite.db.models import utcnow
from novalite.notifications import notify_instance
from novalite.virt import driver as virt_driver
from novalite.virt import power_state

LOG = logging.getLogger(__name__)


class ComputeManager(ResizeMixin, LiveMigrationMixin, service.Manager):
    target = messaging.Target(version='1.0')

    def __init__(self, host, driver=None, transport_url=None):
        service.Manager.__init__(self, host, 'novalite-compute')
        self.driver = driver or virt_driver.load_driver(CONF, host)
        self.conductor_api = conductor_rpcapi.ConductorAPI(url=transport_url)
        self.db = conductor_rpcapi.RemoteDB(self.conductor_api, nl_context.get_admin_context)
        self.compute_rpcapi = compute_rpcapi.ComputeAPI(url=transport_url)
        self.rt = resource_tracker.ResourceTracker(host, self.driver, self.db)
        self._build_semaphore = threading.BoundedSemaphore(CONF.max_concurrent_builds or 10**6)
        self._instance_locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        LiveMigrationMixin.__init__(self)

    # ------------------------------------------------------------ lifecycle

    def init_host(self):
        self.conductor_api.wait_until_ready(nl_context.get_admin_context())
        self.driver.init_host(self.host)

    def after_start(self):
        self.rt.update_available_resource()
        self.reconcile_instances(nl_context.get_admin_context())

    def cleanup_host(self):
        LiveMigrationMixin.cleanup_host(self)
        self.driver.cleanup_host()

    def ping(self, context):
        return {'host': self.host, 'service': self.service_name}

    def _lock(self, instance_uuid) -> threading.Lock:
        with self._locks_guard:
            return self._instance_locks.setdefault(instance_uuid, threading.Lock())

    def _event(self, context, instance_uuid, name):
        return compute_utils.event(self.db, context, instance_uuid, name, self.host)

    def _update(self, instance_uuid, values, **expected):
        return self.db.instance_update(instance_uuid, values, **expected)

    def _power_state(self, instance) -> int:
        try:
            return self.driver.get_info(instance)['state']
        except virt_driver.InstanceNotFoundOnHost:
            return power_state.NOSTATE

    # ------------------------------------------------------------ periodic reconciles

    @service.periodic_task(spacing='compute.resource_update_interval')
    def update_available_resource(self, context):
        self.rt.update_available_resource()

    @service.periodic_task(spacing='periodic_interval')
    def sync_power_states(self, context):
        """Record the hypervisor's power state of idle instances on this host."""
        for inst in self.db.instance_get_all_by_host(self.host):
            if inst['task_state'] is not None:
                continue
            actual = self._power_state(inst)
            if actual != inst['power_state']:
                try:
                    self._update(inst['uuid'], {'power_state': actual},
                                 expected_task_state=None)
                except (exception.UnexpectedTaskStateError, exception.InstanceNotFound):
                    pass

    @service.periodic_task(spacing='periodic_interval')
    def _auto_confirm(self, context):
        self.auto_confirm_resizes(context)

    def reconcile_instances(self, context):
        """Bring every instance this host owns out of a transitional state.

        Run at start: whatever this process was doing when it died is finished or rolled
        back here, so nothing stays in building/deleting/powering-* forever.
        """
        for inst in self.db.instance_get_all_by_host(self.host):
            try:
                self._reconcile_one(context, inst)
            except Exception:
                LOG.exception('Could not reconcile instance %s', inst['uuid'])
        self.reconcile_migrations(context)
        self.reconcile_live_migrations(context)

    def _reconcile_one(self, context, inst):
        task = inst['task_state']
        uuid = inst['uuid']
        exists = self.driver.instance_exists(inst)
        if task in states.BUILD_TASKS and inst['vm_state'] == states.BUILDING:
            if exists and self._power_state(inst) == power_state.RUNNING:
                self._update(uuid, {'vm_state': states.ACTIVE, 'task_state': None,
                                    'power_state': power_state.RUNNING,
                                    'launched_at': utcnow()}, expected_task_state=task)
            else:
                if exists:
                    self.driver.destroy(context, inst)
                exc = exception.BuildAbortException(
                    instance_uuid=uuid, reason='the compute service restarted during the build')
                # The fault first: whoever sees ERROR finds the reason too.
                compute_utils.add_fault(self.db, uuid, exc, self.host)
                self._update(uuid, {'vm_state': states.ERROR, 'task_state': None,
                                    'power_state': power_state.NOSTATE},
                             expected_task_state=task)
        elif task == states.DELETING:
            self._do_terminate(context, inst)
        elif task in (states.POWERING_OFF, states.POWERING_ON) + states.SOFT_REBOOT_TASKS \
                + states.HARD_REBOOT_TASKS:
            actual = self._power_state(inst)
            vm = states.ACTIVE if actual == power_state.RUNNING else (
                states.STOPPED if exists else states.ERROR)
            self._update(uuid, {'vm_state': vm, 'task_state': None, 'power_state': actual},
                         expected_task_state=task)
        elif task is None and inst['vm_state'] in (states.ACTIVE, states.STOPPED):
            actual = self._power_state(inst)
            if actual != inst['power_state']:
                self._update(uuid, {'power_state': actual}, expected_task_state=None)

    # ------------------------------------------------------------ build

    def build_and_run_instance(self, context, instance, image, request_spec, host_list):
        threading.Thread(target=self._build_guarded, name=f'build-{instance["uuid"]}',
                         args=(context, instance, image, request_spec, host_list),
                         daemon=True).start()

    def _build_guarded(self, context, instance, image, request_spec, host_list):
        self._enter()
        try:
            with self._build_semaphore, self._lock(instance['uuid']):
                self._do_build(context, instance, image, request_spec, host_list)
        except Exception:
            LOG.exception('Build of %s failed unexpectedly', instance['uuid'])
        finally:
            self._leave()

    def _do_build(self, context, instance, image, request_spec, host_list):
        uuid = instance['uuid']
        try:
            with self._event(context, uuid, 'compute__do_build_and_run_instance'):
                try:
                    instance = self._update(uuid, {'task_state': states.SPAWNING},
                                            expected_task_state=states.SCHEDULING,
                                            expected_host=self.host)
                except (exception.InstanceNotFound, exception.UnexpectedTaskStateError):
                    # Deleted (or taken over) before we started: release our claim.
                    self.db.delete_allocations(uuid, self.rt.node_uuid(instance['node']))
                    return
                notify_instance(context, instance, 'create', 'start', self.host)
                try:
                    self.driver.spawn(context, instance, image)
                except Exception as exc:
                    self._reschedule_or_error(context, instance, image, request_spec,
                                              host_list, exc)
                    raise
                try:
                    instance = self._update(
                        uuid, {'vm_state': states.ACTIVE, 'task_state': None,
                               'power_state': self._power_state(instance),
                               'launched_at': utcnow(), 'progress': 0},
                        expected_task_state=states.SPAWNING)
                except exception.InstanceNotFound:
                    self.driver.destroy(context, instance)
                    return
                except exception.UnexpectedTaskStateError:
                    # Deleted while spawning: the delete path owns the guest now.
                    return
                notify_instance(context, instance, 'create', 'end', self.host)
        except Exception:
            pass

    def _reschedule_or_error(self, context, instance, image, request_spec, host_list, exc):
        uuid = instance['uuid']
        try:
            self.driver.destroy(context, instance)
        except Exception:
            LOG.warning('Cleanup after failed spawn of %s failed', uuid, exc_info=True)
        self.db.delete_allocations(uuid)
        if host_list or CONF.scheduler.max_attempts > 1:
            # The conductor tries the next alternate, or says the retries ran out.
            try:
                self._update(uuid, {'task_state': states.SCHEDULING, 'host': None,
                                    'node': None}, expected_task_state=states.SPAWNING)
            except (exception.InstanceNotFound, exception.UnexpectedTaskStateError):
                return
            self.conductor_api.build_instances(context, uuid, request_spec, image, host_list,
                                               reason=str(exc))
            return
        try:
            compute_utils.add_fault(self.db, uuid, exc, self.host)
            inst = self._update(uuid, {'vm_state': states.ERROR, 'task_state': None,
                                       'power_state': power_state.NOSTATE},
                                expected_task_state=states.SPAWNING)
            notify_instance(context, inst, 'create', 'error', self.host, error=str(exc))
        except (exception.InstanceNotFound, exception.UnexpectedTaskStateError):
            pass

    # ------------------------------------------------------------ power

    def _power_action(self, context, instance, event, notify_name, expected_task, fn,
                      vm_state_after):
        uuid = instance['uuid']
        with self._lock(uuid):
            try:
                with self._event(context, uuid, event):
                    notify_instance(context, instance, notify_name, 'start', self.host)
                    try:
                        fn(instance)
                    except Exception as exc:
                        actual = self._power_state(instance)
                        vm = states.ACTIVE if actual == power_state.RUNNING else \
                            instance['vm_state']
                        self._update(uuid, {'task_state': None, 'power_state': actual,
                                            'vm_state': vm},
                                     expected_task_state=expected_task)
                        compute_utils.add_fault(self.db, uuid, exc, self.host)
                        raise
                    inst = self._update(uuid, {'vm_state': vm_state_after, 'task_state': None,
                                               'power_state': self._power_state(instance),
                                               'progress': 0},
                                        expected_task_state=expected_task)
                    notify_instance(context, inst, notify_name, 'end', self.host)
            except Exception as exc:
                LOG.info('%s of %s failed: %s', event, uuid, exc)

    def start_instance(self, context, instance):
        self._power_action(context, instance, 'compute_start_instance', 'power_on',
                           states.POWERING_ON,
                           lambda i: self.driver.power_on(context, i), states.ACTIVE)

    def stop_instance(self, context, instance):
        self._power_action(context, instance, 'compute_stop_instance', 'power_off',
                           states.POWERING_OFF,
                           lambda i: self.driver.power_off(i, timeout=CONF.shutdown_timeout),
                           states.STOPPED)

    def reboot_instance(self, context, instance, reboot_type):
        task = list(states.HARD_REBOOT_TASKS if reboot_type == 'HARD'
                    else states.SOFT_REBOOT_TASKS)
        self._power_action(context, instance, 'compute_reboot_instance', 'reboot', task,
                           lambda i: self.driver.reboot(context, i, reboot_type),
                           states.ACTIVE)

    # ------------------------------------------------------------ delete

    def terminate_instance(self, context, instance):
        uuid = instance['uuid']
        with self._lock(uuid):
            try:
                with self._event(context, uuid, 'compute_terminate_instance'):
                    self._do_terminate(context, instance)
            except Exception as exc:
                LOG.warning('Delete of %s failed: %s', uuid, exc)

    def _do_terminate(self, context, instance):
        uuid = instance['uuid']
        notify_instance(context, instance, 'delete', 'start', self.host)
        try:
            self.driver.destroy(context, instance)
        except Exception as exc:
            compute_utils.add_fault(self.db, uuid, exc, self.host)
            self._update(uuid, {'vm_state': states.ERROR, 'task_state': None})
            raise
        # Pending moves of this instance die with it: their allocations too.
        for mig in self.db.migration_get_all(instance_uuid=uuid):
            if mig['status'] not in states.MIGRATION_DONE:
                self.db.delete_allocations(mig['uuid'])
                self.db.migration_update(mig['uuid'], {'status': 'error'})
        inst = self.db.instance_destroy(uuid)
        notify_instance(context, inst, 'delete', 'end', self.host)
