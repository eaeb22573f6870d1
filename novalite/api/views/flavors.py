"""Flavor representations per microversion."""

from novalite.api import common


def basic(req, flavor: dict) -> dict:
    out = {'id': flavor['flavorid'], 'name': flavor['name'],
           'links': common.links(req, 'flavors', flavor['flavorid'])}
    if common.mv_at_least(req, '2.55'):
        out['description'] = flavor.get('description')
    return out


def full(req, flavor: dict, show_extra_specs: bool) -> dict:
    out = basic(req, flavor)
    swap = flavor.get('swap') or 0
    out.update({
        'ram': flavor['memory_mb'], 'disk': flavor['root_gb'], 'vcpus': flavor['vcpus'],
        'swap': swap if common.mv_at_least(req, '2.75') else (swap or ''),
        'OS-FLV-EXT-DATA:ephemeral': flavor.get('ephemeral_gb') or 0,
        'os-flavor-access:is_public': bool(flavor.get('is_public', True)),
    })
    if not common.mv_at_least(req, '2.102'):
        out['OS-FLV-DISABLED:disabled'] = bool(flavor.get('disabled'))
        out['rxtx_factor'] = flavor.get('rxtx_factor') or 1.0
    if common.mv_at_least(req, '2.61') and show_extra_specs:
        out['extra_specs'] = dict(flavor.get('extra_specs') or {})
    return out
