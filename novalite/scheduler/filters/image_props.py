"""ImagePropertiesFilter: the image's required hypervisor type and CPU architecture must
match the host. A host that does not report its architecture is not rejected for it."""

from novalite.scheduler.filters import BaseFilter
from novalite.scheduler.host_state import canonical_arch


def _wanted(spec):
    props = (spec.image or {}).get('properties') or {}
    hv_type = props.get('img_hv_type') or props.get('hypervisor_type')
    arch = props.get('hw_architecture') or props.get('architecture')
    return (hv_type.lower() if hv_type else None), canonical_arch(arch)


class ImagePropertiesFilter(BaseFilter):
    name = 'ImagePropertiesFilter'

    def enabled_for(self, spec):
        return _wanted(spec) != (None, None)

    def passes(self, view, idx, spec):
        hv_type, arch = _wanted(spec)
        mask = None
        if hv_type:
            codes, table = view.hv_type_codes
            mask = codes[idx] == table.get(hv_type, -1)
        if arch:
            codes, table = view.arch_codes
            sub = codes[idx]
            arch_ok = (sub == table.get(arch, -1)) | (sub == table.get(None, -1))
            mask = arch_ok if mask is None else mask & arch_ok
        return mask

    def reason(self, view, i, spec):
        hs = view.hosts[i]
        hv_type, arch = _wanted(spec)
        if hv_type and (hs.hypervisor_type or '').lower() != hv_type:
            return 'hypervisor type %s, image requires %s' % (hs.hypervisor_type, hv_type)
        return 'architecture %s, image requires %s' % (canonical_arch(hs.cpu_arch), arch)
