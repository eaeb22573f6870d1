"""Compute side of resize and cold migration, one flow object per host.

prep_resize (destination) -> resize_instance (source) -> finish_resize (destination)
-> VERIFY_RESIZE; then confirm_resize (source) or revert_resize (destination) ->
finish_revert_resize (source). Each step's whole state change is one ``record_step``
write of the state table (``compute.states``); the hypervisor work in between is
idempotent, so a reconcile can run a step again after a crash.
"""

import logging
import time

from novalite import exception
from novalite.compute import states
from novalite.compute.utils import BackgroundWriter, Hop, fault_record, utcnow
from novalite.conf import CONF
from novalite.notifications import notify_instance
from novalite.virt import driver as virt_driver
from novalite.virt import power_state

LOG = logging.getLogger(__name__)
MS = states.MS

PROGRESS_INTERVAL = 0.25  # seconds between progress writes of a disk copy

_RESIZE_FAULT_ROLLBACK = (virt_driver.ResizeError, exception.ResizeError,
                          exception.UnableToMigrateToSelf)

_INTERRUPTED = 'the compute service restarted during the move'


def _parse_time(value):
    import datetime
    if value is None or isinstance(value, datetime.datetime):
        return value
    return datetime.datetime.fromisoformat(str(value).rstrip('Z'))


def old_vm_state(instance):
    return (instance.get('system_metadata') or {}).get('old_vm_state', states.ACTIVE)



def disk_values(processed, total) -> dict:
    """The migration record's disk counters for ``processed`` of ``total`` bytes."""
    return {'disk_total': int(total), 'disk_processed': int(processed),
            'disk_remaining': max(int(total) - int(processed), 0)}

class ResizeFlow:
    """Runs this host's side of cold moves.

    Uses: ``host`` (this compute's name), ``driver`` (the virt driver), ``conductor``
    (the host's conductor methods), ``conductor_tasks`` (the conductor RPC client, for a
    reschedule), ``computes`` (compute RPC client for the next hop), ``lock``
    (per-instance lock factory) and ``power_state_of`` (the hypervisor's view).
    """

    def __init__(self, host, driver, conductor, conductor_tasks, computes, lock,
                 power_state_of):
        self.host = host
        self.driver = driver
        self.conductor = conductor
        self.conductor_tasks = conductor_tasks
        self.computes = computes
        self.lock = lock
        self.power_state_of = power_state_of

    def _step(self, context, name, instance, migration, **changes):
        return self.conductor.record_step(context, name, instance['uuid'],
                                          migration['uuid'], **changes)

    def _fail(self, context, instance, migration, exc, hop, vm_state, **values):
        """Nothing moved yet: the instance stays on its source (``vm_state``) with a fault,
        the migration in error, the source allocation back with the instance."""
        try:
            return self._step(context, 'move_failed', instance, migration,
                              vm_state=vm_state,
                              instance_values=dict(values, new_flavor=None),
                              fault=fault_record(exc), events=[hop.error(exc)])
        except (exception.InstanceNotFound, exception.UnexpectedTaskStateError,
                exception.UnexpectedMigrationStatus) as e:
            LOG.info('Instance %s changed while failing its move: %s', instance['uuid'], e)

    def _to_error(self, context, step, instance, migration, exc, hop):
        """A step that failed past the point of rolling back: ERROR with a fault."""
        return self._step(context, step, instance, migration, vm_state=states.ERROR,
                          fault=fault_record(exc), events=[hop.error(exc)])

    # ------------------------------------------------------------ destination: prep

    def prep_resize(self, context, instance, flavor, migration, request_spec, host_list):
        hop = Hop(context, 'compute_prep_resize')
        with self.lock(instance['uuid']):
            try:
                out = self._prep(context, instance, flavor, migration, hop)
            except Exception as exc:
                self._prep_failed(context, instance, flavor, migration, request_spec,
                                  host_list, exc, hop)
                return
        notify_instance(context, out['instance'], 'resize_prep', 'end', self.host)
        self.computes.resize_instance(context, migration['source_compute'], out['instance'],
                                      out['migration'], flavor)

    def _prep(self, context, instance, flavor, migration, hop):
        if self.host == instance['host'] and \
                not self.driver.capabilities.get('supports_same_host_migration'):
            raise exception.UnableToMigrateToSelf(instance_id=instance['uuid'],
                                                  host=self.host)
        notify_instance(context, instance, 'resize_prep', 'start', self.host)
        self.driver.prepare_for_incoming_move(context, instance, flavor)
        sysmeta = dict(instance.get('system_metadata') or {})
        sysmeta['old_vm_state'] = instance['vm_state']
        resources = self.driver.get_available_resource(migration['dest_node'] or self.host)
        return self._step(context, 'prep_resize', instance, migration,
                          instance_values={'new_flavor': flavor, 'system_metadata': sysmeta},
                          migration_values={'dest_host': resources.get('host_ip')},
                          events=[hop.ok()])

    def _prep_failed(self, context, instance, flavor, migration, request_spec, host_list,
                     exc, hop):
        uuid = instance['uuid']
        LOG.info('prep_resize of %s on %s failed: %s', uuid, self.host, exc)
        if host_list and not isinstance(exc, exception.UnexpectedTaskStateError):
            # Our claim goes; the source allocation stays with the migration for a retry
            # on the next alternate.
            self.conductor.release_claim(context, uuid, migration.get('dest_node'),
                                         events=[hop.error(exc)])
            self.conductor_tasks.migrate_server(
                context, uuid, flavor if flavor.get('flavorid') !=
                instance['flavor'].get('flavorid') else None,
                host_list=host_list, migration_uuid=migration['uuid'],
                request_spec=request_spec, reason=str(exc))
            return
        if isinstance(exc, _RESIZE_FAULT_ROLLBACK):
            exc = exception.InstanceFaultRollback(exc)
        self._fail(context, instance, migration, exc, hop, instance['vm_state'])

    # ------------------------------------------------------------ source: resize_instance

    def resize_instance(self, context, instance, migration, flavor):
        hop = Hop(context, 'compute_resize_instance')
        with self.lock(instance['uuid']):
            try:
                out = self._step(context, 'resize_instance', instance, migration,
                                 events=[hop.opened()])
            except exception.NovaliteException as exc:
                LOG.info('resize_instance of %s refused: %s', instance['uuid'], exc)
                return
            self._move_disks(context, out['instance'], out['migration'], flavor, hop)

    def _progress(self, instance_uuid, migration_uuid, copied):
        """The disk copy's progress callback: the instance's percent and the migration's
        disk bytes, a few writes a second at most. A copy that ends within the interval
        writes no progress at all (its final figures come with ``disks_moved``); a write
        runs off the copy's thread and never holds it up. ``copied`` keeps the latest
        (processed, total)."""
        last = [time.monotonic()]
        send = BackgroundWriter(
            lambda percent, values: self.conductor.record_progress(
                instance_uuid, progress=percent, migration_uuid=migration_uuid,
                migration_values=values), name=f'progress-{instance_uuid}')

        def write(processed, total):
            copied[:] = [processed, total]
            now = time.monotonic()
            if now - last[0] < PROGRESS_INTERVAL or processed >= total:
                return
            last[0] = now
            send(int(processed * 100 / total) if total else 0, disk_values(processed, total))
        return write

    def _move_disks(self, context, instance, migration, flavor, hop):
        notify_instance(context, instance, 'resize', 'start', self.host)
        copied = []
        try:
            disk_info = self.driver.migrate_disk_and_power_off(
                context, instance, migration['dest_host'] or migration['dest_compute'],
                flavor, progress_callback=self._progress(instance['uuid'],
                                                         migration['uuid'], copied))
        except Exception as exc:
            if isinstance(exc, _RESIZE_FAULT_ROLLBACK):
                self._fail(context, instance, migration, exception.InstanceFaultRollback(exc),
                           hop, old_vm_state(instance))
            else:
                self._fail(context, instance, migration, exc, hop, states.ERROR)
            notify_instance(context, instance, 'resize', 'error', self.host, error=str(exc))
            return
        self._disks_moved(context, instance, migration, disk_info, hop,
                          disk_values(*copied) if copied else None)

    def _disks_moved(self, context, instance, migration, disk_info, hop, copied=None):
        out = self._step(context, 'disks_moved', instance, migration,
                         instance_values={'host': migration['dest_compute'],
                                          'node': migration['dest_node'],
                                          'old_flavor': instance['flavor'],
                                          'power_state': power_state.SHUTDOWN},
                         migration_values=copied, events=[hop.ok()])
        notify_instance(context, out['instance'], 'resize', 'end', self.host)
        self.computes.finish_resize(context, migration['dest_compute'], out['instance'],
                                    out['migration'], disk_info)

    # ------------------------------------------------------------ destination: finish

    def finish_resize(self, context, instance, migration, disk_info):
        hop = Hop(context, 'compute_finish_resize')
        with self.lock(instance['uuid']):
            try:
                self._finish(context, instance, migration, disk_info, hop)
            except exception.NovaliteException as exc:
                LOG.info('finish_resize of %s refused: %s', instance['uuid'], exc)

    def _finish(self, context, instance, migration, disk_info, hop):
        old_flavor = instance.get('old_flavor') or instance['flavor']
        new_flavor = instance.get('new_flavor') or instance['flavor']
        resized = new_flavor.get('flavorid') != old_flavor.get('flavorid')
        inst = dict(instance, flavor=new_flavor, task_state=states.RESIZE_FINISH)
        notify_instance(context, inst, 'resize_finish', 'start', self.host)
        try:
            if not self.driver.instance_exists(inst):
                self.driver.finish_migration(context, migration, inst, disk_info or {}, None,
                                             resized,
                                             power_on=old_vm_state(inst) != states.STOPPED)
        except Exception as exc:
            self._to_error(context, 'finish_failed', instance, migration, exc, hop)
            notify_instance(context, inst, 'resize_finish', 'error', self.host,
                            error=str(exc))
            return
        out = self._step(context, 'finish_resize', instance, migration,
                         vm_state=states.RESIZED,
                         instance_values={'flavor': new_flavor,
                                          'power_state': self.power_state_of(inst),
                                          'launched_at': utcnow().isoformat(),
                                          'progress': 100},
                         events=[hop.ok()])
        notify_instance(context, out['instance'], 'resize_finish', 'end', self.host)

    # ------------------------------------------------------------ source: confirm

    def confirm_resize(self, context, instance, migration):
        hop = Hop(context, 'compute_confirm_resize')
        with self.lock(instance['uuid']):
            if migration['status'] == MS.CONFIRMED:
                return
            notify_instance(context, instance, 'resize_confirm', 'start', self.host)
            try:
                self.driver.confirm_migration(context, migration, instance)
            except Exception as exc:
                LOG.warning('Confirming %s failed: %s', instance['uuid'], exc)
                self._to_error(context, 'confirm_failed', instance, migration, exc, hop)
                return
            vm = states.STOPPED if instance['power_state'] == power_state.SHUTDOWN \
                else states.ACTIVE
            sysmeta = dict(instance.get('system_metadata') or {})
            sysmeta.pop('old_vm_state', None)
            try:
                out = self._step(context, 'confirm_resize', instance, migration, vm_state=vm,
                                 instance_values={'old_flavor': None, 'new_flavor': None,
                                                  'system_metadata': sysmeta},
                                 events=[hop.ok()])
            except exception.UnexpectedMigrationStatus as exc:
                LOG.info('Not confirming %s: %s', instance['uuid'], exc)
                return
        notify_instance(context, out['instance'], 'resize_confirm', 'end', self.host)

    # ------------------------------------------------------------ revert

    def revert_resize(self, context, instance, migration):
        """Destination: drop the new guest and our claim, then hand back to the source."""
        hop = Hop(context, 'compute_revert_resize')
        with self.lock(instance['uuid']):
            try:
                notify_instance(context, instance, 'resize_revert', 'start', self.host)
                self.driver.destroy(context, instance)
                out = self._step(context, 'revert_resize', instance, migration,
                                 events=[hop.ok()])
            except Exception as exc:
                LOG.info('revert_resize of %s failed: %s', instance['uuid'], exc)
                self._to_error(context, 'revert_failed', instance, migration, exc, hop)
                return
        self.computes.finish_revert_resize(context, migration['source_compute'],
                                           out['instance'], out['migration'])

    def finish_revert_resize(self, context, instance, migration):
        """Source: restore the old flavor and host, restart the old guest."""
        hop = Hop(context, 'compute_finish_revert_resize')
        with self.lock(instance['uuid']):
            try:
                out = self._finish_revert(context, instance, migration, hop)
            except Exception as exc:
                LOG.info('finish_revert_resize of %s failed: %s', instance['uuid'], exc)
                self._to_error(context, 'revert_failed', instance, migration, exc, hop)
                return
        notify_instance(context, out['instance'], 'resize_revert', 'end', self.host)

    def _finish_revert(self, context, instance, migration, hop):
        previous = old_vm_state(instance)
        sysmeta = dict(instance.get('system_metadata') or {})
        sysmeta.pop('old_vm_state', None)
        inst = dict(instance, flavor=instance.get('old_flavor') or instance['flavor'],
                    host=migration['source_compute'], node=migration['source_node'])
        self.driver.finish_revert_migration(context, inst,
                                            power_on=previous != states.STOPPED)
        return self._step(
            context, 'finish_revert_resize', instance, migration,
            vm_state=previous if previous in (states.ACTIVE, states.STOPPED)
            else states.ACTIVE,
            instance_values={'flavor': inst['flavor'], 'old_flavor': None,
                             'new_flavor': None, 'host': inst['host'], 'node': inst['node'],
                             'system_metadata': sysmeta,
                             'power_state': self.power_state_of(inst), 'progress': 0},
            events=[hop.ok()])

    # ------------------------------------------------------------ periodic + restart

    def auto_confirm(self, context, migrations):
        """Confirm finished moves to this host older than resize_confirm_window."""
        window = CONF.resize_confirm_window
        if not window:
            return
        now = utcnow()
        for mig in migrations:
            if mig['migration_type'] not in states.COLD_MOVES or \
                    mig['dest_compute'] != self.host or mig['status'] != MS.FINISHED:
                continue
            updated = _parse_time(mig.get('updated_at') or mig.get('created_at'))
            if updated and (now - updated).total_seconds() < window:
                continue
            try:
                out = self.conductor.record_step(context, 'confirm_requested',
                                                 mig['instance_uuid'], mig['uuid'])
            except (exception.UnexpectedMigrationStatus, exception.UnexpectedTaskStateError,
                    exception.InstanceNotFound):
                continue
            LOG.info('Automatically confirming migration %s of %s', mig['uuid'],
                     mig['instance_uuid'])
            self.computes.confirm_resize(context, mig['source_compute'], out['instance'],
                                         out['migration'])

    def reconcile(self, context, mig):
        """At start: finish or roll back a cold move this host was part of."""
        try:
            inst = self.conductor.instance_get(mig['instance_uuid'])
        except exception.InstanceNotFound:
            return
        status, task = mig['status'], inst['task_state']
        is_source = mig['source_compute'] == self.host
        is_dest = mig['dest_compute'] == self.host
        interrupted = exception.MigrationError(reason=_INTERRUPTED)
        hop = Hop(context, 'compute_reconcile_move')
        if status == MS.PRE_MIGRATING and is_dest and task == states.RESIZE_PREP:
            # prep_resize died: nothing was moved yet.
            self._fail(context, inst, mig, interrupted, hop, inst['vm_state'])
        elif status in (MS.PRE_MIGRATING, MS.MIGRATING) and is_source and task in (
                states.RESIZE_PREP, states.RESIZE_MIGRATING):
            # The source died before the disks were handed over: restart the guest here.
            if task == states.RESIZE_MIGRATING or status == MS.MIGRATING:
                self.driver.finish_revert_migration(
                    context, inst, power_on=old_vm_state(inst) != states.STOPPED)
            self._fail(context, inst, mig, interrupted, hop, old_vm_state(inst),
                       power_state=self.power_state_of(inst))
        elif status == MS.POST_MIGRATING and is_dest and task in (states.RESIZE_MIGRATED,
                                                                  states.RESIZE_FINISH):
            self.finish_resize(context, inst, mig, {})
        elif status == MS.CONFIRMING and is_source:
            self.confirm_resize(context, inst, mig)
        elif status == MS.REVERTING and is_dest and task == states.RESIZE_REVERTING:
            self.revert_resize(context, inst, mig)
        elif status == MS.REVERTED and is_source and task == states.RESIZE_REVERTING:
            self.finish_revert_resize(context, inst, mig)
