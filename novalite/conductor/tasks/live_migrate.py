"""Live migration, conductor side: checks, destination choice (named or scheduled, with
retries), the destination/source pre-checks, then the hand-off to the source compute.

``rollback()`` gives the source allocation back to the instance, fails the migration
record and clears the task; the guest never left the source at this stage.
"""

import logging

from novalite import exception
from novalite.compute import states
from novalite.compute import utils as compute_utils
from novalite.conf import CONF
from novalite.db import api as db
from novalite.virt import power_state

LOG = logging.getLogger(__name__)

# Pre-check failures that make the task try another host (scheduled case) or fail with
# a 400 (synchronous API calls), as opposed to unexpected errors.
EXPECTED = (exception.NoValidHost, exception.ComputeHostNotFound,
            exception.ComputeServiceUnavailable, exception.InvalidHypervisorType,
            exception.InvalidCPUInfo, exception.UnableToMigrateToSelf,
            exception.DestinationHypervisorTooOld, exception.MigrationPreCheckError,
            exception.InstanceInvalidState, exception.InsufficientResources)


class LiveMigrationTask:
    def __init__(self, manager, context, instance_uuid, host, block_migration,
                 disk_over_commit, force, migration_uuid):
        self.manager = manager
        self.context = context
        self.instance_uuid = instance_uuid
        self.host = host
        self.block_migration = block_migration
        self.disk_over_commit = disk_over_commit
        self.force = force
        self.migration_uuid = migration_uuid
        self.instance = None
        self.migration = None
        self.source_node = None

    def run(self):
        ctx = self.context
        try:
            with compute_utils.event(db, ctx, self.instance_uuid,
                                     'conductor_live_migrate_instance', self.manager.host):
                return self.execute()
        except Exception as exc:
            LOG.info('Live migration of %s failed before it started: %s',
                     self.instance_uuid, exc)
            self.rollback(exc)
            if isinstance(exc, EXPECTED):
                raise
            raise exception.MigrationError(reason=str(exc))

    def execute(self):
        self.instance = inst = db.instance_get(self.instance_uuid)
        self.migration = db.migration_get(self.migration_uuid)
        if inst['power_state'] not in (power_state.RUNNING, power_state.PAUSED):
            raise exception.InstanceInvalidState(
                action='live_migrate', instance_uuid=inst['uuid'], attr='power_state',
                state=inst['power_state'])
        source = inst['host']
        self.source_node = db.compute_node_get_by_host_and_node(source, inst['node'])
        if not self._service_up(source):
            raise exception.ComputeServiceUnavailable(host=source)
        self._move_source_allocation()
        if self.host and self.force:
            dest, dest_node, migrate_data = self._check_forced_destination()
        else:
            dest, dest_node, migrate_data = self._find_destination()
        self.migration = db.migration_update(self.migration_uuid, {
            'source_node': inst['node'], 'dest_compute': dest, 'dest_node': dest_node,
            'dest_host': migrate_data.get('dest_host_ip')})
        self.manager.compute_rpcapi.live_migration(self.context, source, inst, dest,
                                                   self.migration, migrate_data)
        return {'dest': dest, 'migration_uuid': self.migration_uuid}

    def _service_up(self, host):
        svcs = db.service_get_all(host=host, binary='novalite-compute')
        return bool(svcs) and db.service_is_up(svcs[0], CONF.service_down_time)

    def _move_source_allocation(self):
        if not db.get_allocations(self.migration_uuid):
            db.move_allocations(self.instance_uuid, self.migration_uuid)

    def _check_dest_basics(self, dest_node):
        src = self.source_node
        if dest_node['host'] == self.instance['host']:
            raise exception.UnableToMigrateToSelf(instance_id=self.instance_uuid,
                                                  host=dest_node['host'])
        if not self._service_up(dest_node['host']):
            raise exception.ComputeServiceUnavailable(host=dest_node['host'])
        if dest_node['hypervisor_type'] != src['hypervisor_type']:
            raise exception.InvalidHypervisorType()
        if (dest_node['hypervisor_version'] or 0) < (src['hypervisor_version'] or 0):
            raise exception.DestinationHypervisorTooOld()

    def _claim(self, dest_node):
        from novalite.conductor.tasks.build import _resources
        try:
            db.claim_resources(self.instance_uuid,
                               {dest_node['uuid']: _resources(self.instance['flavor'])},
                               project_id=self.instance['project_id'],
                               user_id=self.instance['user_id'], replace=True)
        except exception.InsufficientResources as e:
            raise exception.MigrationPreCheckError(
                reason=f"Unable to migrate {self.instance_uuid} to {dest_node['host']}: {e}")

    def _pre_checks(self, dest_node):
        """The destination checks itself and asks the source (both over RPC)."""
        return self.manager.compute_rpcapi.check_can_live_migrate_destination(
            self.context, dest_node['host'], self.instance, self.block_migration,
            self.disk_over_commit, self.migration)

    def _check_forced_destination(self):
        dest_node = db.compute_node_get_by_host_and_node(self.host)
        self._check_dest_basics(dest_node)
        self._claim(dest_node)
        migrate_data = self._pre_checks(dest_node)
        return dest_node['host'], dest_node['hypervisor_hostname'], migrate_data

    def _find_destination(self):
        spec = db.request_spec_get(self.instance_uuid) or {}
        spec = dict(spec, instance_uuid=self.instance_uuid, flavor=self.instance['flavor'],
                    num_instances=1, instance_uuids=[self.instance_uuid], force_hosts=[],
                    force_nodes=[],
                    requested_destination={'host': self.host, 'node': None}
                    if self.host else None)
        tried = [self.instance['host']]
        retries = CONF.migrate_max_retries
        attempt = 0
        last_error = None
        while True:
            spec['ignore_hosts'] = list(tried)
            try:
                selection = self.manager.scheduler_rpcapi.select_destinations(
                    self.context, spec, [self.instance_uuid], return_alternates=False)[0][0]
            except exception.NoValidHost as e:
                if last_error is not None:
                    raise exception.MigrationPreCheckError(
                        reason=f'No host passed the live-migration checks; last: {last_error}')
                raise e
            dest_node = db.compute_node_get_by_host_and_node(selection['host'],
                                                             selection['nodename'])
            try:
                self._check_dest_basics(dest_node)
                migrate_data = self._pre_checks(dest_node)
                return dest_node['host'], dest_node['hypervisor_hostname'], migrate_data
            except EXPECTED as e:
                if self.host:
                    raise
                LOG.info('Destination %s refused live migration of %s: %s',
                         dest_node['host'], self.instance_uuid, e)
                last_error = e
                db.delete_allocations(self.instance_uuid)
                tried.append(dest_node['host'])
                attempt += 1
                if retries >= 0 and attempt > retries:
                    db.migration_update(self.migration_uuid, {'status': 'failed'})
                    raise exception.MaxRetriesExceeded(
                        reason=f'Exceeded max scheduling retries {retries} for instance '
                               f'{self.instance_uuid} during live migration')

    def rollback(self, exc):
        if db.get_allocations(self.migration_uuid):
            db.move_allocations(self.migration_uuid, self.instance_uuid)
        try:
            mig = db.migration_get(self.migration_uuid)
            if mig['status'] not in ('failed',):
                db.migration_update(self.migration_uuid, {'status': 'error'})
        except exception.MigrationNotFound:
            pass
        values = {'task_state': None}
        if not isinstance(exc, EXPECTED):
            values['vm_state'] = states.ERROR
        try:
            db.instance_update(self.instance_uuid, values,
                               expected_task_state=[states.MIGRATING])
        except (exception.InstanceNotFound, exception.UnexpectedTaskStateError):
            return
        compute_utils.add_fault(db, self.instance_uuid, exc, self.manager.host)
