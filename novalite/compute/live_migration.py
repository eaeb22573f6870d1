"""Compute side of live migration, one flow object per host.

Destination: check_can_live_migrate_destination, pre_live_migration,
post_live_migration_at_destination, rollback_live_migration_at_destination.
Source: check_can_live_migrate_source, live_migration (queued on an executor bounded by
max_concurrent_live_migrations, with progress written into the migration record),
force-complete and abort, and the rollback when the job is cancelled or fails.

Each state change is one ``record_step`` write of the state table. Steps that change no
state (pre-checks, pre_live_migration, the destination's rollback) return their action
events to the caller, which writes them with its own next step.
"""

import concurrent.futures
import logging
import threading
import time

from novalite import exception
from novalite.compute import states
from novalite.compute.utils import BackgroundWriter, Hop, OrderedWriter, fault_record
from novalite.conf import CONF
from novalite.notifications import notify_instance
from novalite.virt import driver as virt_driver
from novalite.virt import power_state

LOG = logging.getLogger(__name__)
MS = states.MS

PROGRESS_INTERVAL = 0.25  # seconds between progress writes
DECISIONS_FLUSH_TIMEOUT = 10  # seconds the end of a job waits for its decisions' write
EVENTS = '_events'  # key of the events a no-state step hands back in its result


class _LiveJob:
    """What the source knows of one outgoing live migration."""

    def __init__(self, migration, args):
        self.migration = migration
        self.args = args
        self.job = None
        self.abort_requested = False
        self.force_requested = False
        self.lock = threading.Lock()
        self.future = None
        self.prepared = False   # its first step recorded it preparing (started at once)


def _with_event(result: dict, hop: Hop, exc=None) -> dict:
    result = dict(result or {})
    result[EVENTS] = list(result.get(EVENTS) or []) + [hop.error(exc) if exc else hop.ok()]
    return result


class LiveMigrationFlow:
    """Runs this host's side of live migrations.

    Uses: ``host``, ``driver``, ``conductor`` (the host's conductor methods),
    ``computes`` (compute RPC client for the peer), ``host_info`` (this node's record),
    ``power_state_of`` and the service's in-flight accounting ``enter``/``leave``.
    """

    def __init__(self, host, driver, conductor, computes, host_info, power_state_of,
                 enter, leave):
        self.host = host
        self.driver = driver
        self.conductor = conductor
        self.computes = computes
        self.host_info = host_info
        self.power_state_of = power_state_of
        self._enter = enter
        self._leave = leave
        self._jobs: dict[str, _LiveJob] = {}
        self._workers = CONF.max_concurrent_live_migrations or 1000
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=self._workers, thread_name_prefix=f'live-migration-{host}')
        # Jobs being handed to the executor (their first step not written yet): with
        # the jobs it holds, what decides whether a new one starts at once.
        self._admitting = 0
        self._admit_lock = threading.Lock()

    def stop(self):
        # Stopping past the graceful timeout: hand the guests back to this host (the
        # migrations end cancelled) rather than leave jobs running without a service.
        for state in list(self._jobs.values()):
            with state.lock:
                state.abort_requested = True
                if state.job is not None:
                    state.job.abort()
        self._executor.shutdown(wait=False, cancel_futures=False)

    def running(self, instance_uuid) -> bool:
        """A live migration of the instance is queued or running on this host."""
        return instance_uuid in self._jobs

    def _step(self, context, name, instance, migration, **changes):
        return self.conductor.record_step(context, name, instance['uuid'],
                                          migration['uuid'], **changes)

    # ------------------------------------------------------------ pre-checks

    def check_can_live_migrate_destination(self, context, instance, block_migration,
                                           disk_over_commit, migration, source_node):
        hop = Hop(context, 'compute_check_can_live_migrate_destination')
        src = source_node
        info = self.host_info()
        try:
            data = self.driver.check_can_live_migrate_destination(
                context, instance, src, info, block_migration, disk_over_commit)
        except virt_driver.InvalidCPUInfo as e:
            raise exception.InvalidCPUInfo(reason=str(e))
        except virt_driver.VirtDriverError as e:
            raise exception.MigrationPreCheckError(reason=str(e))
        data['dest_host_ip'] = info.get('host_ip')
        data['dest_node'] = info.get('hypervisor_hostname')
        data = self.computes.check_can_live_migrate_source(context, instance['host'],
                                                           instance, data)
        return _with_event(data, hop)

    def check_can_live_migrate_source(self, context, instance, dest_check_data):
        hop = Hop(context, 'compute_check_can_live_migrate_source')
        try:
            data = self.driver.check_can_live_migrate_source(context, instance,
                                                             dest_check_data)
        except virt_driver.VirtDriverError as e:
            raise exception.MigrationPreCheckError(reason=str(e))
        return _with_event(data, hop)

    # ------------------------------------------------------------ destination steps

    def pre_live_migration(self, context, instance, migrate_data):
        hop = Hop(context, 'compute_pre_live_migration')
        notify_instance(context, instance, 'live_migration_pre', 'start', self.host)
        data = self.driver.pre_live_migration(context, instance, migrate_data)
        notify_instance(context, instance, 'live_migration_pre', 'end', self.host)
        return _with_event(data, hop)

    def post_live_migration_at_destination(self, context, instance, migration, migrate_data):
        hop = Hop(context, 'compute_post_live_migration_at_destination')
        notify_instance(context, instance, 'live_migration_post_dest', 'start', self.host)
        self.driver.post_live_migration_at_destination(context, instance, migrate_data)
        # The source clears the task once the migration record says completed, so
        # a client never sees the server settled while its migration still runs.
        out = self._step(context, 'post_live_migration_at_destination', instance, migration,
                         instance_values={'host': self.host, 'node': migration['dest_node'],
                                          'power_state': self.power_state_of(instance)},
                         events=[hop.ok()])
        notify_instance(context, out['instance'], 'live_migration_post_dest', 'end',
                        self.host)
        return out['instance']

    def rollback_live_migration_at_destination(self, context, instance, migrate_data):
        hop = Hop(context, 'compute_rollback_live_migration_at_destination')
        notify_instance(context, instance, 'live_migration_rollback_dest', 'start', self.host)
        self.driver.rollback_live_migration_at_destination(context, instance, migrate_data)
        notify_instance(context, instance, 'live_migration_rollback_dest', 'end', self.host)
        return _with_event({}, hop)

    # ------------------------------------------------------------ source

    def live_migration(self, context, instance, dest, migration, migrate_data):
        """Queue the job; with a free slot on the executor it starts at once, and its
        first step records it preparing (one write, not queued then preparing)."""
        hop = Hop(context, 'compute_live_migration')
        with self._admit_lock:
            at_once = self._admitting + len(self._jobs) < self._workers
            self._admitting += 1
        try:
            out = self._step(context, 'live_migration_preparing' if at_once
                             else 'live_migration_queued', instance, migration,
                             events=[hop.ok()])
            state = _LiveJob(out['migration'], (context, instance, dest, migrate_data))
            state.prepared = at_once
            self._jobs[instance['uuid']] = state
        finally:
            with self._admit_lock:
                self._admitting -= 1
        state.future = self._executor.submit(self._run, context, instance, dest, state,
                                             migrate_data)

    def _progress_writer(self, migration_uuid, instance_uuid):
        # A few writes a second at most; a migration that ends within the interval
        # writes none (its final figures come with the completion). A write runs off
        # the job's thread and never holds the job up.
        last = [time.monotonic()]
        send = BackgroundWriter(
            lambda progress, values: self.conductor.record_progress(
                instance_uuid, progress=progress, migration_uuid=migration_uuid,
                migration_values=values), name=f'progress-{instance_uuid}')

        def write(p):
            now = time.monotonic()
            if now - last[0] < PROGRESS_INTERVAL:
                return
            last[0] = now
            total = (p['memory_total'] or 0) + (p['disk_total'] or 0)
            done = (p['memory_processed'] or 0) + (p['disk_processed'] or 0)
            send(min(100, int(done * 100 / total)) if total else None,
                 {k: p[k] for k in ('memory_total', 'memory_processed', 'memory_remaining',
                                    'disk_total', 'disk_processed', 'disk_remaining')})
        return write

    def _decision_writer(self, migration_uuid, instance_uuid):
        """The job's policy decisions go to the migration's policy_log, in order, off
        the job's thread."""
        return OrderedWriter(
            lambda entries: self.conductor.record_progress(
                instance_uuid, migration_uuid=migration_uuid, decisions=entries),
            name=f'decisions-{instance_uuid}')

    def _run(self, context, instance, dest, state, migrate_data):
        self._enter()
        try:
            self._migrate(context, instance, dest, state, migrate_data)
        except Exception:
            LOG.exception('Live migration of %s failed unexpectedly', instance['uuid'])
        finally:
            self._jobs.pop(instance['uuid'], None)
            self._leave()

    def _migrate(self, context, instance, dest, state, migrate_data):
        mig = state.migration
        if state.abort_requested:
            return self._rollback(context, instance, dest, mig, migrate_data, MS.CANCELLED,
                                  dest_ready=False)
        if not state.prepared:
            mig = self._step(context, 'live_migration_preparing', instance, mig)['migration']
        notify_instance(context, instance, 'live_migration_pre', 'start', self.host)
        pre_hop = Hop(context, 'compute_pre_live_migration')
        # The settings of the migration's policy, as the conductor resolved it.
        policy = {k: migrate_data[k] for k in virt_driver.POLICY_KEYS if k in migrate_data}
        try:
            migrate_data = self.computes.pre_live_migration(context, dest, instance,
                                                            migrate_data)
        except Exception as exc:
            # The destination failed before it could hand back its event: record it here.
            return self._rollback(context, instance, dest, mig, migrate_data, MS.ERROR,
                                  dest_ready=True, exc=exc, events=[pre_hop.error(exc)])
        events = migrate_data.pop(EVENTS, [])
        if policy.get('policy'):
            migrate_data.update(policy)
        else:
            # A conductor that chose no policy: the [libvirt] options of this host.
            block = bool(migrate_data.get('block_migration'))
            migrate_data.update(virt_driver.live_migration_settings(CONF, instance, block))
        with state.lock:
            aborted = state.abort_requested
            if not aborted:
                mig = self._step(context, 'live_migration_running', instance, mig,
                                 events=events)['migration']
                state.job = self.driver.live_migration(context, instance, dest, migrate_data)
                state.job.on_decision = decisions = self._decision_writer(
                    mig['uuid'], instance['uuid'])
                if state.force_requested:
                    state.job.force_complete()
        if aborted:
            return self._rollback(context, instance, dest, mig, migrate_data, MS.CANCELLED,
                                  dest_ready=True, events=events)
        try:
            result = state.job.run(self._progress_writer(mig['uuid'], instance['uuid']))
        except Exception as exc:
            decisions.flush(DECISIONS_FLUSH_TIMEOUT)
            return self._rollback(context, instance, dest, mig, migrate_data, MS.ERROR,
                                  dest_ready=True, exc=exc, vm_error=True)
        # The policy's decisions are in the record before the move's final step.
        decisions.flush(DECISIONS_FLUSH_TIMEOUT)
        if result == virt_driver.JOB_COMPLETED:
            return self._post(context, instance, dest, mig, migrate_data)
        exc = exception.MigrationError(reason=state.job.error) if state.job.error else None
        self._rollback(context, instance, dest, mig, migrate_data,
                       MS.CANCELLED if result == virt_driver.JOB_CANCELLED else MS.FAILED,
                       dest_ready=True, exc=exc)

    def _post(self, context, instance, dest, mig, migrate_data):
        uuid = instance['uuid']
        notify_instance(context, instance, 'live_migration_post', 'start', self.host)
        try:
            self.driver.post_live_migration(context, instance, migrate_data)
            self.computes.post_live_migration_at_destination(context, dest, instance, mig,
                                                             migrate_data)
            self._step(context, 'live_migration_completed', instance, mig,
                       instance_values={'progress': 0})
        except Exception as exc:
            # The copy completed: the guest runs on the destination now (or died with
            # it), not here. Record it there, in ERROR, with what went wrong.
            LOG.exception('Post live migration of %s failed', uuid)
            try:
                self._step(context, 'live_post_failed', instance, mig, vm_state=states.ERROR,
                           instance_values={'host': mig['dest_compute'],
                                            'node': mig['dest_node'], 'progress': 0},
                           fault=fault_record(exc))
            except exception.NovaliteException:
                pass
            return
        notify_instance(context, instance, 'live_migration_post', 'end', self.host)
        LOG.info('Live migration of %s to %s completed', uuid, dest)

    def _rollback(self, context, instance, dest, mig, migrate_data, status, dest_ready,
                  exc=None, vm_error=False, events=()):
        """The guest stays (or is back) on this host: undo the destination side, then
        one write puts the records back."""
        notify_instance(context, instance, 'live_migration_rollback', 'start', self.host)
        events = list(events)
        if dest_ready:
            try:
                events += self.computes.rollback_live_migration_at_destination(
                    context, dest, instance, migrate_data).get(EVENTS, [])
            except Exception:
                LOG.warning('Destination cleanup of %s on %s failed', instance['uuid'], dest,
                            exc_info=True)
        try:
            self._step(context, 'live_migration_rolled_back', instance, mig, status=status,
                       vm_state=states.ERROR if vm_error else None,
                       instance_values={'progress': 0,
                                        'power_state': self.power_state_of(instance)},
                       fault=fault_record(exc) if exc is not None else None, events=events)
        except (exception.InstanceNotFound, exception.UnexpectedTaskStateError,
                exception.UnexpectedMigrationStatus) as e:
            LOG.info('Instance %s changed during the rollback: %s', instance['uuid'], e)
        notify_instance(context, instance, 'live_migration_rollback', 'end', self.host)

    def force_complete(self, context, instance, migration):
        hop = Hop(context, 'compute_live_migration_force_complete')
        notify_instance(context, instance, 'live_migration_force_complete', 'start',
                        self.host)
        state = self._jobs.get(instance['uuid'])
        if state is not None:
            with state.lock:
                state.force_requested = True
                if state.job is not None:
                    state.job.force_complete()
        self.conductor.record_events(context, instance['uuid'], [hop.ok()])
        notify_instance(context, instance, 'live_migration_force_complete', 'end', self.host)

    def abort(self, context, instance, migration):
        hop = Hop(context, 'compute_live_migration_abort')
        notify_instance(context, instance, 'live_migration_abort', 'start', self.host)
        state = self._jobs.get(instance['uuid'])
        cancelled_in_queue = False
        if state is not None:
            with state.lock:
                state.abort_requested = True
                if state.job is not None:
                    state.job.abort()
                cancelled_in_queue = state.future is not None and state.future.cancel()
        if cancelled_in_queue:
            # Never started: nothing on the destination to undo.
            self._jobs.pop(instance['uuid'], None)
            _, inst, dest, migrate_data = state.args
            self._rollback(context, inst, dest, state.migration, migrate_data, MS.CANCELLED,
                           dest_ready=False, events=[hop.ok()])
        else:
            self.conductor.record_events(context, instance['uuid'], [hop.ok()])
        notify_instance(context, instance, 'live_migration_abort', 'end', self.host)

    # ------------------------------------------------------------ restart

    def reconcile(self, context, mig):
        """At start: a live migration this host was the source of did not survive the
        restart. Keep the guest where it really is and make the records say so."""
        if mig['source_compute'] != self.host:
            return
        try:
            inst = self.conductor.instance_get(mig['instance_uuid'])
        except exception.InstanceNotFound:
            return
        dest = mig['dest_compute']
        here = self.driver.instance_exists(inst)
        if not here and dest:
            # The guest already left: finish on the destination.
            if mig['status'] != MS.POST_MIGRATING:
                self.computes.post_live_migration_at_destination(context, dest, inst, mig, {})
            self._step(context, 'live_migration_completed', inst, mig,
                       instance_values={'progress': 0})
            return
        # Still here: roll back; resume a guest the force-complete paused.
        if here and inst['power_state'] != power_state.PAUSED and \
                self.power_state_of(inst) == power_state.PAUSED:
            self.driver.unpause(inst)
        events = []
        if dest:
            try:
                events = self.computes.rollback_live_migration_at_destination(
                    context, dest, inst, {}).get(EVENTS, [])
            except Exception:
                LOG.warning('Destination cleanup of %s failed', inst['uuid'])
        self._step(context, 'live_migration_rolled_back', inst, mig, status=MS.ERROR,
                   instance_values={'progress': 0, 'power_state': self.power_state_of(inst)},
                   fault=fault_record(exception.MigrationError(
                       reason='the source compute restarted during the live migration')),
                   events=events)
