"""Cold migration and resize, conductor side: the migration record, the allocation swap,
the scheduler call with alternates, then prep_resize on the chosen destination.

Flow: ``cold_move_started`` (migration created pre-migrating, the source allocation
moved to it, the events opened: one transaction) -> select (the scheduler claims the
destination for the instance) -> ``select_destination`` (the destination recorded, the
events closed: one transaction) -> cast prep_resize. ``rollback()`` undoes exactly what
the database says ran.
"""

import logging

from novalite import exception
from novalite.compute import states
from novalite.compute import utils as compute_utils
from novalite.conductor.tasks.base import Task, claim_next_alternate, take_lease
from novalite.db import api as db
from novalite.db import steps

LOG = logging.getLogger(__name__)
EVENTS = ('conductor_migrate_server', 'cold_migrate')


class MigrationTask(Task):
    def __init__(self, manager, context, instance_uuid, flavor, host_list=None,
                 migration_uuid=None, request_spec=None, reason=None, instance=None):
        super().__init__(manager, context, instance_uuid)
        self.sent_instance = instance  # as the API's step left it: no need to read it
        self.flavor = flavor
        self.host_list = list(host_list) if host_list is not None else None
        self.migration_uuid = migration_uuid
        self.request_spec = request_spec or db.request_spec_get(instance_uuid) or {}
        self.reason = reason
        self.instance = None
        self.migration = None
        self.hops = [compute_utils.Hop(context, name) for name in EVENTS]

    @property
    def targeted(self) -> bool:
        return bool((self.request_spec.get('requested_destination') or {}).get('host'))

    def execute(self):
        self._start_or_load_migration()
        selected, alternates = self._select_destination()
        self._record_destination(selected)
        self._cast_prep_resize(selected, alternates)

    def _start_or_load_migration(self):
        if self.migration_uuid:
            # A reschedule: the migration holds the source allocation already.
            take_lease(self.manager, self.instance_uuid, states.RESIZE_PREP)
            self.migration = db.migration_get(self.migration_uuid)
            self.instance = db.instance_get(self.instance_uuid)
            if self.instance['task_state'] != states.RESIZE_PREP:
                raise exception.UnexpectedTaskStateError(
                    instance_uuid=self.instance_uuid, expected=states.RESIZE_PREP,
                    actual=self.instance['task_state'])
            return
        inst = self.sent_instance or db.instance_get(self.instance_uuid)
        new_flavor = self.flavor or inst['flavor']
        out = steps.apply_step(
            'cold_move_started', self.instance_uuid, new_migration={
                'instance_uuid': inst['uuid'],
                'migration_type': states.RESIZE if self.flavor else states.COLD_MIGRATION,
                'source_compute': inst['host'], 'source_node': inst['node'],
                'old_instance_type_id': inst['flavor'].get('id'),
                'new_instance_type_id': new_flavor.get('id'),
                'user_id': self.context.user_id or inst['user_id'],
                'project_id': self.context.project_id or inst['project_id']},
            events=[hop.opened() for hop in self.hops], host=self.manager.host,
            driver=self.manager.host)
        self.instance, self.migration = out['instance'], out['migration']
        self.migration_uuid = self.migration['uuid']

    def _select_destination(self):
        if self.host_list is not None:
            candidate = claim_next_alternate(self.instance, self.flavor or
                                             self.instance['flavor'], self.host_list)
            if candidate is None:
                raise exception.MaxRetriesExceeded(
                    reason=f'Exhausted all hosts available; last failure: {self.reason}')
            return candidate, self.host_list
        spec = dict(self.request_spec)
        spec['flavor'] = self.flavor or self.instance['flavor']
        selections = self.manager.scheduler_rpcapi.select_destinations(
            self.context, spec, [self.instance_uuid], return_alternates=not self.targeted)
        hosts = selections[0]
        return hosts[0], hosts[1:]

    def _record_destination(self, selected):
        out = steps.apply_step(
            'select_destination', self.instance_uuid, self.migration_uuid,
            migration_values={'dest_compute': selected['host'],
                              'dest_node': selected['nodename']},
            events=[hop.ok() for hop in self.hops], host=self.manager.host, driver=None)
        self.instance, self.migration = out['instance'], out['migration']

    def _cast_prep_resize(self, selected, alternates):
        self.manager.compute_rpcapi.prep_resize(
            self.context, selected['host'], self.instance, self.flavor or
            self.instance['flavor'], self.migration, self.request_spec,
            [] if self.targeted else alternates)

    def rollback(self, exc):
        """Undo in one transaction: the source allocation back to the instance (replacing
        any destination claim), the migration in error, the task cleared, a fault and the
        events closed."""
        if isinstance(exc, exception.NoValidHost) and not isinstance(
                exc, exception.MaxRetriesExceeded):
            what = 'resize' if self.flavor else 'cold migrate'
            exc = exception.NoValidHost(
                message=f'No valid host was found. No valid host found for {what}',
                explanation=exc.explanation)
        if self.migration is None:
            # Nothing was recorded: the instance only holds its task.
            try:
                db.instance_update(self.instance_uuid, {'task_state': None},
                                   expected_task_state=[states.RESIZE_PREP])
            except (exception.InstanceNotFound, exception.UnexpectedTaskStateError):
                return
            compute_utils.add_fault(db, self.instance_uuid, exc, self.manager.host)
            return
        try:
            steps.apply_step('move_failed', self.instance_uuid, self.migration_uuid,
                             vm_state=(self.instance or {}).get('vm_state') or states.ACTIVE,
                             fault=compute_utils.fault_record(exc),
                             events=[hop.error(exc) for hop in self.hops],
                             host=self.manager.host)
        except (exception.InstanceNotFound, exception.UnexpectedTaskStateError,
                exception.UnexpectedMigrationStatus) as e:
            LOG.info('Instance %s changed while rolling back its move: %s',
                     self.instance_uuid, e)
