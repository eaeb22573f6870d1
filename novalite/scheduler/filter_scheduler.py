"""FilterScheduler: narrow, filter and weigh host states for a request, claim the best host
for each instance, and explain every rejection when no host is left."""

from __future__ import annotations

import functools
import logging
import random
from collections.abc import Callable
from typing import Any

import numpy as np

from novalite import exception
from novalite.conf import CONF
from novalite.scheduler.filters import Step, load_filters
from novalite.scheduler.filters.targets import apply_targets
from novalite.scheduler.host_state import HostState, HostStateArrays, RequestSpec
from novalite.scheduler.weights import load_weighers, weigh

LOG = logging.getLogger(__name__)

# Per-host reasons kept in one filter's entry of an explanation; the counts stay exact.
EXPLANATION_HOST_LIMIT = 200
# Per-host details printed by format_explanation before "and N more".
FORMAT_HOST_LIMIT = 20

CLAIM_FAILED = 'resource claim failed (taken by a concurrent request)'

# True when the host was claimed; False, or a reason, when it was lost.
Claim = Callable[[HostState, int], bool | str]


class NoValidHost(exception.NoValidHost):
    """No host can take the request; `explanation` says which step removed which host."""

    def __init__(self, explanation: dict[str, Any]):
        super().__init__(format_explanation(explanation), explanation=explanation)


class FilterScheduler:
    def __init__(self, conf: Any = CONF, rng: random.Random | None = None):
        self.conf = conf
        self.filters = load_filters(list(conf.filter_scheduler.enabled_filters), conf)
        self.weighers = load_weighers(list(conf.filter_scheduler.weight_classes), conf)
        self._rng = rng or random.Random()

    def select(self, spec: RequestSpec, host_states: list[HostState] | HostStateArrays,
               num_alternates: int, claim: Claim | None = None,
               release: Claim | None = None,
               refresh: Callable[[HostState], None] | None = None) -> list[list[HostState]]:
        """Pick a host for each of spec.num_instances, plus up to num_alternates others.

        claim(host_state, instance_index) returns True when it claimed the host, else
        False or the reason it lost it (a race, the server group's policy); the next
        host in weighed order is then tried. If a later instance finds no host,
        release(host_state, instance_index) is called for each earlier successful claim
        before NoValidHost is raised, so a failed request leaves nothing allocated.

        host_states may also be a HostStateArrays kept by the caller across requests: the
        columnar view then is not rebuilt (that build is most of the cost of a select()
        over many hosts). Usage consumed here updates both the view and its HostStates.

        refresh(host_state), when given, is called after a lost claim to bring the view
        up to date (in place); filtering and weighing then run again on the fresh data
        before the next host is tried.
        """
        if isinstance(host_states, HostStateArrays):
            view = host_states
            host_states = view.hosts
        else:
            view = HostStateArrays(host_states)
        uuids = list(spec.instance_uuids) or ([spec.instance_uuid] if spec.instance_uuid
                                              else [])
        failed: dict[int, str] = {}
        chosen_so_far: list[int] = []
        results: list[list[HostState]] = []
        for index in range(spec.num_instances):
            while True:
                ordered, steps = self._filter_and_weigh(view, spec, failed)
                lost = len(failed)
                chosen, candidates = self._claim_best(view, ordered, index, claim, failed,
                                                      stop_on_loss=refresh is not None)
                if chosen is not None or refresh is None or len(failed) == lost:
                    break
                refresh(view.hosts[list(failed)[-1]])
            if chosen is None:
                explanation = self._explain(view, spec, steps, failed, index)
                if release is not None:
                    for earlier, host_index in enumerate(chosen_so_far):
                        release(host_states[host_index], earlier)
                raise NoValidHost(explanation)
            uuid = uuids[index] if index < len(uuids) else None
            view.consume(chosen, spec.flavor, uuid,
                         group_member=spec.instance_group is not None)
            chosen_so_far.append(chosen)
            picked = [host_states[chosen]]
            picked += [host_states[i] for i in
                       self._alternates(view, chosen, candidates, num_alternates)]
            LOG.debug('instance %d of %d: %s chosen among %d hosts (%s)', index + 1,
                      spec.num_instances, picked[0].label, view.size,
                      ', '.join('%s -%d' % (s.name, len(s.removed)) for s in steps))
            results.append(picked)
        return results

    def _filter_and_weigh(self, view: HostStateArrays, spec: RequestSpec,
                          failed: dict[int, str]) -> tuple[list[int], list[Step]]:
        idx = np.arange(view.size)
        if failed:
            idx = np.setdiff1d(idx, np.fromiter(failed, dtype=np.int64), assume_unique=True)
        idx, steps, forced = apply_targets(view, idx, spec)
        if not forced:
            for flt in self.filters:
                if not len(idx):
                    break
                if not flt.enabled_for(spec):
                    continue
                mask = flt.passes(view, idx, spec)
                reason = functools.partial(_reason, flt, view, spec)
                steps.append(Step(flt.name, len(idx), idx[~mask], reason))
                idx = idx[mask]
        if len(idx) <= 1:
            return idx.tolist(), steps
        weights = weigh(self.weighers, view, idx, spec)
        order = np.argsort(-weights, kind='stable')
        if self.conf.filter_scheduler.shuffle_best_same_weighed_hosts:
            sorted_w = weights[order]
            ties = int(np.count_nonzero(sorted_w == sorted_w[0]))
            if ties > 1:
                head = order[:ties].copy()
                self._rng.shuffle(head)
                order[:ties] = head
        return idx[order].tolist(), steps

    def _claim_best(self, view: HostStateArrays, ordered: list[int], index: int,
                    claim: Claim | None, failed: dict[int, str],
                    stop_on_loss: bool = False) -> tuple[int | None, list[int]]:
        subset = max(1, int(self.conf.filter_scheduler.host_subset_size))
        candidates = ordered
        while candidates:
            pos = self._rng.randrange(min(subset, len(candidates))) if subset > 1 else 0
            host_index = candidates.pop(pos)
            result = True if claim is None else claim(view.hosts[host_index], index)
            if result is True:
                return host_index, candidates
            failed[host_index] = result or CLAIM_FAILED
            if stop_on_loss:
                break
        return None, candidates

    @staticmethod
    def _alternates(view: HostStateArrays, chosen: int, candidates: list[int],
                    num_alternates: int) -> list[int]:
        seen = {view.hosts[chosen].host}
        out: list[int] = []
        for i in candidates:
            if len(out) >= num_alternates:
                break
            host = view.hosts[i].host
            if host not in seen:
                seen.add(host)
                out.append(i)
        return out

    @staticmethod
    def _explain(view: HostStateArrays, spec: RequestSpec, steps: list[Step],
                 failed: dict[int, str], index: int) -> dict[str, Any]:
        filters = []
        for step in steps:
            removed: dict[str, str] = {}
            for i in step.removed[:EXPLANATION_HOST_LIMIT].tolist():
                removed[_host_key(view.hosts[i], removed)] = step.reason(i)
            entry = {'name': step.name, 'hosts_before': step.hosts_before,
                     'hosts_after': step.hosts_before - len(step.removed),
                     'removed': removed}
            filters.append(entry)
        explanation: dict[str, Any] = {'hosts_considered': view.size, 'filters': filters}
        if failed:
            claims: dict[str, str] = {}
            for i, reason in failed.items():
                claims[_host_key(view.hosts[i], claims)] = reason
            explanation['claims_failed'] = claims
        if spec.num_instances > 1:
            explanation['instance_index'] = index
            explanation['num_instances'] = spec.num_instances
        return explanation


def _reason(flt, view, spec, i):
    return flt.reason(view, i, spec)


def _host_key(hs: HostState, taken: dict[str, str]) -> str:
    return hs.host if hs.host not in taken else hs.label


def _details(items: list[tuple[str, str]], total: int, budget: int) -> tuple[str, int]:
    shown = items[:budget]
    text = '; '.join('%s: %s' % kv for kv in shown)
    more = total - len(shown)
    if more > 0:
        text = (text + '; ' if text else '') + 'and %d more' % more
    return text, budget - len(shown)


def format_explanation(expl: dict[str, Any]) -> str:
    """Render an explanation as one paragraph fit for a fault message."""
    parts = ['No valid host was found.']
    considered = expl.get('hosts_considered', 0)
    if expl.get('num_instances', 1) > 1:
        parts.append('For instance %d of %d:' % (expl.get('instance_index', 0) + 1,
                                                 expl['num_instances']))
    if not considered:
        parts.append('There are no compute hosts.')
        return ' '.join(parts)
    budget = FORMAT_HOST_LIMIT
    for entry in expl.get('filters', []):
        count = entry['hosts_before'] - entry['hosts_after']
        if count <= 0:
            continue
        text, budget = _details(list(entry.get('removed', {}).items()), count, budget)
        parts.append('%s removed %d of %d host%s (%s).' % (
            entry['name'], count, entry['hosts_before'],
            '' if entry['hosts_before'] == 1 else 's', text))
    claims = expl.get('claims_failed') or {}
    if claims:
        text, budget = _details(list(claims.items()), len(claims), budget)
        parts.append('Claims failed on %d host%s (%s).' % (
            len(claims), '' if len(claims) == 1 else 's', text))
    if len(parts) == 1:
        parts.append('%d hosts considered.' % considered)
    return ' '.join(parts)
