"""RamFilter, CoreFilter, DiskFilter: free capacity, as placement counts it, must cover the
flavor."""

import numpy as np

from novalite.scheduler.filters import BaseFilter, fmt_num


class _ResourceFilter(BaseFilter):
    resource_class = ''
    label = ''
    unit = ''

    def _free(self, view):
        raise NotImplementedError

    def _host_free(self, hs):
        raise NotImplementedError

    def passes(self, view, idx, spec):
        requested = spec.resources()[self.resource_class]
        if requested <= 0:
            return np.ones(len(idx), dtype=bool)
        return self._free(view)[idx] >= requested

    def reason(self, view, i, spec):
        requested = spec.resources()[self.resource_class]
        unit = ' ' + self.unit if self.unit else ''
        return 'free %s %s%s < requested %s%s' % (
            self.label, fmt_num(self._host_free(view.hosts[i])), unit, requested, unit)


class RamFilter(_ResourceFilter):
    name = 'RamFilter'
    resource_class = 'MEMORY_MB'
    label = 'RAM'
    unit = 'MB'

    def _free(self, view):
        return view.free_ram_mb

    def _host_free(self, hs):
        return hs.free_ram_mb


class CoreFilter(_ResourceFilter):
    name = 'CoreFilter'
    resource_class = 'VCPU'
    label = 'vCPUs'

    def _free(self, view):
        return view.free_vcpus

    def _host_free(self, hs):
        return hs.free_vcpus


class DiskFilter(_ResourceFilter):
    name = 'DiskFilter'
    resource_class = 'DISK_GB'
    label = 'disk'
    unit = 'GB'

    def _free(self, view):
        return view.free_disk_gb

    def _host_free(self, hs):
        return hs.free_disk_gb
