"""Evacuation, conductor side: the destination (named, forced, or scheduled with the
source excluded), then the hand-off to the destination, which rebuilds the guest.

The API's ``evacuation_requested`` step already moved the source allocation to the
migration and checked that the source's compute service is down. The scheduler (or, for
a forced host, one claim here) claims the destination for the instance;
``evacuation_destination_chosen`` records it and hands the move to the destination in
one write. ``rollback()`` is one ``evacuation_failed`` write: the source allocation back
to the instance (replacing any destination claim), the migration in error, the task
cleared, a fault; the server stays on its dead source, in ERROR as Nova leaves it, and
can be evacuated again.
"""

import logging

from novalite import exception
from novalite.compute import states
from novalite.compute import utils as compute_utils
from novalite.conductor.tasks.base import Task, take_lease
from novalite.conf import CONF
from novalite.db import api as db
from novalite.db import steps
from novalite.scheduler.host_state import flavor_resources

LOG = logging.getLogger(__name__)


class EvacuateTask(Task):
    def __init__(self, manager, context, instance_uuid, migration_uuid, host, force, stop,
                 request_spec):
        super().__init__(manager, context, instance_uuid)
        self.migration_uuid = migration_uuid
        self.host = host
        self.force = force
        self.stop = stop
        self.request_spec = request_spec or {}
        self.instance = None
        self.hop = compute_utils.Hop(context, 'conductor_rebuild_server')

    def execute(self):
        # This conductor drives the move until the destination takes it: a reconciler
        # rolls it back if this process dies first.
        take_lease(self.manager, self.instance_uuid, states.REBUILDING)
        self.instance = db.instance_get(self.instance_uuid)
        if self.host and self.force:
            dest = self._forced_destination()
        else:
            dest = self._scheduled_destination()
        out = steps.apply_step(
            'evacuation_destination_chosen', self.instance_uuid, self.migration_uuid,
            migration_values={'dest_compute': dest['host'],
                              'dest_node': dest['hypervisor_hostname']},
            events=[self.hop.ok()], host=self.manager.host, driver=None)
        try:
            image = db.image_get(out['instance']['image_ref']) \
                if out['instance'].get('image_ref') else None
        except exception.ImageNotFound:
            image = None
        self.manager.compute_rpcapi.rebuild_instance(
            self.context, dest['host'], out['instance'], out['migration'], image, self.stop)

    def _forced_destination(self):
        """A named host the scheduler does not check: it must be up, have room, and be
        allowed by the server's group (checked first for a clear fault, then again in
        the claim, atomically)."""
        node, up = db.compute_node_and_up(self.host, None, CONF.service_down_time)
        if not up:
            raise exception.ComputeServiceUnavailable(host=node['host'])
        try:
            db.check_host(self.instance_uuid, node['host'])
            db.claim_resources(self.instance_uuid,
                               {node['uuid']: flavor_resources(self.instance['flavor'])},
                               project_id=self.instance['project_id'],
                               user_id=self.instance['user_id'], replace=True)
        except (exception.InsufficientResources, exception.ResourceProviderNotFound,
                exception.ResourceProviderGenerationConflict,
                exception.GroupPolicyViolation) as e:
            raise exception.NoValidHost(reason=f"{node['host']} cannot take "
                                               f"{self.instance_uuid}: {e}")
        return node

    def _scheduled_destination(self):
        spec = dict(self.request_spec, instance_uuid=self.instance_uuid,
                    flavor=self.instance['flavor'], num_instances=1,
                    instance_uuids=[self.instance_uuid],
                    ignore_hosts=sorted(set(self.request_spec.get('ignore_hosts') or []) |
                                        {self.instance['host']}),
                    requested_destination={'host': self.host, 'node': None}
                    if self.host else None)
        selection = self.manager.scheduler_rpcapi.select_destinations(
            self.context, spec, [self.instance_uuid], return_alternates=False)[0][0]
        return db.compute_node_get_by_host_and_node(selection['host'],
                                                    selection['nodename'])

    def rollback(self, exc):
        try:
            steps.apply_step(
                'evacuation_failed', self.instance_uuid, self.migration_uuid,
                vm_state=states.ERROR, fault=compute_utils.fault_record(exc),
                events=[self.hop.error(exc)], host=self.manager.host)
        except (exception.InstanceNotFound, exception.UnexpectedTaskStateError,
                exception.UnexpectedMigrationStatus, exception.MigrationNotFound) as e:
            LOG.info('Instance %s changed while rolling back its evacuation: %s',
                     self.instance_uuid, e)
