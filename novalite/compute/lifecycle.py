"""Compute side of a server's own life on this host: build, power actions, delete, and
the reconcile of those after a restart. Each state change is one ``record_step`` write."""

import logging
import threading

from novalite import exception
from novalite.compute import states
from novalite.compute.utils import Hop, fault_record, start_work, utcnow
from novalite.conf import CONF
from novalite.notifications import notify_instance
from novalite.virt import power_state

LOG = logging.getLogger(__name__)


class LifecycleFlow:
    """Builds, powers and deletes guests on this host.

    Uses: ``host``, ``driver``, ``conductor`` (the host's conductor methods),
    ``conductor_tasks`` (the conductor RPC client, for a reschedule), ``lock`` (per-instance
    lock factory), ``power_state_of`` and the service's in-flight accounting.
    """

    def __init__(self, host, driver, conductor, conductor_tasks, lock, power_state_of,
                 enter, leave):
        self.host = host
        self.driver = driver
        self.conductor = conductor
        self.conductor_tasks = conductor_tasks
        self.lock = lock
        self.power_state_of = power_state_of
        self._enter = enter
        self._leave = leave
        self._build_semaphore = threading.BoundedSemaphore(CONF.max_concurrent_builds or
                                                           10**6)
        # Builds this process gave back to the conductor (uuid -> the instance's updated_at
        # then): their requests may still wait in this host's queue.
        self._given_back: dict[str, object] = {}

    def _step(self, context, name, instance_uuid, **changes):
        return self.conductor.record_step(context, name, instance_uuid, **changes)['instance']

    # ------------------------------------------------------------ build

    def build(self, context, instance, image, request_spec, host_list):
        start_work(f'build-{instance["uuid"]}', self._enter, self._leave, self._build_locked,
                   context, instance, image, request_spec, host_list)

    def _build_locked(self, context, instance, image, request_spec, host_list):
        # The instance lock first: a build waiting for a slot is work in progress.
        with self.lock(instance['uuid']), self._build_semaphore:
            self._build(context, instance, image, request_spec, host_list)

    def _build(self, context, instance, image, request_spec, host_list):
        """Spawn on the request alone (the conductor's write that chose this host put the
        instance in SPAWNING), then record the result in one write. A request this host
        must not act on is told by that write, and its guest goes again."""
        uuid = instance['uuid']
        hop = Hop(context, 'compute__do_build_and_run_instance')
        if uuid in self._given_back:
            if self._given_back.pop(uuid) == instance.get('updated_at'):
                LOG.info('Not building %s: this host gave that build back', uuid)
                return
        if self.driver.instance_exists(instance):
            # A repeated request (its first one built the guest, or a restart's reconcile
            # owns what is here): never a second guest, never destroy the first.
            LOG.info('Not building %s: its guest exists on this host already', uuid)
            return
        notify_instance(context, instance, 'create', 'start', self.host)
        try:
            self.driver.spawn(context, instance, image)
        except Exception as exc:
            self._reschedule_or_error(context, instance, image, request_spec, host_list,
                                      exc, hop)
            return
        try:
            instance = self._step(context, 'spawned', uuid, vm_state=states.ACTIVE,
                                  instance_values={'power_state': self.power_state_of(instance),
                                                   'launched_at': utcnow().isoformat(),
                                                   'progress': 0},
                                  events=[hop.ok()])
        except (exception.InstanceNotFound, exception.HostNotAuthorized) as exc:
            # Deleted before or while we spawned, or built elsewhere since this request was
            # sent: the guest here is nobody's.
            LOG.info('Destroying the guest of %s built here: %s', uuid, exc)
            self.driver.destroy(context, instance)
            return
        except exception.UnexpectedTaskStateError:
            # Deleted while spawning: the delete path owns the guest now.
            return
        notify_instance(context, instance, 'create', 'end', self.host)

    def _reschedule_or_error(self, context, instance, image, request_spec, host_list, exc,
                             hop):
        uuid = instance['uuid']
        try:
            self.driver.destroy(context, instance)
        except Exception:
            LOG.warning('Cleanup after failed spawn of %s failed', uuid, exc_info=True)
        try:
            self.conductor.release_claim(context, uuid)
            if host_list or CONF.scheduler.max_attempts > 1:
                # The conductor tries the next alternate, or says the retries ran out.
                self._step(context, 'build_rescheduled', uuid,
                           instance_values={'host': None, 'node': None},
                           events=[hop.error(exc)])
                self.conductor_tasks.build_instances(context, uuid, request_spec, image,
                                                     host_list, reason=str(exc))
                return
            inst = self._step(context, 'spawn_failed', uuid, vm_state=states.ERROR,
                              instance_values={'power_state': power_state.NOSTATE},
                              fault=fault_record(exc), events=[hop.error(exc)])
            notify_instance(context, inst, 'create', 'error', self.host, error=str(exc))
        except (exception.InstanceNotFound, exception.UnexpectedTaskStateError):
            pass

    # ------------------------------------------------------------ power

    def _power_action(self, context, instance, event, notify_name, fn, vm_state_after):
        uuid = instance['uuid']
        hop = Hop(context, event)
        with self.lock(uuid):
            notify_instance(context, instance, notify_name, 'start', self.host)
            try:
                fn(instance)
            except Exception as exc:
                LOG.info('%s of %s failed: %s', event, uuid, exc)
                actual = self.power_state_of(instance)
                vm = states.ACTIVE if actual == power_state.RUNNING else instance['vm_state']
                try:
                    self._step(context, 'power_action_done', uuid, vm_state=vm,
                               instance_values={'power_state': actual},
                               fault=fault_record(exc), events=[hop.error(exc)])
                except exception.NovaliteException:
                    pass
                return
            try:
                inst = self._step(context, 'power_action_done', uuid, vm_state=vm_state_after,
                                  instance_values={'power_state': self.power_state_of(instance),
                                                   'progress': 0},
                                  events=[hop.ok()])
            except exception.NovaliteException as exc:
                LOG.info('%s of %s: %s', event, uuid, exc)
                return
            notify_instance(context, inst, notify_name, 'end', self.host)

    def start(self, context, instance):
        self._power_action(context, instance, 'compute_start_instance', 'power_on',
                           lambda i: self.driver.power_on(context, i), states.ACTIVE)

    def stop(self, context, instance):
        self._power_action(context, instance, 'compute_stop_instance', 'power_off',
                           lambda i: self.driver.power_off(i, timeout=CONF.shutdown_timeout),
                           states.STOPPED)

    def reboot(self, context, instance, reboot_type):
        self._power_action(context, instance, 'compute_reboot_instance', 'reboot',
                           lambda i: self.driver.reboot(context, i, reboot_type),
                           states.ACTIVE)

    # ------------------------------------------------------------ delete

    def terminate(self, context, instance):
        with self.lock(instance['uuid']):
            try:
                self._terminate(context, instance, Hop(context, 'compute_terminate_instance'))
            except Exception as exc:
                LOG.warning('Delete of %s failed: %s', instance['uuid'], exc)

    def _terminate(self, context, instance, hop=None):
        uuid = instance['uuid']
        notify_instance(context, instance, 'delete', 'start', self.host)
        try:
            self.driver.destroy(context, instance)
        except Exception as exc:
            self._step(context, 'delete_failed', uuid, vm_state=states.ERROR,
                       fault=fault_record(exc), events=[hop.error(exc)] if hop else None)
            raise
        # Pending moves of this instance die with it, and their allocations too.
        inst = self.conductor.instance_destroyed(context, uuid,
                                                 events=[hop.ok()] if hop else None)
        notify_instance(context, inst, 'delete', 'end', self.host)

    # ------------------------------------------------------------ restart

    def may_be_queued(self, inst) -> bool:
        """A build this host was chosen for and holds no guest of: its request may still
        wait in this host's queue (the compute writes nothing before it spawns)."""
        return (inst['task_state'] in states.BUILD_TASKS and
                inst['vm_state'] == states.BUILDING and
                not self.driver.instance_exists(inst))

    def reconcile(self, context, inst):
        """Bring one instance on this host out of a transitional state."""
        task = inst['task_state']
        uuid = inst['uuid']
        exists = self.driver.instance_exists(inst)
        if task in states.BUILD_TASKS and inst['vm_state'] == states.BUILDING:
            if exists and self.power_state_of(inst) == power_state.RUNNING:
                self._step(context, 'build_interrupted', uuid, vm_state=states.ACTIVE,
                           instance_values={'power_state': power_state.RUNNING,
                                            'launched_at': utcnow().isoformat()})
            else:
                # Nothing runs here: the build is scheduled again (elsewhere if it can).
                if exists:
                    self.driver.destroy(context, inst)
                self._given_back[uuid] = inst.get('updated_at')
                self._build_elsewhere(context, inst,
                                      'the compute service restarted during the build')
        elif task == states.DELETING:
            self._terminate(context, inst)
        elif task in states.POWER_TASKS:
            actual = self.power_state_of(inst)
            vm = states.ACTIVE if actual == power_state.RUNNING else (
                states.STOPPED if exists else states.ERROR)
            self._step(context, 'power_action_done', uuid, vm_state=vm,
                       instance_values={'power_state': actual})
        elif task is None and inst['vm_state'] in (states.ACTIVE, states.STOPPED):
            self.sync_power_state(inst)

    def _build_elsewhere(self, context, inst, reason):
        """Give a build this host can no longer finish back to the conductor: our claim
        goes, the instance waits for a host again, and the conductor schedules it (this
        host excluded) from its recorded request; ERROR with a fault if that fails."""
        uuid = inst['uuid']
        try:
            self.conductor.release_claim(context, uuid, inst['node'])
            self._step(context, 'build_rescheduled', uuid,
                       instance_values={'host': None, 'node': None})
        except (exception.InstanceNotFound, exception.UnexpectedTaskStateError):
            return
        self.conductor_tasks.build_instances(context, uuid, None, None, [], reason=reason,
                                             failed_host=self.host)

    def sync_power_state(self, inst):
        """Record the hypervisor's power state of an idle instance."""
        actual = self.power_state_of(inst)
        if actual != inst['power_state']:
            try:
                self.conductor.instance_power_synced(inst['uuid'], actual,
                                                     expected_task_state=None)
            except (exception.UnexpectedTaskStateError, exception.InstanceNotFound):
                pass
