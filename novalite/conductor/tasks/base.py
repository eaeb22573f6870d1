"""What every conductor task shares: ``execute()`` then ``rollback()`` of what ran, and
the claim of the next alternate host."""

import logging

from novalite import exception
from novalite.db import api as db
from novalite.db import steps
from novalite.scheduler.host_state import flavor_resources

LOG = logging.getLogger(__name__)


class NotDriving(Exception):
    """Another conductor drives the instance's task, or the task is over: leave it."""


def take_lease(manager, instance_uuid, task_state):
    """This conductor drives ``instance_uuid``'s task from now (see ``steps.take_lease``),
    or ``NotDriving``."""
    if not steps.take_lease([instance_uuid], manager.host, [task_state]):
        raise NotDriving(f'{instance_uuid}: driven by another conductor or no longer '
                         f'{task_state}')


class Task:
    """One operation the conductor drives: ``execute()`` does the steps in order;
    ``rollback(exc)`` undoes the ones that ran, working from what the database says so
    that running it twice is safe."""

    def __init__(self, manager, context, instance_uuid):
        self.manager = manager
        self.context = context
        self.instance_uuid = instance_uuid

    def execute(self):
        raise NotImplementedError

    def rollback(self, exc):
        raise NotImplementedError

    @property
    def instance_uuids_driven(self) -> list:
        return [self.instance_uuid]

    def run(self):
        """Execute; on failure roll back. A task run for a cast ends here: its rollback
        has recorded the failure where the user sees it (fault, event, state). While it
        runs, the conductor's reconciler knows this process drives its instances."""
        with self.manager.driven.driving(self.instance_uuids_driven):
            try:
                return self.execute()
            except NotDriving as exc:
                LOG.info('%s: not driving %s', type(self).__name__, exc)
            except Exception as exc:
                LOG.info('%s of %s failed: %s', type(self).__name__, self.instance_uuid, exc)
                self.rollback(exc)


def claim_next_alternate(instance: dict, flavor: dict, host_list: list) -> dict | None:
    """Claim ``flavor`` for the instance on the first alternate of ``host_list`` that still
    has room and that its server group allows (replacing any claim the instance holds);
    pops the ones it tried. None when no alternate is left."""
    resources = flavor_resources(flavor)
    while host_list:
        candidate = host_list.pop(0)
        try:
            db.claim_resources(instance['uuid'], {candidate['compute_node_uuid']: resources},
                               project_id=instance['project_id'],
                               user_id=instance['user_id'], replace=True)
        except (exception.InsufficientResources, exception.ResourceProviderNotFound,
                exception.ResourceProviderGenerationConflict,
                exception.ServerGroupGenerationConflict,
                exception.GroupPolicyViolation) as e:
            LOG.info('Alternate %s cannot take %s: %s', candidate['host'], instance['uuid'],
                     e)
            continue
        return candidate
    return None
