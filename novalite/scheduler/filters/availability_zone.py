"""AvailabilityZoneFilter: the host must be in the requested availability zone."""

from novalite.scheduler.filters import BaseFilter


class AvailabilityZoneFilter(BaseFilter):
    name = 'AvailabilityZoneFilter'

    def enabled_for(self, spec):
        return bool(spec.availability_zone)

    def passes(self, view, idx, spec):
        codes, table = view.az_codes
        return codes[idx] == table.get(spec.availability_zone, -1)

    def reason(self, view, i, spec):
        return 'in availability zone %r, not %r' % (view.hosts[i].availability_zone,
                                                    spec.availability_zone)
