"""Compute side of resize and cold migration.

prep_resize (destination) -> resize_instance (source) -> finish_resize (destination)
-> VERIFY_RESIZE; then confirm_resize (source) or revert_resize (destination) ->
finish_revert_resize (source). Each step is idempotent enough to be run again by the
start-up reconcile after a crash.
"""

import logging
import time

from novalite import exception
from novalite.compute import states
from novalite.compute import utils as compute_utils
from novalite.conf import CONF
from novalite.db.models import utcnow
from novalite.notifications import notify_instance
from novalite.virt import driver as virt_driver
from novalite.virt import power_state

LOG = logging.getLogger(__name__)

PROGRESS_INTERVAL = 0.25  # seconds between progress writes of a disk copy

_RESIZE_FAULT_ROLLBACK = (virt_driver.ResizeError, exception.ResizeError,
                          exception.UnableToMigrateToSelf)


def _parse_time(value):
    import datetime
    if value is None or isinstance(value, datetime.datetime):
        return value
    return datetime.datetime.fromisoformat(str(value).rstrip('Z'))


class ResizeMixin:
    # ------------------------------------------------------------ helpers

    def _old_vm_state(self, instance):
        return (instance.get('system_metadata') or {}).get('old_vm_state', states.ACTIVE)

    def _restore_source_allocation(self, migration):
        """Give the source allocation held by the migration back to the instance."""
        if self.db.get_allocations(migration['uuid']):
            self.db.move_allocations(migration['uuid'], migration['instance_uuid'])

    def _fail_move(self, context, instance, migration, exc, vm_state=None,
                   expected_task_state=None, restore_host=False):
        """Fail a cold move: migration error, allocations back on the source, instance
        back to ``vm_state`` (its previous state, or ERROR) with a fault."""
        uuid = instance['uuid']
        try:
            self.db.migration_update(migration['uuid'], {'status': 'error'})
        except exception.MigrationNotFound:
            pass
        self._restore_source_allocation(migration)
        values = {'task_state': None, 'new_flavor': None,
                  'vm_state': vm_state or self._old_vm_state(instance)}
        if restore_host:
            values.update(host=migration['source_compute'], node=migration['source_node'])
            if instance.get('old_flavor'):
                values.update(flavor=instance['old_flavor'], old_flavor=None)
        kwargs = {}
        if expected_task_state is not None:
            kwargs['expected_task_state'] = expected_task_state
        # The fault first: whoever sees the state change finds the reason too.
        compute_utils.add_fault(self.db, uuid, exc, self.host)
        try:
            self._update(uuid, values, **kwargs)
        except (exception.InstanceNotFound, exception.UnexpectedTaskStateError):
            LOG.info('Instance %s changed while failing its move', uuid)

    # ------------------------------------------------------------ destination: prep

    def prep_resize(self, context, instance, flavor, migration, request_spec, host_list,
                    image):
        uuid = instance['uuid']
        with self._lock(uuid):
            try:
                with self._event(context, uuid, 'compute_prep_resize'):
                    self._do_prep_resize(context, instance, flavor, migration)
            except Exception as exc:
                self._prep_resize_failed(context, instance, flavor, migration,
                                         request_spec, host_list, exc)

    def _do_prep_resize(self, context, instance, flavor, migration):
        uuid = instance['uuid']
        if self.host == instance['host'] and \
                not self.driver.capabilities.get('supports_same_host_migration'):
            raise exception.UnableToMigrateToSelf(instance_id=uuid, host=self.host)
        notify_instance(context, instance, 'resize_prep', 'start', self.host)
        self.driver.prepare_for_incoming_move(context, instance, flavor)
        sysmeta = dict(instance.get('system_metadata') or {})
        sysmeta['old_vm_state'] = instance['vm_state']
        inst = self._update(uuid, {'new_flavor': flavor, 'system_metadata': sysmeta},
                            expected_task_state=states.RESIZE_PREP)
        resources = self.driver.get_available_resource(migration['dest_node'] or self.host)
        migration = self.db.migration_update(migration['uuid'],
                                             {'dest_host': resources.get('host_ip')})
        notify_instance(context, inst, 'resize_prep', 'end', self.host)
        self.compute_rpcapi.resize_instance(context, migration['source_compute'], inst,
                                            migration, flavor)

    def _prep_resize_failed(self, context, instance, flavor, migration, request_spec,
                            host_list, exc):
        uuid = instance['uuid']
        LOG.info('prep_resize of %s on %s failed: %s', uuid, self.host, exc)
        # Our claim goes; the source allocation stays with the migration for a retry.
        self.db.delete_allocations(uuid, self.rt.node_uuid(migration.get('dest_node')))
        if host_list and not isinstance(exc, exception.UnexpectedTaskStateError):
            self.conductor_api.migrate_server(
                context, uuid, flavor if flavor.get('flavorid') !=
                instance['flavor'].get('flavorid') else None,
                host_list=host_list, migration_uuid=migration['uuid'],
                request_spec=request_spec, reason=str(exc))
            return
        if isinstance(exc, _RESIZE_FAULT_ROLLBACK):
            exc = exception.InstanceFaultRollback(exc)
        self._fail_move(context, instance, migration, exc, vm_state=instance['vm_state'],
                        expected_task_state=states.RESIZE_PREP)

    # ------------------------------------------------------------ source: resize_instance

    def resize_instance(self, context, instance, migration, flavor):
        uuid = instance['uuid']
        with self._lock(uuid):
            try:
                with self._event(context, uuid, 'compute_resize_instance'):
                    self._do_resize_instance(context, instance, migration, flavor)
            except Exception as exc:
                LOG.info('resize_instance of %s failed: %s', uuid, exc)

    def _do_resize_instance(self, context, instance, migration, flavor):
        uuid = instance['uuid']
        migration = self.db.migration_update(migration['uuid'], {'status': 'migrating'},
                                             expected_status=['pre-migrating'])
        instance = self._update(uuid, {'task_state': states.RESIZE_MIGRATING},
                                expected_task_state=states.RESIZE_PREP)
        notify_instance(context, instance, 'resize', 'start', self.host)

        last = [0.0]

        def progress(percent):
            # A fast copy reports many times; the record needs a few updates a second.
            now = time.monotonic()
            if now - last[0] < PROGRESS_INTERVAL or percent >= 100:
                return
            last[0] = now
            try:
                self._update(uuid, {'progress': int(percent)})
            except exception.NovaliteException:
                pass

        try:
            disk_info = self.driver.migrate_disk_and_power_off(
                context, instance, migration['dest_host'] or migration['dest_compute'],
                flavor, progress_callback=progress)
        except _RESIZE_FAULT_ROLLBACK as exc:
            self._fail_move(context, instance, migration, exception.InstanceFaultRollback(exc),
                            expected_task_state=states.RESIZE_MIGRATING)
            self._drop_dest_claim(migration)
            notify_instance(context, instance, 'resize', 'error', self.host, error=str(exc))
            raise
        except Exception as exc:
            self._fail_move(context, instance, migration, exc, vm_state=states.ERROR,
                            expected_task_state=states.RESIZE_MIGRATING)
            self._drop_dest_claim(migration)
            notify_instance(context, instance, 'resize', 'error', self.host, error=str(exc))
            raise
        self._after_disks_moved(context, instance, migration, disk_info)

    def _drop_dest_claim(self, migration):
        """After a failure on the source the instance owns only its source allocation."""
        self._restore_source_allocation(migration)

    def _after_disks_moved(self, context, instance, migration, disk_info):
        uuid = instance['uuid']
        migration = self.db.migration_update(migration['uuid'], {'status': 'post-migrating'})
        inst = self._update(uuid, {'task_state': states.RESIZE_MIGRATED,
                                   'host': migration['dest_compute'],
                                   'node': migration['dest_node'],
                                   'old_flavor': instance['flavor'],
                                   'power_state': power_state.SHUTDOWN},
                            expected_task_state=states.RESIZE_MIGRATING)
        notify_instance(context, inst, 'resize', 'end', self.host)
        self.compute_rpcapi.finish_resize(context, migration['dest_compute'], inst, migration,
                                          disk_info)

    # ------------------------------------------------------------ destination: finish

    def finish_resize(self, context, instance, migration, disk_info):
        uuid = instance['uuid']
        with self._lock(uuid):
            try:
                with self._event(context, uuid, 'compute_finish_resize'):
                    self._do_finish_resize(context, instance, migration, disk_info)
            except Exception as exc:
                LOG.info('finish_resize of %s failed: %s', uuid, exc)

    def _do_finish_resize(self, context, instance, migration, disk_info):
        uuid = instance['uuid']
        new_flavor = instance.get('new_flavor') or instance['flavor']
        resized = new_flavor.get('flavorid') != (instance.get('old_flavor') or
                                                 instance['flavor']).get('flavorid')
        inst = self._update(uuid, {'task_state': states.RESIZE_FINISH, 'flavor': new_flavor},
                            expected_task_state=[states.RESIZE_MIGRATED,
                                                 states.RESIZE_FINISH])
        notify_instance(context, inst, 'resize_finish', 'start', self.host)
        power_on = self._old_vm_state(inst) != states.STOPPED
        image = None
        try:
            if not self.driver.instance_exists(inst):
                self.driver.finish_migration(context, migration, inst, disk_info or {}, image,
                                             resized, power_on=power_on)
        except Exception as exc:
            self.db.migration_update(migration['uuid'], {'status': 'error'})
            compute_utils.add_fault(self.db, uuid, exc, self.host)
            self._update(uuid, {'vm_state': states.ERROR, 'task_state': None})
            notify_instance(context, inst, 'resize_finish', 'error', self.host, error=str(exc))
            raise
        self.db.migration_update(migration['uuid'], {'status': 'finished'})
        inst = self._update(uuid, {'vm_state': states.RESIZED, 'task_state': None,
                                   'power_state': self._power_state(inst),
                                   'launched_at': utcnow(), 'progress': 100},
                            expected_task_state=states.RESIZE_FINISH)
        notify_instance(context, inst, 'resize_finish', 'end', self.host)

    # ------------------------------------------------------------ source: confirm

    def confirm_resize(self, context, instance, migration):
        uuid = instance['uuid']
        with self._lock(uuid):
            with self._event(context, uuid, 'compute_confirm_resize'):
                self._do_confirm_resize(context, instance, migration)

    def _do_confirm_resize(self, context, instance, migration):
        migration = self.db.migration_get(migration['uuid'])
        if migration['status'] == 'confirmed':
            return
        if migration['status'] not in ('finished', 'confirming'):
            LOG.info('Not confirming migration %s in status %s', migration['uuid'],
                     migration['status'])
            return
        instance = self.db.instance_get(instance['uuid'])
        notify_instance(context, instance, 'resize_confirm', 'start', self.host)
        self.driver.confirm_migration(context, migration, instance)
        self.db.delete_allocations(migration['uuid'])
        self.db.migration_update(migration['uuid'], {'status': 'confirmed'})
        vm = states.STOPPED if instance['power_state'] == power_state.SHUTDOWN \
            else states.ACTIVE
        sysmeta = dict(instance.get('system_metadata') or {})
        sysmeta.pop('old_vm_state', None)
        inst = self._update(instance['uuid'], {'vm_state': vm, 'task_state': None,
                                               'old_flavor': None, 'new_flavor': None,
                                               'system_metadata': sysmeta},
                            expected_vm_state=[states.RESIZED])
        notify_instance(context, inst, 'resize_confirm', 'end', self.host)

    # ------------------------------------------------------------ revert

    def revert_resize(self, context, instance, migration):
        """Destination: drop the new guest and our claim, then hand back to the source."""
        uuid = instance['uuid']
        with self._lock(uuid):
            try:
                with self._event(context, uuid, 'compute_revert_resize'):
                    notify_instance(context, instance, 'resize_revert', 'start', self.host)
                    self.driver.destroy(context, instance)
                    if migration['dest_compute'] != migration['source_compute']:
                        self.db.delete_allocations(uuid)
                    migration = self.db.migration_update(migration['uuid'],
                                                         {'status': 'reverted'})
                    self.compute_rpcapi.finish_revert_resize(
                        context, migration['source_compute'], instance, migration)
            except Exception as exc:
                LOG.info('revert_resize of %s failed: %s', uuid, exc)
                self.db.migration_update(migration['uuid'], {'status': 'error'})
                compute_utils.add_fault(self.db, uuid, exc, self.host)
                self._update(uuid, {'vm_state': states.ERROR, 'task_state': None})

    def finish_revert_resize(self, context, instance, migration):
        """Source: restore the old flavor and host, restart the old guest."""
        uuid = instance['uuid']
        with self._lock(uuid):
            try:
                with self._event(context, uuid, 'compute_finish_revert_resize'):
                    self._do_finish_revert(context, instance, migration)
            except Exception as exc:
                LOG.info('finish_revert_resize of %s failed: %s', uuid, exc)
                compute_utils.add_fault(self.db, uuid, exc, self.host)
                self._update(uuid, {'vm_state': states.ERROR, 'task_state': None})

    def _do_finish_revert(self, context, instance, migration):
        uuid = instance['uuid']
        instance = self.db.instance_get(uuid)
        # Same-host: the destination claim is the instance's; replace it with the source.
        self.db.move_allocations(migration['uuid'], uuid)
        old_vm_state = self._old_vm_state(instance)
        power_on = old_vm_state != states.STOPPED
        sysmeta = dict(instance.get('system_metadata') or {})
        sysmeta.pop('old_vm_state', None)
        inst = self._update(uuid, {'flavor': instance.get('old_flavor') or instance['flavor'],
                                   'old_flavor': None, 'new_flavor': None,
                                   'host': migration['source_compute'],
                                   'node': migration['source_node'],
                                   'system_metadata': sysmeta},
                            expected_task_state=states.RESIZE_REVERTING)
        self.driver.finish_revert_migration(context, inst, power_on=power_on)
        inst = self._update(uuid, {'vm_state': old_vm_state if old_vm_state in (
            states.ACTIVE, states.STOPPED) else states.ACTIVE, 'task_state': None,
            'power_state': self._power_state(inst), 'progress': 0},
            expected_task_state=states.RESIZE_REVERTING)
        notify_instance(context, inst, 'resize_revert', 'end', self.host)

    # ------------------------------------------------------------ periodic + restart

    def auto_confirm_resizes(self, context):
        """Confirm finished moves to this host older than resize_confirm_window."""
        window = CONF.resize_confirm_window
        if not window:
            return
        now = utcnow()
        for mig in self.db.migration_get_all(dest_compute=self.host, status='finished'):
            if mig['migration_type'] not in ('resize', 'migration'):
                continue
            updated = _parse_time(mig.get('updated_at') or mig.get('created_at'))
            if updated and (now - updated).total_seconds() < window:
                continue
            try:
                inst = self.db.instance_get(mig['instance_uuid'])
            except exception.InstanceNotFound:
                self.db.migration_update(mig['uuid'], {'status': 'error'})
                continue
            if inst['vm_state'] != states.RESIZED or inst['task_state'] is not None:
                if inst['vm_state'] == states.ERROR or inst['vm_state'] != states.RESIZED:
                    self.db.migration_update(mig['uuid'], {'status': 'error'})
                continue
            try:
                mig = self.db.migration_update(mig['uuid'], {'status': 'confirming'},
                                               expected_status=['finished'])
            except exception.UnexpectedMigrationStatus:
                continue
            LOG.info('Automatically confirming migration %s of %s', mig['uuid'], inst['uuid'])
            self.compute_rpcapi.confirm_resize(context, mig['source_compute'], inst, mig)

    def reconcile_migrations(self, context):
        """At start: finish or roll back every cold move this host was part of."""
        for mig in self.db.migration_get_all(host=self.host):
            # 'reverted' is final for the migration, but the source may still owe the
            # instance its finish_revert_resize.
            if (mig['status'] in states.MIGRATION_DONE and mig['status'] != 'reverted') \
                    or mig['migration_type'] not in ('resize', 'migration'):
                continue
            try:
                self._reconcile_migration(context, mig)
            except Exception:
                LOG.exception('Could not reconcile migration %s', mig['uuid'])

    def _reconcile_migration(self, context, mig):
        try:
            inst = self.db.instance_get(mig['instance_uuid'])
        except exception.InstanceNotFound:
            self.db.delete_allocations(mig['uuid'])
            self.db.migration_update(mig['uuid'], {'status': 'error'})
            return
        status, task = mig['status'], inst['task_state']
        is_source = mig['source_compute'] == self.host
        is_dest = mig['dest_compute'] == self.host
        interrupted = exception.MigrationError(
            reason='the compute service restarted during the move')
        if status == 'pre-migrating' and is_dest and task == states.RESIZE_PREP \
                and mig['dest_compute']:
            # prep_resize died: nothing was moved yet.
            self.db.delete_allocations(inst['uuid'])
            self._fail_move(context, inst, mig, interrupted, vm_state=inst['vm_state'],
                            expected_task_state=states.RESIZE_PREP)
        elif status in ('pre-migrating', 'migrating') and is_source and task in (
                states.RESIZE_PREP, states.RESIZE_MIGRATING):
            # The source died before the disks were handed over: restart the guest here.
            if task == states.RESIZE_MIGRATING or status == 'migrating':
                power_on = self._old_vm_state(inst) != states.STOPPED
                self.driver.finish_revert_migration(context, inst, power_on=power_on)
            self._fail_move(context, inst, mig, interrupted, expected_task_state=task)
            self._update(inst['uuid'], {'power_state': self._power_state(inst)})
        elif status == 'post-migrating' and is_dest and task in (states.RESIZE_MIGRATED,
                                                                  states.RESIZE_FINISH):
            with self._lock(inst['uuid']):
                with self._event(context, inst['uuid'], 'compute_finish_resize'):
                    self._do_finish_resize(context, inst, mig, {})
        elif status == 'post-migrating' and is_source and task == states.RESIZE_MIGRATING:
            self._after_disks_moved(context, inst, mig, {})
        elif status == 'confirming' and is_source:
            self.confirm_resize(context, inst, mig)
        elif status == 'reverting' and is_dest and task == states.RESIZE_REVERTING:
            self.revert_resize(context, inst, mig)
        elif status == 'reverted' and is_source and task == states.RESIZE_REVERTING:
            self.finish_revert_resize(context, inst, mig)
