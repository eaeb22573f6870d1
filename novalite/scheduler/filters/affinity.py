"""SameHostFilter and DifferentHostFilter: place next to, or away from, given instances
(scheduler hints same_host / different_host)."""

import numpy as np

from novalite.scheduler.filters import BaseFilter


def _holds_any(view, idx, uuids):
    wanted = set(uuids)
    hosts = view.hosts
    return np.fromiter((not wanted.isdisjoint(hosts[i].instance_uuids) for i in idx.tolist()),
                       dtype=bool, count=len(idx))


class SameHostFilter(BaseFilter):
    name = 'SameHostFilter'
    hint = 'same_host'

    def enabled_for(self, spec):
        return bool(spec.hint_list(self.hint))

    def passes(self, view, idx, spec):
        return _holds_any(view, idx, spec.hint_list(self.hint))

    def reason(self, view, i, spec):
        return 'holds none of the instances in hint same_host'


class DifferentHostFilter(BaseFilter):
    name = 'DifferentHostFilter'
    hint = 'different_host'

    def enabled_for(self, spec):
        return bool(spec.hint_list(self.hint))

    def passes(self, view, idx, spec):
        return ~_holds_any(view, idx, spec.hint_list(self.hint))

    def reason(self, view, i, spec):
        held = sorted(set(spec.hint_list(self.hint)) & view.hosts[i].instance_uuids)
        return 'holds instance %s named in hint different_host' % ', '.join(held)
