"""Scheduler service: picks hosts for a request and claims the selected one atomically."""

import logging

import oslo_messaging as messaging

from novalite import exception, service
from novalite.conf import CONF
from novalite.db import api as db
from novalite.db import server_groups
from novalite.db.session import reader
from novalite.scheduler import filter_scheduler, host_manager
from novalite.scheduler import rpcapi as scheduler_rpcapi
from novalite.scheduler.host_state import RequestSpec

LOG = logging.getLogger(__name__)


class SchedulerManager(service.Manager):
    target = messaging.Target(version=scheduler_rpcapi.VERSION)
    rpc_methods = scheduler_rpcapi.METHODS

    def __init__(self, host):
        super().__init__(host, 'novalite-scheduler')
        self.driver = filter_scheduler.FilterScheduler(CONF)

    def ping(self, context):
        return {'host': self.host, 'service': self.service_name}

    @messaging.expected_exceptions(exception.NoValidHost)
    def select_destinations(self, context, request_spec, instance_uuids,
                            return_alternates=True, claim=True):
        spec = RequestSpec.from_dict(request_spec)
        hints = spec.scheduler_hints or {}
        uuids = list(instance_uuids or [spec.instance_uuid])
        with reader() as session:
            states = host_manager.load_host_states(
                session, CONF, with_instances=bool(hints.get('same_host') or
                                                   hints.get('different_host')))
            group = server_groups.placement_of(session, uuids)
        _apply_group(spec, states, group)
        resources = spec.resources()

        def _claim(host_state, index):
            if not claim:
                return True
            try:
                db.claim_resources(uuids[index], {host_state.uuid: resources},
                                   project_id=spec.project_id, user_id=spec.user_id,
                                   replace=True, retries=CONF.database.claim_retries)
                return True
            except exception.GroupPolicyViolation as e:
                LOG.info('Claim on %s refused: %s', host_state.host, e)
                return 'server group %s: %s' % (e.kwargs['group_uuid'], e.kwargs['reason'])
            except (exception.InsufficientResources,
                    exception.ResourceProviderGenerationConflict,
                    exception.ServerGroupGenerationConflict,
                    exception.ResourceProviderNotFound) as e:
                LOG.info('Claim on %s lost: %s', host_state.host, e)
                return False

        num_alternates = (CONF.scheduler.max_attempts - 1) if return_alternates else 0
        try:
            selections = self.driver.select(spec, states, num_alternates, claim=_claim)
        except exception.NoValidHost as e:
            if claim:
                # A multi-instance request that failed half way keeps nothing.
                for u in uuids:
                    db.delete_allocations(u)
            raise exception.NoValidHost(str(e), explanation=e.explanation)
        return [[{'host': hs.host, 'nodename': hs.nodename, 'compute_node_uuid': hs.uuid}
                 for hs in hosts] for hosts in selections]


def _apply_group(spec: RequestSpec, states, group) -> None:
    """Put the request's server group (as the database says now) on the spec, and on
    each host state the number of its other members holding allocations there."""
    if group is None:
        spec.instance_group = None
        return
    spec.instance_group = {'uuid': group.uuid, 'policy': group.policy,
                           'rules': group.rules}
    for hs in states:
        hs.group_members = len(group.hosts.get(hs.host, ()))
