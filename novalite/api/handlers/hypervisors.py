"""/os-hypervisors: compute nodes with the state of their compute service."""

import datetime
import json

from novalite import exception
from novalite.api import common, faults
from novalite.api.schemas import types
from novalite.db import api as db
from novalite.db import listing

RULE = 'os_compute_api:os-hypervisors:%s'


def _authorize(req, name):
    req.app.authorizer.authorize(req.context, RULE % name)


def _uuids(req) -> bool:
    return common.mv_at_least(req, '2.53')


def _state(req, svc) -> str:
    if svc is None:
        return 'down'
    return 'up' if db.service_is_up(svc, req.app.conf.service_down_time) else 'down'


def _uptime(node: dict, svc: dict | None) -> str | None:
    """The driver's uptime text; else one in ``uptime(1)`` form from the service age.

    Before 2.88 the uptime API promises a string (tempest checks it).
    """
    if node.get('uptime'):
        return node['uptime']
    started = (svc or {}).get('created_at')
    if started is None:
        return None
    now = datetime.datetime.utcnow()
    up = max(0, int((now - started).total_seconds()))
    days, rest = divmod(up, 86400)
    return ' %s up %d days, %d:%02d,  0 users,  load average: 0.00, 0.00, 0.00' % (
        now.strftime('%H:%M:%S'), days, rest // 3600, rest % 3600 // 60)


def _basic(req, node: dict, svc: dict | None) -> dict:
    return {'id': node['uuid'] if _uuids(req) else node['id'],
            'hypervisor_hostname': node['hypervisor_hostname'],
            'state': _state(req, svc),
            'status': 'disabled' if svc and svc.get('disabled') else 'enabled'}


def _claimed(node: dict, usage: dict | None = None) -> dict:
    """Usage as the claims leave it, the moment they are made (Nova's resource tracker
    updates the node at claim time): the node's allocations, plus the reserved memory
    and disk as Nova counts them. The periodic report is only the fallback for a node
    that has no resource provider yet. ``usage``: listing.provider_usage() of a list
    of nodes, read once for all of them."""
    if usage is None:
        usage = listing.provider_usage([node['uuid']])
    found = usage.get(node['uuid'])
    if found is None:
        return {'vcpus_used': node.get('vcpus_used') or 0,
                'memory_mb_used': node.get('memory_mb_used') or 0,
                'local_gb_used': node.get('local_gb_used') or 0}
    used, reserved = found
    return {'vcpus_used': used.get('VCPU', 0),
            'memory_mb_used': reserved.get('MEMORY_MB', 0) + used.get('MEMORY_MB', 0),
            'local_gb_used': reserved.get('DISK_GB', 0) + used.get('DISK_GB', 0)}


def _detail(req, node: dict, svc: dict | None, usage: dict | None = None) -> dict:
    out = _basic(req, node, svc)
    out.update({
        'hypervisor_type': node.get('hypervisor_type'),
        'hypervisor_version': node.get('hypervisor_version') or 0,
        'host_ip': node.get('host_ip'),
        'service': {'id': (svc['uuid'] if _uuids(req) else svc['id']) if svc else None,
                    'host': node['host'],
                    'disabled_reason': svc.get('disabled_reason') if svc else None},
    })
    if common.mv_at_least(req, '2.88'):
        out['uptime'] = _uptime(node, svc)
        return out
    cpu_info = node.get('cpu_info') or {}
    used = _claimed(node, usage)
    free_ram = (node.get('memory_mb') or 0) - used['memory_mb_used']
    free_disk = (node.get('local_gb') or 0) - used['local_gb_used']
    out.update({
        'vcpus': node.get('vcpus') or 0, 'memory_mb': node.get('memory_mb') or 0,
        'local_gb': node.get('local_gb') or 0, **used, 'free_ram_mb': free_ram,
        'free_disk_gb': free_disk, 'current_workload': 0,
        'running_vms': node.get('running_vms') or 0, 'disk_available_least': free_disk,
        'cpu_info': cpu_info if common.mv_at_least(req, '2.28') else json.dumps(cpu_info),
    })
    return out


def _usage_of(req, pairs) -> dict | None:
    """The claims of every listed node, read at once (none needed from 2.88 on)."""
    if common.mv_at_least(req, '2.88'):
        return None
    return listing.provider_usage([node['uuid'] for node, _svc in pairs])


def _with_servers_param(req) -> bool:
    """with_servers (2.53+): one of the spellings of Nova's boolean type, else 400."""
    value = common.single(req, 'with_servers')
    if value is None:
        return False
    if value not in types.BOOLEAN_STRINGS:
        raise faults.bad_request("Invalid input for query parameters with_servers. Value: "
                                 "%s. '%s' is not one of %s"
                                 % (value, value, types.BOOLEAN_STRINGS))
    return types.to_bool(value)


def _with_servers(req, out: dict, node: dict, always: bool) -> None:
    servers = listing.instances_on_node(node['host'], node['hypervisor_hostname'])
    if servers or always:
        out['servers'] = servers


def _list(req, detail: bool):
    _authorize(req, 'list-detail' if detail else 'list')
    allowed = {'limit', 'marker', 'hypervisor_hostname_pattern', 'with_servers'}
    if common.mv_at_least(req, '2.75'):
        common.check_params(req, allowed)
    limit = marker = pattern = None
    with_servers = False
    if common.mv_at_least(req, '2.33'):
        limit, marker = common.paging(req, req.app.conf)
        if marker is not None and not _uuids(req):
            marker = common.int_id(marker)
            if marker is None:
                raise faults.bad_request('marker [%s] not found' % common.single(req,
                                                                                  'marker'))
    if _uuids(req):
        pattern = common.single(req, 'hypervisor_hostname_pattern')
        with_servers = _with_servers_param(req)
        if pattern is not None and ('limit' in req.GET or 'marker' in req.GET):
            raise faults.bad_request('Paging over hypervisors with the '
                                     'hypervisor_hostname_pattern query parameter is not '
                                     'supported.')
    with faults.remap({exception.Invalid: 400}):
        pairs = listing.hypervisors(hostname_pattern=pattern, limit=limit, marker=marker,
                                    marker_key='uuid' if _uuids(req) else 'id')
    if pattern is not None and not pairs:
        raise faults.not_found('No hypervisor matching %s could be found.' % pattern)
    items = []
    usage = _usage_of(req, pairs) if detail else None
    for node, svc in pairs:
        out = _detail(req, node, svc, usage) if detail else _basic(req, node, svc)
        if with_servers:
            _with_servers(req, out, node, common.mv_at_least(req, '2.75'))
        items.append(out)
    body = {'hypervisors': items}
    if limit is not None:
        link = common.next_link(req, 'os-hypervisors/detail' if detail else 'os-hypervisors',
                                items, limit)
        if link:
            body['hypervisors_links'] = link
    return common.json_response(body)


def index(req):
    return _list(req, detail=False)


def detail(req):
    return _list(req, detail=True)


def _load(req, hypervisor_id):
    if _uuids(req):
        if not common.is_uuid(hypervisor_id):
            raise faults.bad_request('Invalid uuid %s' % hypervisor_id)
        key = str(hypervisor_id)
    else:
        key = common.int_id(hypervisor_id)
        if key is None:
            raise faults.not_found('Hypervisor with ID %s could not be found.'
                                   % hypervisor_id)
    try:
        node = db.compute_node_get(key)
    except exception.ComputeNodeNotFound:
        raise faults.not_found('Hypervisor with ID %s could not be found.' % hypervisor_id)
    svc = None
    if node.get('service_id') is not None:
        try:
            svc = db.service_get(node['service_id'])
        except exception.ServiceNotFound:
            svc = None
    return node, svc


def show(req, hypervisor_id):
    _authorize(req, 'show')
    with_servers = False
    if _uuids(req):
        if common.mv_at_least(req, '2.75'):
            common.check_params(req, {'with_servers'})
        with_servers = _with_servers_param(req)
    node, svc = _load(req, hypervisor_id)
    out = _detail(req, node, svc)
    if with_servers:
        _with_servers(req, out, node, common.mv_at_least(req, '2.75'))
    return common.json_response({'hypervisor': out})


def uptime(req, hypervisor_id):
    _authorize(req, 'uptime')
    node, svc = _load(req, hypervisor_id)
    out = _basic(req, node, svc)
    out['uptime'] = _uptime(node, svc)
    return common.json_response({'hypervisor': out})


def statistics(req):
    _authorize(req, 'statistics')
    keys = ('vcpus', 'memory_mb', 'local_gb', 'vcpus_used', 'memory_mb_used',
            'local_gb_used', 'free_ram_mb', 'free_disk_gb', 'current_workload',
            'running_vms', 'disk_available_least')
    stats = dict.fromkeys(keys, 0)
    pairs = listing.hypervisors()
    usage = _usage_of(req, pairs)
    for node, svc in pairs:
        detail = _detail(req, node, svc, usage)
        for key in keys:
            stats[key] += detail[key]
    stats['count'] = len(pairs)
    return common.json_response({'hypervisor_statistics': stats})


def _by_pattern(req, pattern, servers: bool):
    pairs = listing.hypervisors(hostname_pattern=pattern)
    if not pairs:
        raise faults.not_found('No hypervisor matching %s could be found.' % pattern)
    items = []
    for node, svc in pairs:
        out = _basic(req, node, svc)
        if servers:
            _with_servers(req, out, node, False)
        items.append(out)
    return common.json_response({'hypervisors': items})


def search(req, pattern):
    _authorize(req, 'search')
    return _by_pattern(req, pattern, servers=False)


def servers(req, pattern):
    _authorize(req, 'servers')
    return _by_pattern(req, pattern, servers=True)
