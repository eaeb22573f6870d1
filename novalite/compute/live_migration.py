"""Compute side of live migration.

Destination: check_can_live_migrate_destination, pre_live_migration,
post_live_migration_at_destination, rollback_live_migration_at_destination.
Source: check_can_live_migrate_source, live_migration (queued on an executor bounded by
max_concurrent_live_migrations, with progress written into the migration record),
force-complete and abort, and the rollback when the job is cancelled or fails.
"""

import concurrent.futures
import logging
import threading

from novalite import exception
from novalite.compute import states
from novalite.compute import utils as compute_utils
from novalite.conf import CONF
from novalite.notifications import notify_instance
from novalite.virt import driver as virt_driver
from novalite.virt import power_state

LOG = logging.getLogger(__name__)


class _LiveJob:
    """What the source knows of one outgoing live migration."""

    def __init__(self, migration):
        self.migration = migration
        self.job = None
        self.abort_requested = False
        self.force_requested = False
        self.lock = threading.Lock()
        self.future = None
        self.args = None


class LiveMigrationMixin:
    def __init__(self):
        self._live_jobs: dict[str, _LiveJob] = {}
        workers = CONF.max_concurrent_live_migrations or 1000
        self._live_executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=workers, thread_name_prefix=f'live-migration-{self.host}')

    def cleanup_host(self):
        # Stopping past the graceful timeout: hand the guests back to this host (the
        # migrations end cancelled) rather than leave jobs running without a service.
        for state in list(self._live_jobs.values()):
            with state.lock:
                state.abort_requested = True
                if state.job is not None:
                    state.job.abort()
        self._live_executor.shutdown(wait=False, cancel_futures=False)

    def _host_info(self):
        cn = self.rt.compute_nodes or self.rt.update_available_resource()
        return next(iter(cn.values()))

    # ------------------------------------------------------------ pre-checks

    def check_can_live_migrate_destination(self, context, instance, block_migration,
                                           disk_over_commit, migration):
        uuid = instance['uuid']
        with self._event(context, uuid, 'compute_check_can_live_migrate_destination'):
            src = self.db.compute_node_get_by_host_and_node(instance['host'], instance['node'])
            try:
                data = self.driver.check_can_live_migrate_destination(
                    context, instance, src, self._host_info(), block_migration,
                    disk_over_commit)
            except virt_driver.InvalidCPUInfo as e:
                raise exception.InvalidCPUInfo(reason=str(e))
            except virt_driver.VirtDriverError as e:
                raise exception.MigrationPreCheckError(reason=str(e))
            data['dest_host_ip'] = self._host_info().get('host_ip')
            data['dest_node'] = self._host_info().get('hypervisor_hostname')
            return self.compute_rpcapi.check_can_live_migrate_source(
                context, instance['host'], instance, data)

    def check_can_live_migrate_source(self, context, instance, dest_check_data):
        with self._event(context, instance['uuid'], 'compute_check_can_live_migrate_source'):
            try:
                return self.driver.check_can_live_migrate_source(context, instance,
                                                                 dest_check_data)
            except virt_driver.VirtDriverError as e:
                raise exception.MigrationPreCheckError(reason=str(e))

    # ------------------------------------------------------------ destination steps

    def pre_live_migration(self, context, instance, migrate_data):
        with self._event(context, instance['uuid'], 'compute_pre_live_migration'):
            notify_instance(context, instance, 'live_migration_pre', 'start', self.host)
            data = self.driver.pre_live_migration(context, instance, migrate_data)
            notify_instance(context, instance, 'live_migration_pre', 'end', self.host)
            return data

    def post_live_migration_at_destination(self, context, instance, migration, migrate_data):
        uuid = instance['uuid']
        with self._event(context, uuid, 'compute_post_live_migration_at_destination'):
            notify_instance(context, instance, 'live_migration_post_dest', 'start', self.host)
            self.driver.post_live_migration_at_destination(context, instance, migrate_data)
            # The source clears the task once the migration record says completed, so
            # a client never sees the server settled while its migration still runs.
            inst = self._update(uuid, {'host': self.host, 'node': migration['dest_node'],
                                       'power_state': self._power_state(instance)},
                                expected_task_state=states.MIGRATING)
            notify_instance(context, inst, 'live_migration_post_dest', 'end', self.host)
            return inst

    def rollback_live_migration_at_destination(self, context, instance, migrate_data):
        with self._event(context, instance['uuid'],
                         'compute_rollback_live_migration_at_destination'):
            notify_instance(context, instance, 'live_migration_rollback_dest', 'start',
                            self.host)
            self.driver.rollback_live_migration_at_destination(context, instance,
                                                               migrate_data)
            notify_instance(context, instance, 'live_migration_rollback_dest', 'end',
                            self.host)

    # ------------------------------------------------------------ source

    def live_migration(self, context, instance, dest, migration, migrate_data):
        uuid = instance['uuid']
        with self._event(context, uuid, 'compute_live_migration'):
            state = _LiveJob(migration)
            state.args = (context, instance, dest, migrate_data)
            self._live_jobs[uuid] = state
            self.db.migration_update(migration['uuid'], {'status': 'queued'})
            state.future = self._live_executor.submit(self._run_live_migration, context,
                                                      instance, dest, state, migrate_data)

    def _progress_writer(self, migration_uuid, instance_uuid):
        def write(p):
            try:
                self.db.migration_update(migration_uuid, {
                    'memory_total': p['memory_total'], 'memory_processed':
                    p['memory_processed'], 'memory_remaining': p['memory_remaining'],
                    'disk_total': p['disk_total'], 'disk_processed': p['disk_processed'],
                    'disk_remaining': p['disk_remaining']})
                total = (p['memory_total'] or 0) + (p['disk_total'] or 0)
                done = (p['memory_processed'] or 0) + (p['disk_processed'] or 0)
                if total:
                    self._update(instance_uuid, {'progress': min(100, int(done * 100 /
                                                                         total))})
            except exception.NovaliteException:
                pass
        return write

    def _run_live_migration(self, context, instance, dest, state, migrate_data):
        self._enter()
        try:
            self._do_live_migration(context, instance, dest, state, migrate_data)
        except Exception:
            LOG.exception('Live migration of %s failed unexpectedly', instance['uuid'])
        finally:
            self._live_jobs.pop(instance['uuid'], None)
            self._leave()

    def _do_live_migration(self, context, instance, dest, state, migrate_data):
        uuid, mig = instance['uuid'], state.migration
        if state.abort_requested:
            return self._rollback_live_migration(context, instance, dest, mig,
                                                 migrate_data, 'cancelled', dest_ready=False)
        self.db.migration_update(mig['uuid'], {'status': 'preparing'})
        notify_instance(context, instance, 'live_migration_pre', 'start', self.host)
        try:
            migrate_data = self.compute_rpcapi.pre_live_migration(context, dest, instance,
                                                                  migrate_data)
        except Exception as exc:
            compute_utils.add_fault(self.db, uuid, exc, self.host)
            return self._rollback_live_migration(context, instance, dest, mig, migrate_data,
                                                 'error', dest_ready=True)
        block = bool(migrate_data.get('block_migration'))
        migrate_data.update(virt_driver.live_migration_settings(CONF, instance, block))
        with state.lock:
            if state.abort_requested:
                aborted = True
            else:
                aborted = False
                self.db.migration_update(mig['uuid'], {'status': 'running'})
                state.job = self.driver.live_migration(context, instance, dest, migrate_data)
                if state.force_requested:
                    state.job.force_complete()
        if aborted:
            return self._rollback_live_migration(context, instance, dest, mig, migrate_data,
                                                 'cancelled', dest_ready=True)
        try:
            result = state.job.run(self._progress_writer(mig['uuid'], uuid))
        except Exception as exc:
            compute_utils.add_fault(self.db, uuid, exc, self.host)
            self.db.migration_update(mig['uuid'], {'status': 'error'})
            self._rollback_live_migration(context, instance, dest, mig, migrate_data,
                                          'error', dest_ready=True, vm_error=True)
            return
        if result == virt_driver.JOB_COMPLETED:
            try:
                return self._post_live_migration(context, instance, dest, mig, migrate_data)
            except Exception as exc:
                # The guest left this host; where it runs now is uncertain: say so.
                LOG.exception('Post live migration of %s failed', uuid)
                compute_utils.add_fault(self.db, uuid, exc, self.host)
                self.db.migration_update(mig['uuid'], {'status': 'error'})
                try:
                    self._update(uuid, {'vm_state': states.ERROR, 'task_state': None},
                                 expected_task_state=states.MIGRATING)
                except (exception.InstanceNotFound, exception.UnexpectedTaskStateError):
                    pass
                return None
        if state.job.error:
            compute_utils.add_fault(self.db, uuid, exception.MigrationError(
                reason=state.job.error), self.host)
        self._rollback_live_migration(context, instance, dest, mig, migrate_data,
                                      'cancelled' if result == virt_driver.JOB_CANCELLED
                                      else 'failed', dest_ready=True)

    def _post_live_migration(self, context, instance, dest, mig, migrate_data):
        uuid = instance['uuid']
        notify_instance(context, instance, 'live_migration_post', 'start', self.host)
        self.driver.post_live_migration(context, instance, migrate_data)
        self.compute_rpcapi.post_live_migration_at_destination(context, dest, instance, mig,
                                                               migrate_data)
        self.db.delete_allocations(mig['uuid'])
        self.db.migration_update(mig['uuid'], {'status': 'completed'})
        self._update(uuid, {'task_state': None, 'progress': 0},
                     expected_task_state=states.MIGRATING)
        notify_instance(context, instance, 'live_migration_post', 'end', self.host)
        LOG.info('Live migration of %s to %s completed', uuid, dest)

    def _rollback_live_migration(self, context, instance, dest, mig, migrate_data, status,
                                 dest_ready, vm_error=False):
        """The guest stays (or is back) on this host: undo the destination side."""
        uuid = instance['uuid']
        notify_instance(context, instance, 'live_migration_rollback', 'start', self.host)
        if self.db.get_allocations(mig['uuid']):
            self.db.move_allocations(mig['uuid'], uuid)
        if dest_ready:
            self.compute_rpcapi.rollback_live_migration_at_destination(context, dest,
                                                                       instance, migrate_data)
        self.db.migration_update(mig['uuid'], {'status': status})
        values = {'task_state': None, 'progress': 0,
                  'power_state': self._power_state(instance)}
        if vm_error:
            values['vm_state'] = states.ERROR
        try:
            self._update(uuid, values, expected_task_state=states.MIGRATING)
        except (exception.InstanceNotFound, exception.UnexpectedTaskStateError):
            pass
        notify_instance(context, instance, 'live_migration_rollback', 'end', self.host)

    def live_migration_force_complete(self, context, instance, migration):
        with self._event(context, instance['uuid'], 'compute_live_migration_force_complete'):
            notify_instance(context, instance, 'live_migration_force_complete', 'start',
                            self.host)
            state = self._live_jobs.get(instance['uuid'])
            if state is not None:
                with state.lock:
                    state.force_requested = True
                    if state.job is not None:
                        state.job.force_complete()
            notify_instance(context, instance, 'live_migration_force_complete', 'end',
                            self.host)

    def live_migration_abort(self, context, instance, migration):
        with self._event(context, instance['uuid'], 'compute_live_migration_abort'):
            notify_instance(context, instance, 'live_migration_abort', 'start', self.host)
            state = self._live_jobs.get(instance['uuid'])
            if state is not None:
                with state.lock:
                    state.abort_requested = True
                    if state.job is not None:
                        state.job.abort()
                    cancelled_in_queue = state.future is not None and state.future.cancel()
                if cancelled_in_queue:
                    # Never started: nothing on the destination to undo.
                    self._live_jobs.pop(instance['uuid'], None)
                    _, inst, dest, migrate_data = state.args
                    self._rollback_live_migration(context, inst, dest, state.migration,
                                                  migrate_data, 'cancelled', dest_ready=False)
            notify_instance(context, instance, 'live_migration_abort', 'end', self.host)

    # ------------------------------------------------------------ restart

    def reconcile_live_migrations(self, context):
        """At start: a live migration this host was the source of did not survive the
        restart. Keep the guest where it really is and make the records say so."""
        for mig in self.db.migration_get_all(source_compute=self.host,
                                             migration_type='live-migration'):
            if mig['status'] in states.MIGRATION_DONE:
                continue
            try:
                inst = self.db.instance_get(mig['instance_uuid'])
            except exception.InstanceNotFound:
                self.db.delete_allocations(mig['uuid'])
                self.db.migration_update(mig['uuid'], {'status': 'error'})
                continue
            try:
                self._reconcile_live(context, inst, mig)
            except Exception:
                LOG.exception('Could not reconcile live migration %s', mig['uuid'])

    def _reconcile_live(self, context, inst, mig):
        dest = mig['dest_compute']
        if self.driver.instance_exists(inst) or not dest:
            # Still here: roll back; resume a guest the force-complete paused.
            if self.driver.instance_exists(inst) and inst['power_state'] != \
                    power_state.PAUSED and self._power_state(inst) == power_state.PAUSED:
                self.driver.unpause(inst)
            if dest:
                try:
                    self.compute_rpcapi.rollback_live_migration_at_destination(
                        context, dest, inst, {})
                except Exception:
                    LOG.warning('Destination cleanup of %s failed', inst['uuid'])
            if self.db.get_allocations(mig['uuid']):
                self.db.move_allocations(mig['uuid'], inst['uuid'])
            self.db.migration_update(mig['uuid'], {'status': 'error'})
            self._update(inst['uuid'], {'task_state': None, 'progress': 0,
                                        'power_state': self._power_state(inst)})
            compute_utils.add_fault(self.db, inst['uuid'], exception.MigrationError(
                reason='the source compute restarted during the live migration'), self.host)
            return
        # The guest already left: finish on the destination.
        self.compute_rpcapi.post_live_migration_at_destination(context, dest, inst, mig, {})
        self.db.delete_allocations(mig['uuid'])
        self.db.migration_update(mig['uuid'], {'status': 'completed'})
        self._update(inst['uuid'], {'task_state': None, 'progress': 0})
