"""Live migration, conductor side: checks, destination choice (named or scheduled, with
retries), the destination/source pre-checks, then the hand-off to the source compute.

The API's ``live_migration_requested`` step already moved the source allocation to the
migration. The destination choice is one ``live_destination_chosen`` write carrying the
pre-checks' events; ``rollback()`` is one ``live_migration_failed`` write: the source
allocation back to the instance, the migration failed, the task cleared; the guest never
left the source at this stage.
"""

import logging

from novalite import exception
from novalite.compute import states
from novalite.compute import utils as compute_utils
from novalite.compute.live_migration import EVENTS
from novalite.conductor import admission, policies
from novalite.conductor.tasks.base import NotDriving, Task, take_lease
from novalite.conf import CONF
from novalite.db import api as db
from novalite.db import steps
from novalite.scheduler.host_state import flavor_resources
from novalite.virt import power_state
from novalite.virt.migration_tuning import utc_iso

LOG = logging.getLogger(__name__)

# Pre-check failures that make the task try another host (scheduled case) or fail with
# a 400 (synchronous API calls), as opposed to unexpected errors.
EXPECTED = (exception.NoValidHost, exception.ComputeHostNotFound,
            exception.ComputeServiceUnavailable, exception.InvalidHypervisorType,
            exception.InvalidCPUInfo, exception.UnableToMigrateToSelf,
            exception.DestinationHypervisorTooOld, exception.MigrationPreCheckError,
            exception.InstanceInvalidState, exception.InsufficientResources)


class LiveMigrationTask(Task):
    def __init__(self, manager, context, instance_uuid, host, block_migration,
                 disk_over_commit, force, migration_uuid):
        super().__init__(manager, context, instance_uuid)
        self.host = host
        self.block_migration = block_migration
        self.disk_over_commit = disk_over_commit
        self.force = force
        self.migration_uuid = migration_uuid
        self.instance = None
        self.migration = None
        self.source_node = None
        self.hop = compute_utils.Hop(context, 'conductor_live_migrate_instance')
        self.events = []
        self.policy = None
        # The policy chosen and the decisions that chose it, until a write records them
        # (the first step or log entry this task writes): ({'policy': name}, entries).
        self.policy_record = None
        self.dest = self.migrate_data = self.dest_values = None
        self._up = {}   # host -> its compute service is up, as read with its node

    def run(self):
        with self.manager.driven.driving([self.instance_uuid]):
            try:
                return self.execute()
            except NotDriving as exc:
                raise exception.MigrationError(reason=str(exc))
            except Exception as exc:
                LOG.info('Live migration of %s failed before it started: %s',
                         self.instance_uuid, exc)
                self.rollback(exc)
                if isinstance(exc, EXPECTED):
                    raise
                raise exception.MigrationError(reason=str(exc))

    def execute(self):
        # This conductor drives the move until the source takes it: a reconciler rolls
        # it back if this process dies first.
        take_lease(self.manager, self.instance_uuid, states.MIGRATING)
        self.instance = inst = db.instance_get(self.instance_uuid)
        self.migration = self._choose_policy(inst)
        if inst['power_state'] not in (power_state.RUNNING, power_state.PAUSED):
            raise exception.InstanceInvalidState(
                action='live_migrate', instance_uuid=inst['uuid'], attr='power_state',
                state=inst['power_state'])
        source = inst['host']
        self.source_node = self._node(source, inst['node'])
        if not self._service_up(source):
            raise exception.ComputeServiceUnavailable(host=source)
        if self.host and self.force:
            dest, dest_node, migrate_data = self._check_forced_destination()
        else:
            dest, dest_node, migrate_data = self._find_destination()
        migrate_data.update(self.policy.settings(
            inst['flavor'], bool(migrate_data.get('block_migration'))))
        self.dest, self.migrate_data = dest, migrate_data
        self.dest_values = {'source_node': inst['node'], 'dest_compute': dest,
                            'dest_node': dest_node,
                            'dest_host': migrate_data.get('dest_host_ip')}
        with admission.deciding:
            start, why = admission.may_start(self.migration, source, dest)
            if start:
                self.record_hand_over()
            else:
                self._record_waiting(why)
        if start:
            self.cast_to_source()
        else:
            self._wait_for_slot()
        return {'dest': dest, 'migration_uuid': self.migration_uuid}

    def _record_waiting(self, why):
        """No slot under the policy's limits: the move is recorded queued, with the
        destination it keeps its claim on."""
        # The decision goes first: whoever sees the move queued sees why (and, with
        # it, the policy whose limits hold it).
        values, entries = self.policy_record or ({}, [])
        admission.log(self.migration_uuid, admission.WAITING, why, earlier=entries,
                      values=values)
        self.policy_record = None
        self.migration = steps.apply_step(
            'live_migration_waiting', self.instance_uuid, self.migration_uuid,
            migration_values=self.dest_values, events=self.events,
            host=self.manager.host)['migration']
        self.events = []

    def _wait_for_slot(self):
        """Wait in another thread (the caller, maybe a synchronous API call, gets its
        answer now), this process still driving the instance meanwhile."""
        driving = self.manager.driven.driving([self.instance_uuid])
        driving.__enter__()
        admission.wait_for_slot(self.manager, self, driving)

    def record_hand_over(self, admitted=False):
        """The destination chosen (and, after a wait, the slot): the source's now."""
        if admitted:
            admission.log(self.migration_uuid, admission.ADMITTED,
                          f"{self.instance['host']} -> {self.dest}")
        values, entries = self.policy_record or ({}, [])
        self.migration = steps.apply_step(
            'live_destination_chosen', self.instance_uuid, self.migration_uuid,
            migration_values=dict(self.dest_values, **values), log=entries,
            events=self.events + [self.hop.ok()], host=self.manager.host,
            driver=None)['migration']
        self.policy_record = None

    def cast_to_source(self):
        self.manager.compute_rpcapi.live_migration(self.context, self.instance['host'],
                                                   self.instance, self.dest, self.migration,
                                                   self.migrate_data)

    def _choose_policy(self, inst):
        """Choose the migration's policy (flavor, image, project, default); the policy
        and the decisions that chose it are recorded with the task's next write (the
        destination choice, the wait for a slot or the rollback). Returns the migration
        as it will read then."""
        image = None
        if inst.get('image_ref'):
            try:
                image = db.image_get(inst['image_ref'])
            except exception.ImageNotFound:
                pass
        self.policy, decisions = policies.select(policies.current(), inst['flavor'], image,
                                                 inst['project_id'])
        at = utc_iso()
        entries = [dict(d, at=at) for d in decisions]
        self.policy_record = ({'policy': self.policy.name}, entries)
        mig = db.migration_get(self.migration_uuid)
        return dict(mig, policy=self.policy.name,
                    policy_log=list(mig['policy_log'] or []) + entries)

    def _node(self, host, nodename=None):
        node, self._up[host] = db.compute_node_and_up(host, nodename, CONF.service_down_time)
        return node

    def _service_up(self, host) -> bool:
        """Whether the compute service of ``host`` was up when ``_node`` read its node
        (every host this task checks was read so first)."""
        return self._up[host]

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
        try:
            db.claim_resources(self.instance_uuid,
                               {dest_node['uuid']: flavor_resources(self.instance['flavor'])},
                               project_id=self.instance['project_id'],
                               user_id=self.instance['user_id'], replace=True)
        except (exception.InsufficientResources, exception.GroupPolicyViolation) as e:
            raise exception.MigrationPreCheckError(
                reason=f"Unable to migrate {self.instance_uuid} to {dest_node['host']}: {e}")

    def _pre_checks(self, dest_node):
        """The destination checks itself and asks the source (both over RPC); their
        events come back with the answer and are written with the next step."""
        data = self.manager.compute_rpcapi.check_can_live_migrate_destination(
            self.context, dest_node['host'], self.instance, self.block_migration,
            self.disk_over_commit, self.migration, self.source_node)
        self.events += data.pop(EVENTS, [])
        return data

    def _check_forced_destination(self):
        dest_node = self._node(self.host)
        self._check_dest_basics(dest_node)
        try:
            db.check_host(self.instance_uuid, dest_node['host'])
        except exception.GroupPolicyViolation as e:
            raise exception.MigrationPreCheckError(reason=str(e))
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
            dest_node = self._node(selection['host'], selection['nodename'])
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
                    raise exception.MaxRetriesExceeded(
                        reason=f'Exceeded max scheduling retries {retries} for instance '
                               f'{self.instance_uuid} during live migration')

    def rollback(self, exc):
        vm_state = self.instance['vm_state'] if self.instance and isinstance(exc, EXPECTED) \
            else states.ERROR
        values, entries = self.policy_record or ({}, [])
        try:
            steps.apply_step(
                'live_migration_failed', self.instance_uuid, self.migration_uuid,
                migration_values=values or None, log=entries,
                status=states.MS.FAILED if isinstance(exc, exception.MaxRetriesExceeded)
                else None,
                vm_state=vm_state if vm_state in (states.ACTIVE, states.PAUSED,
                                                  states.ERROR) else None,
                fault=compute_utils.fault_record(exc),
                events=self.events + [self.hop.error(exc)], host=self.manager.host)
        except (exception.InstanceNotFound, exception.UnexpectedTaskStateError,
                exception.UnexpectedMigrationStatus, exception.MigrationNotFound) as e:
            LOG.info('Instance %s changed while rolling back its live migration: %s',
                     self.instance_uuid, e)
