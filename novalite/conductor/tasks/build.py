"""Server create: schedule every instance of a request, then hand each to its compute."""

import logging

from novalite import exception
from novalite.compute import states
from novalite.compute import utils as compute_utils
from novalite.conductor.tasks.base import Task, claim_next_alternate
from novalite.db import api as db
from novalite.db import steps
from novalite.notifications import notify_instance

LOG = logging.getLogger(__name__)

EVENT = 'conductor_schedule_and_build_instances'


def _set_error(context, instance_uuid, exc, host, hop=None):
    """Put a build that cannot go on into ERROR with a fault, in one write; never raises."""
    try:
        inst = steps.apply_step('scheduling_failed', instance_uuid, vm_state=states.ERROR,
                                fault=compute_utils.fault_record(exc),
                                events=[hop.error(exc)] if hop else None,
                                host=host)['instance']
        notify_instance(context, inst, 'create', 'error', host, binary='novalite-conductor',
                        error=str(exc))
    except (exception.InstanceNotFound, exception.UnexpectedTaskStateError):
        # Deleted (or moved on) while we were scheduling: nothing to mark.
        db.delete_allocations(instance_uuid)


class ScheduleAndBuildTask(Task):
    def __init__(self, manager, context, instance_uuids, request_spec, image):
        super().__init__(manager, context, instance_uuids[0] if instance_uuids else None)
        self.instance_uuids = list(instance_uuids)
        self.request_spec = request_spec
        self.image = image
        self.hop = compute_utils.Hop(context, EVENT)

    @property
    def instance_uuids_driven(self) -> list:
        return []  # marked in execute(), once the lease is taken

    def execute(self):
        # This conductor drives the request until each instance has a host: a reconciler
        # puts them in ERROR if this process dies first.
        # Only instances no host was chosen for, and none another task of this process
        # drives already (a late request after a reconciler's resend builds nothing).
        free = [u for u in self.instance_uuids if u not in self.manager.driven]
        taken = steps.take_lease(free, self.manager.host, [states.SCHEDULING],
                                 unplaced=True)
        if len(taken) != len(self.instance_uuids):
            LOG.info('Instances %s are deleted or driven elsewhere; not building them',
                     sorted(set(self.instance_uuids) - set(taken)))
            if not taken:
                return
            self.request_spec = dict(self.request_spec, num_instances=len(taken))
            self.instance_uuids = taken
        with self.manager.driven.driving(self.instance_uuids):
            selections = self.manager.scheduler_rpcapi.select_destinations(
                self.context, self.request_spec, self.instance_uuids, return_alternates=True)
            for u, hosts in zip(self.instance_uuids, selections, strict=True):
                self._build_one(u, hosts)

    def rollback(self, exc):
        """Scheduling failed: every instance of the request goes to ERROR with the
        reason (the scheduler keeps no claim of a failed request)."""
        for u in self.instance_uuids:
            _set_error(self.context, u, exc, self.manager.host, self.hop)

    def _build_one(self, instance_uuid, hosts):
        """One write puts the host on the instance and records the scheduling event."""
        selected, alternates = hosts[0], hosts[1:]
        try:
            inst = steps.apply_step(
                'host_selected', instance_uuid,
                instance_values={'host': selected['host'], 'node': selected['nodename']},
                events=[self.hop.ok()], host=self.manager.host, driver=None)['instance']
        except (exception.InstanceNotFound, exception.UnexpectedTaskStateError):
            LOG.info('Instance %s went away while scheduling; releasing its claim',
                     instance_uuid)
            db.delete_allocations(instance_uuid)
            return
        spec = dict(self.request_spec, instance_uuid=instance_uuid)
        self.manager.compute_rpcapi.build_and_run_instance(
            self.context, selected['host'], inst, self.image, spec, alternates)


class RescheduleBuildTask(Task):
    """A compute failed to build: claim the next alternate and send the build there."""

    def __init__(self, manager, context, instance_uuid, request_spec, image, host_list,
                 reason):
        super().__init__(manager, context, instance_uuid)
        self.request_spec = request_spec
        self.image = image
        self.host_list = list(host_list or [])
        self.reason = reason

    def execute(self):
        try:
            inst = db.instance_get(self.instance_uuid)
        except exception.InstanceNotFound:
            return
        candidate = claim_next_alternate(inst, inst['flavor'], self.host_list)
        if candidate is None:
            raise exception.MaxRetriesExceeded(
                reason=f'Exhausted all hosts available; last failure: {self.reason}')
        try:
            inst = steps.apply_step(
                'host_selected', self.instance_uuid,
                instance_values={'host': candidate['host'], 'node': candidate['nodename']},
                host=self.manager.host)['instance']
        except (exception.InstanceNotFound, exception.UnexpectedTaskStateError):
            db.delete_allocations(self.instance_uuid)
            return
        self.manager.compute_rpcapi.build_and_run_instance(
            self.context, candidate['host'], inst, self.image, self.request_spec,
            self.host_list)

    def rollback(self, exc):
        _set_error(self.context, self.instance_uuid, exc, self.manager.host)
