"""ServerGroupSoftAffinityWeigher and ServerGroupSoftAntiAffinityWeigher: prefer hosts
holding more (soft-affinity) or fewer (soft-anti-affinity) members of the request's
server group; never remove a host."""

import numpy as np

from novalite.group_policies import SOFT_AFFINITY, SOFT_ANTI_AFFINITY
from novalite.scheduler.weights import BaseWeigher


def _members(view, idx, spec, policy):
    if (spec.instance_group or {}).get('policy') != policy:
        return np.zeros(len(idx), dtype=np.float64)
    return view.group_members[idx]


class ServerGroupSoftAffinityWeigher(BaseWeigher):
    name = 'ServerGroupSoftAffinityWeigher'
    multiplier_option = 'soft_affinity_weight_multiplier'

    def raw(self, view, idx, spec):
        return _members(view, idx, spec, SOFT_AFFINITY)


class ServerGroupSoftAntiAffinityWeigher(BaseWeigher):
    name = 'ServerGroupSoftAntiAffinityWeigher'
    multiplier_option = 'soft_anti_affinity_weight_multiplier'

    def raw(self, view, idx, spec):
        return -_members(view, idx, spec, SOFT_ANTI_AFFINITY)
