"""Scheduler service: picks hosts for a request and claims the selected one atomically."""

import logging

import oslo_messaging as messaging

from novalite import exception, service
from novalite.conf import CONF
from novalite.db import api as db
from novalite.db import server_groups
from novalite.db.retry import retry_on_transient
from novalite.db.session import reader
from novalite.scheduler import filter_scheduler, host_cache, host_manager
from novalite.scheduler import rpcapi as scheduler_rpcapi
from novalite.scheduler.host_state import RequestSpec

LOG = logging.getLogger(__name__)


class SchedulerManager(service.Manager):
    target = messaging.Target(version=scheduler_rpcapi.VERSION)
    rpc_methods = scheduler_rpcapi.METHODS

    def __init__(self, host):
        super().__init__(host, 'novalite-scheduler')
        self.driver = filter_scheduler.FilterScheduler(CONF)
        self.cache = host_cache.HostCache(CONF)
        self._poll_failing = False

    def ping(self, context):
        return {'host': self.host, 'service': self.service_name}

    def after_start(self):
        self.cache.polled_in_background = True

    @service.periodic_task(spacing='scheduler.host_state_refresh_interval')
    def poll_host_states(self, context):
        """The reads of the host view due every host_state_refresh_interval, here
        rather than in a request: a request then reads only the providers that moved.
        With the interval at 0 each request reads everything itself."""
        if self.cache.conf.scheduler.host_state_refresh_interval <= 0 or \
                self.cache.view is None:
            return   # (the first request loads the view)
        # Never behind a request, and one try: a request that finds the view too old
        # (a failing database) polls itself, with its own retries.
        if not self.cache.lock.acquire(blocking=False):
            return
        try:
            with reader() as session:
                self.cache.poll(session)
            self._poll_failing = False
        except Exception as exc:  # noqa: BLE001 - the next tick tries again
            if not self._poll_failing:
                LOG.warning('Reading the host view failed (the next poll tries again): %s',
                            exc)
            self._poll_failing = True
        finally:
            self.cache.lock.release()

    @messaging.expected_exceptions(exception.NoValidHost)
    def select_destinations(self, context, request_spec, instance_uuids,
                            return_alternates=True, claim=True):
        spec = RequestSpec.from_dict(request_spec)
        uuids = list(instance_uuids or [spec.instance_uuid])
        # One request at a time per process: the view is shared and claims update it.
        with self.cache.lock:
            return self._select(spec, uuids, return_alternates, claim)

    def _select(self, spec: RequestSpec, uuids: list[str], return_alternates: bool,
                claim: bool) -> list[list[dict]]:
        hinted = spec.hint_list('same_host') + spec.hint_list('different_host')
        group, instances = _read_request(self.cache, uuids, hinted)
        _apply_group(spec, group)
        view = self.cache.begin_request(group.hosts if group is not None else None,
                                        instances)
        resources = spec.resources()

        def _claim(host_state, index):
            if not claim:
                self.cache.placed(host_state, claimed=False)
                return True
            # A member of a hard-policy group claims the reading way (its group's row
            # lock first); anyone else with the generation its view is at.
            generation = None if group is not None and group.hard else \
                self.cache.generation(host_state)
            try:
                db.claim_resources(uuids[index], {host_state.uuid: resources},
                                   project_id=spec.project_id, user_id=spec.user_id,
                                   replace=True, retries=CONF.database.claim_retries,
                                   generations=({host_state.uuid: generation}
                                                if generation is not None else None))
                self.cache.placed(host_state, claimed=True)
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

        @retry_on_transient
        def _refresh(host_state):
            with reader() as session:
                self.cache.claim_lost(session, host_state)

        num_alternates = (CONF.scheduler.max_attempts - 1) if return_alternates else 0
        try:
            selections = self.driver.select(spec, view, num_alternates, claim=_claim,
                                            refresh=_refresh)
        except exception.NoValidHost as e:
            if claim:
                # A multi-instance request that failed half way keeps nothing.
                for u in uuids:
                    db.delete_allocations(u)
            raise exception.NoValidHost(str(e), explanation=e.explanation)
        return [[{'host': hs.host, 'nodename': hs.nodename, 'compute_node_uuid': hs.uuid}
                 for hs in hosts] for hosts in selections]


@retry_on_transient
def _read_request(cache, uuids, hinted):
    with reader() as session:
        cache.refresh(session)
        return (server_groups.placement_of(session, uuids),
                host_manager.instance_hosts(session, hinted) if hinted else ())


def _apply_group(spec: RequestSpec, group) -> None:
    """Put the request's server group (as the database says now) on the spec."""
    if group is None:
        spec.instance_group = None
        return
    spec.instance_group = {'uuid': group.uuid, 'policy': group.policy,
                           'rules': group.rules}
