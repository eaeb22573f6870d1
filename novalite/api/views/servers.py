"""Server representations; the vm_state/task_state -> status table is compute.states'."""

import hashlib

from novalite.api import common
from novalite.compute import states
from novalite.db import api as db

ALL_STATUSES = states.ALL_STATUSES
status_from_state = states.status_from_state

PROGRESS_STATUSES = ('ACTIVE', 'BUILD', 'REBUILD', 'RESIZE', 'VERIFY_RESIZE', 'MIGRATING')


def instance_status(inst: dict) -> str:
    if inst.get('deleted'):
        return 'DELETED'
    return status_from_state(inst.get('vm_state'), inst.get('task_state'))


def host_id(project_id: str | None, host: str | None) -> str:
    if not host:
        return ''
    return hashlib.sha224(((project_id or '') + host).encode('utf-8')).hexdigest()


def _flavor(req, flavor: dict, show_extra_specs: bool) -> dict:
    if common.mv_at_least(req, '2.47'):
        out = {'vcpus': flavor.get('vcpus'), 'ram': flavor.get('memory_mb'),
               'disk': flavor.get('root_gb'), 'ephemeral': flavor.get('ephemeral_gb', 0),
               'swap': flavor.get('swap', 0), 'original_name': flavor.get('name')}
        if show_extra_specs:
            out['extra_specs'] = dict(flavor.get('extra_specs') or {})
        return out
    return {'id': flavor.get('flavorid'),
            'links': [{'rel': 'bookmark',
                       'href': common.bookmark_href(req, 'flavors', flavor.get('flavorid'))}]}


def _image(req, inst: dict, images: dict) -> dict | str:
    ref = inst.get('image_ref')
    if not ref:
        return ''
    out = {'id': ref, 'links': [{'rel': 'bookmark',
                                 'href': common.bookmark_href(req, 'images', ref)}]}
    if common.mv_at_least(req, '2.98'):
        image = images.get(ref)
        out['properties'] = {k: str(v) for k, v in
                             ((image or {}).get('properties') or {}).items()}
    return out


def _fault(req, fault: dict | None, is_admin: bool) -> dict | None:
    if not fault:
        return None
    out = {'code': fault['code'], 'created': common.iso_z(fault['created_at']),
           'message': fault['message']}
    if fault.get('details') and (is_admin or fault['code'] != 500):
        out['details'] = fault['details']
    return out


class ViewData:
    """Lookups shared by every server of one response (faults, images, host status)."""

    def __init__(self, req, instances: list[dict], detail: bool = True,
                 services: list[dict] | None = None):
        """``services``: the instances' hosts' compute services, when the caller has
        read them already (else they are read here if shown)."""
        self.faults = {}
        self.images: dict = {}
        self.host_status: dict = {}
        self.specs: dict = {}
        ctx = req.context
        self.is_admin = ctx.is_admin
        self.show_ext = req.app.authorizer.check(
            ctx, 'os_compute_api:os-extended-server-attributes')
        self.show_host_status = (common.mv_at_least(req, '2.16') and req.app.authorizer.check(
            ctx, 'os_compute_api:servers:show:host_status'))
        self.show_extra_specs = common.mv_at_least(req, '2.47') and req.app.authorizer.check(
            ctx, 'os_compute_api:os-flavor-extra-specs:index')
        if not detail:
            return
        uuids = [i['uuid'] for i in instances
                 if instance_status(i) in ('ERROR', 'DELETED')]
        if uuids:
            self.faults = db.fault_get_latest(uuids)
        if common.mv_at_least(req, '2.98'):
            for ref in {i.get('image_ref') for i in instances if i.get('image_ref')}:
                try:
                    self.images[ref] = db.image_get(ref)
                except Exception:  # noqa: BLE001 - a deleted image shows no properties
                    self.images[ref] = None
        if self.show_host_status:
            self.host_status = _host_statuses(req, {i.get('host') for i in instances},
                                              services)
        if common.mv_at_least(req, '2.96'):
            for inst in instances:
                self.specs[inst['uuid']] = db.request_spec_get(inst['uuid']) or {}


def _host_statuses(req, hosts, services=None) -> dict:
    out = {}
    hosts = {h for h in hosts if h}
    if not hosts:
        return out
    down_time = req.app.conf.service_down_time
    if services is None:
        services = db.service_get_all(host=hosts, binary='novalite-compute')
    services = {s['host']: s for s in services}
    for host in hosts:
        svc = services.get(host)
        if svc is None:
            out[host] = 'UNKNOWN'
        elif svc.get('forced_down') or not db.service_is_up(svc, down_time):
            out[host] = 'DOWN'
        elif svc.get('disabled'):
            out[host] = 'MAINTENANCE'
        else:
            out[host] = 'UP'
    return out


def basic(req, inst: dict) -> dict:
    return {'id': inst['uuid'], 'name': inst['display_name'],
            'links': common.links(req, 'servers', inst['uuid'])}


# Keys left out of the PUT /servers/{id} response before 2.75 (Nova's update view
# shows no extension attributes there).
_EXTENSION_KEYS = ('key_name', 'config_drive', 'OS-EXT-AZ:availability_zone',
                   'OS-SRV-USG:launched_at', 'OS-SRV-USG:terminated_at', 'security_groups',
                   'OS-EXT-STS:vm_state', 'OS-EXT-STS:task_state', 'OS-EXT-STS:power_state',
                   'os-extended-volumes:volumes_attached')


def full(req, inst: dict, data: ViewData, show_server_groups: bool = False,
         update: bool = False, groups: dict | None = None) -> dict:
    """The show/detail representation at the request's microversion.

    ``update``: the PUT response, which before 2.75 carries no extension attributes.
    ``groups``: instance uuid -> its server group's uuid (or None), when the caller has
    read it already.
    """
    status = instance_status(inst)
    out = basic(req, inst)
    restricted = update and not common.mv_at_least(req, '2.75')
    out.update({
        'status': status,
        'tenant_id': inst['project_id'],
        'user_id': inst['user_id'],
        'metadata': dict(inst.get('metadata') or {}),
        'hostId': host_id(inst['project_id'], inst.get('host')),
        'image': _image(req, inst, data.images),
        'flavor': _flavor(req, inst.get('flavor') or {}, data.show_extra_specs),
        'created': common.iso_z(inst.get('created_at')),
        'updated': common.iso_z(inst.get('updated_at') or inst.get('created_at')),
        'addresses': {},
        'accessIPv4': inst.get('access_ip_v4') or '',
        'accessIPv6': inst.get('access_ip_v6') or '',
        'key_name': inst.get('key_name'),
        'config_drive': inst.get('config_drive') or '',
        'OS-DCF:diskConfig': 'AUTO' if inst.get('auto_disk_config') else 'MANUAL',
        'OS-EXT-AZ:availability_zone': inst.get('availability_zone') or '',
        'OS-SRV-USG:launched_at': _usage_ts(inst.get('launched_at')),
        'OS-SRV-USG:terminated_at': _usage_ts(inst.get('terminated_at')),
        'security_groups': [{'name': 'default'}],
        'OS-EXT-STS:vm_state': inst.get('vm_state'),
        'OS-EXT-STS:task_state': inst.get('task_state'),
        'OS-EXT-STS:power_state': inst.get('power_state') or 0,
        'os-extended-volumes:volumes_attached': [],
    })
    if status in PROGRESS_STATUSES:
        out['progress'] = inst.get('progress') or 0
    if status in ('ERROR', 'DELETED'):
        fault = _fault(req, data.faults.get(inst['uuid']), data.is_admin)
        if fault:
            out['fault'] = fault
    if restricted:
        for key in _EXTENSION_KEYS:
            del out[key]
    elif data.show_ext:
        out['OS-EXT-SRV-ATTR:host'] = inst.get('host')
        out['OS-EXT-SRV-ATTR:instance_name'] = 'instance-%08x' % (inst.get('id') or 0)
        out['OS-EXT-SRV-ATTR:hypervisor_hostname'] = inst.get('node')
        if common.mv_at_least(req, '2.3'):
            out.update({
                'OS-EXT-SRV-ATTR:hostname': inst.get('hostname'),
                'OS-EXT-SRV-ATTR:kernel_id': '',
                'OS-EXT-SRV-ATTR:launch_index': inst.get('launch_index') or 0,
                'OS-EXT-SRV-ATTR:ramdisk_id': '',
                'OS-EXT-SRV-ATTR:reservation_id': inst.get('reservation_id'),
                'OS-EXT-SRV-ATTR:root_device_name': '/dev/vda',
                'OS-EXT-SRV-ATTR:user_data': inst.get('user_data'),
            })
    elif common.mv_at_least(req, '2.90'):
        out['OS-EXT-SRV-ATTR:hostname'] = inst.get('hostname')
    if common.mv_at_least(req, '2.9'):
        out['locked'] = bool(inst.get('locked'))
    if data.show_host_status and not restricted:
        out['host_status'] = data.host_status.get(inst.get('host'), '')
    if common.mv_at_least(req, '2.19'):
        out['description'] = inst.get('display_description')
    if common.mv_at_least(req, '2.26'):
        out['tags'] = list(inst.get('tags') or [])
    if common.mv_at_least(req, '2.63'):
        out['trusted_image_certificates'] = None
    if show_server_groups and common.mv_at_least(req, '2.71'):
        group = groups[inst['uuid']] if groups is not None and inst['uuid'] in groups \
            else db.group_uuid_of(inst['uuid'])
        out['server_groups'] = [group] if group else []
    if common.mv_at_least(req, '2.73'):
        out['locked_reason'] = inst.get('locked_reason')
    if common.mv_at_least(req, '2.96'):
        spec = data.specs.get(inst['uuid']) or {}
        out['pinned_availability_zone'] = spec.get('availability_zone')
    if common.mv_at_least(req, '2.100'):
        spec = data.specs.get(inst['uuid']) or {}
        out['scheduler_hints'] = dict(spec.get('scheduler_hints') or {})
    return out


def _usage_ts(value):
    if value is None:
        return None
    return value.strftime('%Y-%m-%dT%H:%M:%S.%f')
