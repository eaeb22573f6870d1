"""ComputeFilter: the host's compute service must be enabled and up."""

import datetime

from novalite.scheduler.filters import BaseFilter


class ComputeFilter(BaseFilter):
    name = 'ComputeFilter'

    def passes(self, view, idx, spec):
        return view.service_ok[idx]

    def reason(self, view, i, spec):
        hs = view.hosts[i]
        if hs.service_disabled:
            return ('service disabled: %s' % hs.disabled_reason if hs.disabled_reason
                    else 'service disabled')
        if hs.forced_down:
            return 'service forced down'
        if hs.last_heartbeat is None:
            return 'host is down (no heartbeat recorded)'
        now = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
        age = int((now - hs.last_heartbeat).total_seconds())
        return 'host is down (last heartbeat %d s ago)' % age
