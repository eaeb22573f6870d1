"""The conductor's reconciler: every unfinished build and move is driven from what the
database records, never from a message that may have been lost.

Run before the conductor consumes (at start) and every ``conductor.reconcile_interval``
seconds. For each instance with a task or an unfinished migration it reads the step the
work waits for (``states.pending_step``) and who owes it:

- a conductor's step (scheduling, a live migration's pre-checks): taken over when the
  conductor driving it (``instances.task_driver``) is this one but no task of this
  process runs it (this conductor restarted), or has been down longer than
  ``service_down_time``, or nobody ever took it and it is older than
  ``conductor.stuck_operation_timeout`` (a cast that never arrived). Taken over means
  rolled back with a fault: nothing irreversible happens in a conductor's step.
- a compute's step: left to that compute (it reconciles what it owns) while it is up;
  when it has been down longer than ``service_down_time`` the table's recovery runs
  here: roll back what has not moved yet, finish on the side that holds the guest, with
  a fault naming the host and when it was last seen.

Every change is one compare-and-swap step write (``db.steps.apply_step``) on the state
it read, so two conductors never both act on one move: the second one's write fails and
it moves on.
"""

import contextlib
import datetime
import logging
import threading
import time

from novalite import exception, rpc
from novalite.compute import states
from novalite.compute import utils as compute_utils
from novalite.conf import CONF
from novalite.db import api as db
from novalite.db import steps
from novalite.virt import power_state

LOG = logging.getLogger(__name__)
MS = states.MS
COMPUTE = 'novalite-compute'
CONDUCTOR = 'novalite-conductor'
_RACES = (exception.UnexpectedTaskStateError, exception.UnexpectedMigrationStatus,
          exception.InstanceNotFound, exception.MigrationNotFound)


class Driven:
    """The instances whose tasks this conductor process is driving right now."""

    def __init__(self):
        self._counts: dict[str, int] = {}
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def driving(self, instance_uuids):
        uuids = list(instance_uuids)
        with self._lock:
            for u in uuids:
                self._counts[u] = self._counts.get(u, 0) + 1
        try:
            yield
        finally:
            with self._lock:
                for u in uuids:
                    if self._counts.get(u, 0) <= 1:
                        self._counts.pop(u, None)
                    else:
                        self._counts[u] -= 1

    def __contains__(self, instance_uuid) -> bool:
        with self._lock:
            return instance_uuid in self._counts


class Reconciler:
    """One conductor's reconciler; ``driven`` holds the instances this process's tasks
    are driving right now."""

    def __init__(self, host, compute_rpcapi, driven, rebuild=None, answers=None,
                 bus=None):
        self.host = host
        self.compute_rpcapi = compute_rpcapi
        self.driven = driven
        # rebuild(context, instance, request_spec, image): schedule and build again
        self.rebuild = rebuild
        # answers(context, topic, host) -> bool: the service pings back over the bus
        self.answers = answers
        # bus() -> bool: whether the message broker can be reached (a TCP connect)
        self.bus = bus
        self._services = {}
        # Heartbeats are only as good as the database that records them: a host is
        # judged dead only once this process has seen the database working for
        # service_down_time (since its start, or since an outage it noticed).
        self._db_ok_since = None
        self._last_pass = None
        # Heartbeats travel over the bus too. After an outage this process noticed (it
        # could not reach the broker), a live host may need up to the broker driver's
        # longest reconnect back-off to come back: hosts are judged only once the bus
        # has worked for service_down_time plus that.
        self._bus_ok_since = None
        self._bus_grace = 0.0
        self._started_at = None  # the pass before consuming

    # ------------------------------------------------------------ liveness

    def _load_services(self):
        start = time.monotonic()
        self._services = {(s['host'], s['binary']): s for s in db.service_get_all()}
        now = time.monotonic()
        # A read that waited for the database, or a pass that came late (the last
        # one failed), means heartbeats could not be recorded for a while.
        slow = now - start > 2 * CONF.report_interval
        late = self._last_pass is not None and start - self._last_pass > \
            CONF.conductor.reconcile_interval + 2 * CONF.report_interval
        if self._db_ok_since is None or slow or late:
            self._db_ok_since = now
        self._last_pass = now

    def _check_bus(self):
        if self.bus is None:
            return
        if not self.bus():
            if self._bus_ok_since is not None:
                # An outage seen to begin: live hosts may be slow to reconnect after it.
                LOG.warning('The message broker is out of reach: no host is judged dead '
                            'until it has worked again for a while')
                self._bus_grace = rpc.reconnect_back_off()
            self._bus_ok_since = None
        elif self._bus_ok_since is None:
            self._bus_ok_since = time.monotonic()

    def _unreachable(self, context, host, topic='compute') -> bool:
        """A host whose heartbeats stopped is dead only if it does not answer a ping
        while this conductor answers its own: heartbeats lost in a broker outage, or a
        host still finishing a graceful stop, never count."""
        if self.answers is None:
            return True
        if self.answers(context, topic, host):
            return False
        return self.answers(context, 'conductor', self.host)

    def _judging(self) -> bool:
        """Whether heartbeats recorded so far can say a host is dead."""
        now = time.monotonic()
        if self._db_ok_since is None or now - self._db_ok_since < CONF.service_down_time:
            return False
        if self.bus is None:
            return True
        return self._bus_ok_since is not None and \
            now - self._bus_ok_since >= CONF.service_down_time + self._bus_grace

    def _down_since(self, host, binary=COMPUTE):
        """When ``host`` was last seen, if it has been down longer than
        service_down_time; None while it is up (or while heartbeats cannot tell)."""
        if not self._judging():
            return None
        svc = self._services.get((host, binary))
        if svc is None:
            return datetime.datetime.min
        if db.service_is_up(svc, CONF.service_down_time):
            return None
        return compute_utils.as_datetime(svc.get('last_seen_up') or svc.get('updated_at') or
                                         svc.get('created_at')) or datetime.datetime.min

    def conductor_lost(self, host) -> bool:
        """Whether the conductor ``host`` is dead: heartbeats older than
        service_down_time (as of the last pass) and no answer to a ping."""
        return self._down_since(host, CONDUCTOR) is not None and \
            self._unreachable(None, host, 'conductor')

    # ------------------------------------------------------------ the pass

    def run(self, context, at_start=False) -> int:
        if at_start:
            self._started_at = time.monotonic()
        self._load_services()
        self._check_bus()
        fixed = 0
        for inst, mig in steps.unfinished_work():
            try:
                if self._reconcile(context, inst, mig, at_start):
                    fixed += 1
            except _RACES as e:
                LOG.debug('Instance %s moved on while reconciling: %s', inst['uuid'], e)
            except Exception:
                LOG.exception('Could not reconcile instance %s', inst['uuid'])
        if fixed:
            LOG.info('Reconciled %d interrupted operations', fixed)
        return fixed

    def _reconcile(self, context, inst, mig, at_start) -> bool:
        if mig is None and inst['task_state'] not in (states.RESIZE_PREP,):
            return self._instance_task(context, inst, at_start)
        step = states.pending_step(mig, inst)
        if step is None:
            return False
        if step.owner == states.CONDUCTOR:
            if not self._orphaned(inst, mig, at_start):
                return False
            return self._conductor_step_lost(context, inst, mig)
        host = states.owner_host(step, mig, inst)
        since = self._down_since(host)
        if since is None:
            return self._peer_lost(context, inst, mig)
        if not self._unreachable(context, host):
            return False
        return self._owner_lost(context, inst, mig, step, host, since)

    def _orphaned(self, inst, mig, at_start) -> bool:
        driver = inst.get('task_driver')
        if driver == self.host:
            return at_start or inst['uuid'] not in self.driven
        if driver:
            return self.conductor_lost(driver)
        return compute_utils.age(inst, mig) > CONF.conductor.stuck_operation_timeout

    def _fault(self, reason):
        return compute_utils.fault_record(exception.MigrationError(reason=reason))

    @staticmethod
    def _lost(host, since) -> str:
        seen = 'never seen' if since == datetime.datetime.min else \
            f"last seen {since.isoformat(timespec='seconds')}Z"
        return f'compute host {host} is down ({seen})'

    # ------------------------------------------------------------ conductor steps

    def _conductor_step_lost(self, context, inst, mig) -> bool:
        uuid = inst['uuid']
        driver = inst.get('task_driver') or 'no conductor'
        reason = f'the conductor driving it ({driver}) stopped before it finished'
        if mig is None and inst['task_state'] == states.SCHEDULING and self.rebuild:
            # Nothing was built yet: send the build again (the table's RESEND), driven
            # by this conductor from now on. When its conductor died, not before the
            # computes' heartbeats are current again: while no conductor ran none was
            # recorded, and every host would look down to the scheduler.
            if inst.get('task_driver') and self._started_at is not None and \
                    time.monotonic() - self._started_at < 2 * CONF.report_interval:
                LOG.info('Scheduling %s again once the hosts have reported', uuid)
                return False
            if not steps.take_lease([uuid], self.host, [states.SCHEDULING],
                                    previous=inst.get('task_driver'), unplaced=True):
                return False
            spec = dict(db.request_spec_get(uuid) or {}, instance_uuid=uuid,
                        instance_uuids=[uuid], num_instances=1)
            try:
                image = db.image_get(inst['image_ref']) if inst['image_ref'] else None
            except exception.ImageNotFound:
                image = None
            LOG.warning('Scheduling %s again: %s', uuid, reason)
            self.rebuild(context, inst, spec, image)
            return True
        if mig is None and inst['task_state'] == states.SCHEDULING:
            exc = exception.BuildAbortException(instance_uuid=uuid,
                                                reason=f'scheduling was interrupted: {reason}')
            steps.apply_step('scheduling_failed', uuid, vm_state=states.ERROR,
                             fault=compute_utils.fault_record(exc), host=self.host,
                             expected_driver=inst.get('task_driver'))
        elif mig is None:
            # A cold move the API accepted that no conductor ever recorded.
            db.instance_update(uuid, {'task_state': None, 'task_driver': None},
                               expected_task_state=states.RESIZE_PREP,
                               expected_driver=inst.get('task_driver'))
            compute_utils.add_fault(db, uuid, exception.MigrationError(reason=reason),
                                    self.host)
        elif mig['migration_type'] == states.EVACUATION:
            steps.apply_step('evacuation_failed', uuid, mig['uuid'], vm_state=states.ERROR,
                             fault=self._fault(reason), host=self.host,
                             expected_driver=inst.get('task_driver'))
        elif mig['migration_type'] == states.LIVE_MIGRATION:
            steps.apply_step('live_migration_failed', uuid, mig['uuid'],
                             vm_state=inst['vm_state'] if inst['vm_state'] in (
                                 states.ACTIVE, states.PAUSED) else states.ERROR,
                             fault=self._fault(reason), host=self.host,
                             expected_driver=inst.get('task_driver'))
        else:
            steps.apply_step('move_failed', uuid, mig['uuid'],
                             vm_state=inst['vm_state'] if inst['vm_state'] in (
                                 states.ACTIVE, states.STOPPED) else states.ERROR,
                             instance_values={'new_flavor': None},
                             fault=self._fault(reason), host=self.host,
                             expected_driver=inst.get('task_driver'))
        LOG.warning('Rolled back %s of %s: %s', inst['task_state'], uuid, reason)
        return True

    # ------------------------------------------------------------ compute steps

    def _instance_task(self, context, inst, at_start) -> bool:
        """A server's own operation (build, power, delete): no migration record."""
        uuid, task = inst['uuid'], inst['task_state']
        if task == states.SCHEDULING and not inst['host']:
            if not self._orphaned(inst, None, at_start):
                return False
            return self._conductor_step_lost(context, inst, None)
        if not inst['host']:
            return False
        since = self._down_since(inst['host'])
        if since is None or not self._unreachable(context, inst['host']):
            return False
        reason = self._lost(inst['host'], since)
        if task in states.BUILD_TASKS:
            exc = exception.BuildAbortException(instance_uuid=uuid, reason=reason)
            steps.apply_step('build_interrupted', uuid, vm_state=states.ERROR,
                             fault=compute_utils.fault_record(exc), host=self.host)
        elif task == states.DELETING:
            # The host is gone: delete the records; its guest is removed when it is back.
            steps.destroy_instance(uuid, None, self.host)
        elif task in states.POWER_TASKS:
            vm = inst['vm_state'] if inst['vm_state'] in states.step(
                'power_action_done').vm_choices else states.ERROR
            steps.apply_step('power_action_done', uuid, vm_state=vm,
                             fault=self._fault(reason), host=self.host)
        else:
            return False
        LOG.warning('Ended %s of %s: %s', task, uuid, reason)
        return True

    def _owner_lost(self, context, inst, mig, step, host, since) -> bool:
        uuid, mig_uuid = inst['uuid'], mig['uuid']
        reason = self._lost(host, since)
        fault = self._fault(reason)
        name = step.name
        if name in ('prep_resize', 'resize_instance'):
            # Nothing moved yet: the server stays on its source as it was.
            steps.apply_step('move_failed', uuid, mig_uuid,
                             vm_state=inst['vm_state'] if inst['vm_state'] in (
                                 states.ACTIVE, states.STOPPED) else states.ERROR,
                             instance_values={'new_flavor': None}, fault=fault,
                             host=self.host)
        elif name == 'disks_moved':
            # The source died copying: the guest is on the source, in an unknown state.
            steps.apply_step('move_failed', uuid, mig_uuid, vm_state=states.ERROR,
                             instance_values={'new_flavor': None}, fault=fault,
                             host=self.host)
        elif name in ('finish_resize', 'revert_resize'):
            out = steps.apply_step('dest_lost', uuid, mig_uuid, fault=fault, host=self.host)
            if self._down_since(mig['source_compute']) is None:
                self.compute_rpcapi.finish_revert_resize(
                    context, mig['source_compute'], out['instance'], out['migration'])
        elif name == 'confirm_resize':
            sysmeta = dict(inst.get('system_metadata') or {})
            sysmeta.pop('old_vm_state', None)
            vm = states.ACTIVE if inst['power_state'] == 1 else states.STOPPED
            steps.apply_step('confirm_resize', uuid, mig_uuid, vm_state=vm,
                             instance_values={'old_flavor': None, 'new_flavor': None,
                                              'system_metadata': sysmeta},
                             host=self.host)
        elif name == 'finish_revert_resize':
            steps.apply_step('revert_source_lost', uuid, mig_uuid, vm_state=states.ERROR,
                             instance_values={
                                 'host': mig['source_compute'], 'node': mig['source_node'],
                                 'flavor': inst.get('old_flavor') or inst['flavor'],
                                 'old_flavor': None, 'new_flavor': None},
                             fault=fault, host=self.host)
        elif name == 'evacuation_rebuilding':
            # The destination died before it started: the server stays on its source.
            steps.apply_step('evacuation_failed', uuid, mig_uuid, vm_state=states.ERROR,
                             fault=fault, host=self.host)
        elif name == 'evacuation_done':
            # The destination died rebuilding: the server goes back on its source in
            # ERROR, to be evacuated again.
            steps.apply_step('evacuation_rebuild_failed', uuid, mig_uuid,
                             vm_state=states.ERROR,
                             instance_values={'host': mig['source_compute'],
                                              'node': mig['source_node'],
                                              'power_state': power_state.NOSTATE},
                             fault=fault, host=self.host)
        elif name == 'live_migration_queued':
            steps.apply_step('live_migration_failed', uuid, mig_uuid,
                             vm_state=inst['vm_state'] if inst['vm_state'] in (
                                 states.ACTIVE, states.PAUSED) else states.ERROR,
                             fault=fault, host=self.host)
        elif mig['migration_type'] == states.LIVE_MIGRATION and \
                mig['status'] == MS.POST_MIGRATING:
            # The guest already runs on the destination.
            steps.apply_step('live_migration_completed', uuid, mig_uuid,
                             instance_values={'progress': 0, 'host': mig['dest_compute'],
                                              'node': mig['dest_node']},
                             host=self.host)
        elif mig['migration_type'] == states.LIVE_MIGRATION:
            untouched = mig['status'] in (MS.QUEUED, MS.PREPARING)
            steps.apply_step('live_migration_rolled_back', uuid, mig_uuid,
                             status=MS.ERROR,
                             vm_state=None if untouched else states.ERROR,
                             instance_values={'progress': 0}, fault=fault,
                             host=self.host)
        else:
            return False
        LOG.warning('Recovered %s of %s (%s): %s', name, uuid, mig['status'], reason)
        return True

    def _peer_lost(self, context, inst, mig) -> bool:
        """The owner is up but the other host of a live migration is gone: ask the
        source to abort (it rolls back and cleans up)."""
        if mig is None or mig['migration_type'] != states.LIVE_MIGRATION or \
                mig['status'] not in (MS.QUEUED, MS.PREPARING, MS.RUNNING) or \
                not mig.get('dest_compute'):
            return False
        since = self._down_since(mig['dest_compute'])
        if since is None or not self._unreachable(context, mig['dest_compute']):
            return False
        LOG.warning('Asking %s to abort the live migration of %s: %s',
                    mig['source_compute'], inst['uuid'],
                    self._lost(mig['dest_compute'], since))
        self.compute_rpcapi.live_migration_abort(context, mig['source_compute'], inst, mig)
        return False
