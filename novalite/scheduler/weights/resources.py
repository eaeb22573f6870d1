"""RAMWeigher, CPUWeigher, DiskWeigher: prefer hosts with more free capacity (spread), or,
with a negative multiplier, with less (stack)."""

from novalite.scheduler.weights import BaseWeigher


class RAMWeigher(BaseWeigher):
    name = 'RAMWeigher'
    multiplier_option = 'ram_weight_multiplier'

    def raw(self, view, idx, spec):
        return view.free_ram_mb[idx]


class CPUWeigher(BaseWeigher):
    name = 'CPUWeigher'
    multiplier_option = 'cpu_weight_multiplier'

    def raw(self, view, idx, spec):
        return view.free_vcpus[idx]


class DiskWeigher(BaseWeigher):
    name = 'DiskWeigher'
    multiplier_option = 'disk_weight_multiplier'

    def raw(self, view, idx, spec):
        return view.free_disk_gb[idx]
