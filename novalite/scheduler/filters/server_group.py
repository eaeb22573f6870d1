"""ServerGroupAntiAffinityFilter and ServerGroupAffinityFilter: the hard policies of the
request's server group, counted from where its other members hold allocations.

The claim checks the same policy again in its transaction (db/server_groups.py); these
filters keep the scheduler from proposing hosts the claim would refuse, and say why.
"""

import numpy as np

from novalite.group_policies import AFFINITY, ANTI_AFFINITY, max_per_host
from novalite.scheduler.filters import BaseFilter


def _policy(spec):
    return (spec.instance_group or {}).get('policy')


class ServerGroupAntiAffinityFilter(BaseFilter):
    name = 'ServerGroupAntiAffinityFilter'

    def enabled_for(self, spec):
        return _policy(spec) == ANTI_AFFINITY

    def _limit(self, spec):
        return max_per_host(spec.instance_group.get('rules'))

    def passes(self, view, idx, spec):
        return view.group_members[idx] < self._limit(spec)

    def reason(self, view, i, spec):
        here = int(view.group_members[i])
        return ('holds %d member%s of anti-affinity server group %s (max_server_per_host %d)'
                % (here, '' if here == 1 else 's', spec.instance_group['uuid'],
                   self._limit(spec)))


class ServerGroupAffinityFilter(BaseFilter):
    name = 'ServerGroupAffinityFilter'

    def enabled_for(self, spec):
        return _policy(spec) == AFFINITY

    def passes(self, view, idx, spec):
        placed = view.group_members.sum()
        if not placed:
            return np.ones(len(idx), dtype=bool)
        # Every member already placed must be on the host: members never split.
        return view.group_members[idx] == placed

    def reason(self, view, i, spec):
        hosts = sorted({view.hosts[j].host for j in np.flatnonzero(view.group_members)})
        return ('the members of affinity server group %s are on %s'
                % (spec.instance_group['uuid'], ', '.join(hosts)))
