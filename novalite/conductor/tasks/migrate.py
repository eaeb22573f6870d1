"""Cold migration and resize, conductor side: the migration record, the allocation swap,
the scheduler call with alternates, then prep_resize on the chosen destination.

Flow: create migration (pre-migrating) -> move the source allocation to the migration
-> select (claiming the destination for the instance) -> record the destination -> cast
prep_resize. ``rollback()`` undoes exactly the steps that ran.
"""

import logging

from novalite import exception
from novalite.compute import states
from novalite.compute import utils as compute_utils
from novalite.db import api as db

LOG = logging.getLogger(__name__)


class MigrationTask:
    def __init__(self, manager, context, instance_uuid, flavor, host_list=None,
                 migration_uuid=None, request_spec=None, reason=None):
        self.manager = manager
        self.context = context
        self.instance_uuid = instance_uuid
        self.flavor = flavor
        self.host_list = list(host_list) if host_list is not None else None
        self.migration_uuid = migration_uuid
        self.request_spec = request_spec or db.request_spec_get(instance_uuid) or {}
        self.reason = reason
        self.instance = None
        self.migration = None
        self._moved_source_allocation = False
        self._claimed_dest = False

    @property
    def targeted(self) -> bool:
        return bool((self.request_spec.get('requested_destination') or {}).get('host'))

    def run(self):
        """Execute; on failure roll back and put the instance back where it was."""
        ctx, host = self.context, self.manager.host
        try:
            with compute_utils.event(db, ctx, self.instance_uuid, 'conductor_migrate_server',
                                     host), \
                    compute_utils.event(db, ctx, self.instance_uuid, 'cold_migrate', host):
                self.execute()
        except Exception as exc:
            LOG.info('Migration of %s failed: %s', self.instance_uuid, exc)
            self.rollback(exc)

    def execute(self):
        self.instance = db.instance_get(self.instance_uuid)
        if self.instance['task_state'] != states.RESIZE_PREP:
            raise exception.UnexpectedTaskStateError(
                instance_uuid=self.instance_uuid, expected=states.RESIZE_PREP,
                actual=self.instance['task_state'])
        self._create_or_load_migration()
        self._move_source_allocation()
        selected, alternates = self._select_destination()
        self._record_destination(selected)
        self._cast_prep_resize(selected, alternates)

    def _create_or_load_migration(self):
        inst = self.instance
        if self.migration_uuid:
            self.migration = db.migration_get(self.migration_uuid)
            return
        new_flavor = self.flavor or inst['flavor']
        self.migration = db.migration_create({
            'instance_uuid': inst['uuid'], 'status': 'pre-migrating',
            'migration_type': 'resize' if self.flavor else 'migration',
            'source_compute': inst['host'], 'source_node': inst['node'],
            'old_instance_type_id': inst['flavor'].get('id'),
            'new_instance_type_id': new_flavor.get('id'),
            'user_id': self.context.user_id or inst['user_id'],
            'project_id': self.context.project_id or inst['project_id']})
        self.migration_uuid = self.migration['uuid']

    def _move_source_allocation(self):
        # On a reschedule the migration already holds the source allocation.
        if db.get_allocations(self.migration_uuid):
            return
        db.move_allocations(self.instance_uuid, self.migration_uuid)
        self._moved_source_allocation = True

    def _select_destination(self):
        if self.host_list is not None:
            return self._claim_next_alternate()
        spec = dict(self.request_spec)
        spec['flavor'] = self.flavor or self.instance['flavor']
        selections = self.manager.scheduler_rpcapi.select_destinations(
            self.context, spec, [self.instance_uuid], return_alternates=not self.targeted)
        self._claimed_dest = True
        hosts = selections[0]
        return hosts[0], hosts[1:]

    def _claim_next_alternate(self):
        flavor = self.flavor or self.instance['flavor']
        from novalite.conductor.tasks.build import _resources
        while self.host_list:
            candidate = self.host_list.pop(0)
            try:
                db.claim_resources(self.instance_uuid,
                                   {candidate['compute_node_uuid']: _resources(flavor)},
                                   project_id=self.instance['project_id'],
                                   user_id=self.instance['user_id'], replace=True)
            except (exception.InsufficientResources, exception.ResourceProviderNotFound,
                    exception.ResourceProviderGenerationConflict) as e:
                LOG.info('Alternate %s cannot take %s: %s', candidate['host'],
                         self.instance_uuid, e)
                continue
            self._claimed_dest = True
            return candidate, self.host_list
        raise exception.MaxRetriesExceeded(
            reason=f'Exhausted all hosts available; last failure: {self.reason}')

    def _record_destination(self, selected):
        self.migration = db.migration_update(self.migration_uuid, {
            'dest_compute': selected['host'], 'dest_node': selected['nodename']})

    def _cast_prep_resize(self, selected, alternates):
        image = None
        if self.instance.get('image_ref'):
            try:
                image = db.image_get(self.instance['image_ref'])
            except exception.ImageNotFound:
                image = None
        self.manager.compute_rpcapi.prep_resize(
            self.context, selected['host'], self.instance, self.flavor or
            self.instance['flavor'], self.migration, self.request_spec,
            [] if self.targeted else alternates, image)

    def rollback(self, exc):
        """Undo: drop the destination claim, give the source allocation back to the
        instance, fail the migration, clear the task and record a fault."""
        if self.migration is not None:
            if db.get_allocations(self.migration_uuid):
                # Replaces whatever destination claim the instance got meanwhile.
                db.move_allocations(self.migration_uuid, self.instance_uuid)
            db.migration_update(self.migration_uuid, {'status': 'error'})
        try:
            db.instance_update(self.instance_uuid, {'task_state': None},
                               expected_task_state=[states.RESIZE_PREP])
        except (exception.InstanceNotFound, exception.UnexpectedTaskStateError):
            return
        if isinstance(exc, exception.NoValidHost) and not isinstance(
                exc, exception.MaxRetriesExceeded):
            what = 'resize' if self.flavor else 'cold migrate'
            exc = exception.NoValidHost(
                message=f'No valid host was found. No valid host found for {what}',
                explanation=exc.explanation)
        compute_utils.add_fault(db, self.instance_uuid, exc, self.manager.host)
