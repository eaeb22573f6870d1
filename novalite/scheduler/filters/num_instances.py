"""NumInstancesFilter: the host must hold fewer than max_instances_per_host instances."""

from novalite.scheduler.filters import BaseFilter


class NumInstancesFilter(BaseFilter):
    name = 'NumInstancesFilter'

    def _limit(self):
        return self.conf.filter_scheduler.max_instances_per_host

    def passes(self, view, idx, spec):
        return view.num_instances[idx] < self._limit()

    def reason(self, view, i, spec):
        return 'holds %d instances, limit is %d' % (view.hosts[i].num_instances, self._limit())
