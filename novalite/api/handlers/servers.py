"""GET/POST /servers, GET/PUT/DELETE /servers/{id}."""

import base64
import binascii
import contextlib
import secrets
import string

from novalite import exception
from novalite.api import common, faults, validation
from novalite.api.schemas import servers as schemas
from novalite.api.schemas import types
from novalite.api.views import servers as views
from novalite.db import api as db
from novalite.db import listing

RULE = 'os_compute_api:servers:%s'

_SORT_DIRS = ('asc', 'desc')
_ALL_FILTERS = {
    'user_id', 'project_id', 'tenant_id', 'launch_index', 'image_ref', 'image', 'kernel_id',
    'ramdisk_id', 'hostname', 'key_name', 'power_state', 'vm_state', 'task_state', 'host',
    'node', 'flavor', 'reservation_id', 'launched_at', 'terminated_at', 'availability_zone',
    'name', 'display_name', 'description', 'display_description', 'locked_by', 'uuid',
    'root_device_name', 'config_drive', 'access_ip_v4', 'access_ip_v6', 'ip', 'ip6', 'tag',
    'tags', 'tags-any', 'not-tags', 'not-tags-any', 'deleted', 'status', 'changes-since',
    'changes-before', 'all_tenants', 'sort_key', 'sort_dir', 'limit', 'marker', 'locked',
    'created_at', 'updated_at', 'progress', 'soft_deleted',
}


def load_server(req, server_id: str, read_deleted: bool = False) -> dict:
    """The server, 404 when it does not exist or belongs to another project."""
    ctx = req.context
    if read_deleted:
        try:
            inst = db.instance_get(server_id, read_deleted='yes')
        except exception.InstanceNotFound:
            raise faults.not_found('Instance %s could not be found.' % server_id)
        if not ctx.is_admin and inst['project_id'] != ctx.project_id:
            raise faults.not_found('Instance %s could not be found.' % server_id)
        return inst
    return req.app.compute_api.get(ctx, server_id)


def target(inst: dict) -> dict:
    return {'project_id': inst['project_id'], 'user_id': inst['user_id']}


def authorize(req, rule: str, inst: dict | None = None) -> None:
    req.app.authorizer.authorize(req.context, rule, target(inst) if inst else None)


# ---------------------------------------------------------------- list

def _non_admin_filters(req) -> set[str]:
    allowed = {'reservation_id', 'name', 'status', 'image', 'flavor', 'ip', 'changes-since',
               'all_tenants'}
    for version, names in (('2.5', {'ip6'}),
                           ('2.26', {'tags', 'tags-any', 'not-tags', 'not-tags-any'}),
                           ('2.66', {'changes-before'}), ('2.73', {'locked'}),
                           ('2.83', {'availability_zone', 'config_drive', 'key_name',
                                     'created_at', 'launched_at', 'terminated_at',
                                     'power_state', 'task_state', 'vm_state', 'progress',
                                     'user_id'}),
                           ('2.90', {'hostname'})):
        if common.mv_at_least(req, version):
            allowed |= names
    return allowed


def _csv(value: str) -> list[str]:
    return [v.strip() for v in value.split(',') if v.strip()]


def _sort(req, is_admin: bool) -> tuple[list[str], list[str]]:
    keys = req.GET.getall('sort_key')
    dirs = req.GET.getall('sort_dir')
    for key in keys:
        if key not in listing.SERVER_SORT_KEYS:
            raise faults.bad_request('Invalid sort_key %s' % key)
        if key in ('host', 'node') and not is_admin:
            raise faults.forbidden('Only administrators can sort servers by %s' % key)
    for direction in dirs:
        if direction not in _SORT_DIRS:
            raise faults.bad_request('Invalid sort_dir %s' % direction)
    if not keys:
        return ['created_at'], [dirs[0] if dirs else 'desc']
    dirs = (dirs + [dirs[-1] if dirs else 'desc'] * len(keys))[:len(keys)]
    return keys, dirs


def _build_filters(req):
    """(filters for listing.servers, wanted statuses or None); raises 400/403."""
    ctx = req.context
    params = req.GET
    authorizer = req.app.authorizer
    all_filters = authorizer.check(ctx, RULE % 'allow_all_filters')
    allowed = _ALL_FILTERS if all_filters else _non_admin_filters(req)
    present = {k for k in params.keys() if k in allowed}
    filters: dict = {'exact': {}, 'regex': {}, 'since': {}}

    if 'all_tenants' in present:
        authorizer.authorize(ctx, RULE % ('detail:get_all_tenants' if req.is_detail
                                          else 'index:get_all_tenants'))
        project = common.single(req, 'project_id') or common.single(req, 'tenant_id')
        filters['project_id'] = project if all_filters else None
    elif ctx.project_id is None:
        # Only a project-scoped caller has servers of its own; no project must never
        # turn into "no project filter".
        raise faults.forbidden('Listing servers needs a project-scoped token.')
    else:
        filters['project_id'] = ctx.project_id

    statuses = None
    if 'status' in present:
        statuses = set()
        for value in params.getall('status'):
            # Any case of the ASCII names; str.upper() would also turn a dotless
            # "\u0131" into an "I".
            status = value.upper() if value.isascii() else ''
            if status not in views.ALL_STATUSES:
                if common.mv_at_least(req, '2.38'):
                    raise faults.bad_request('Invalid status value')
                return None, {'__none__'}
            if status == 'DELETED' and not ctx.is_admin:
                raise faults.forbidden('Only administrators may list deleted instances')
            statuses.add(status)
    vm_states = params.getall('vm_state') if 'vm_state' in present else []
    if 'deleted' in [v.lower() for v in vm_states] and not ctx.is_admin:
        raise faults.forbidden('Only administrators may list deleted instances')

    since = before = None
    if 'changes-since' in present:
        since = common.parse_time(req, 'changes-since', common.single(req, 'changes-since'))
        filters['changes_since'] = since
    if 'changes-before' in present:
        before = common.parse_time(req, 'changes-before',
                                   common.single(req, 'changes-before'))
        filters['changes_before'] = before
    if since and before and before < since:
        raise faults.bad_request('The value of changes-since must be less than or equal '
                                 'to changes-before.')
    deleted = False if since is None and before is None else None
    if 'deleted' in present:
        deleted = common.bool_param(req, 'deleted', default=False)
    if statuses and 'DELETED' in statuses:
        deleted = True if statuses == {'DELETED'} else None
    if vm_states and 'deleted' in [v.lower() for v in vm_states]:
        deleted = None
    filters['deleted'] = deleted

    for param, column in (('reservation_id', 'reservation_id'), ('name', 'display_name'),
                          ('availability_zone', 'availability_zone'),
                          ('key_name', 'key_name'), ('hostname', 'hostname'),
                          ('node', 'node'), ('config_drive', 'config_drive'),
                          ('description', 'display_description')):
        if param in present:
            filters['regex'][column] = common.single(req, param)
    for param, column in (('host', 'host'), ('user_id', 'user_id'), ('uuid', 'uuid'),
                          ('locked_by', 'locked_by')):
        if param in present:
            filters['exact'][column] = common.single(req, param)
    if 'image' in present:
        filters['exact']['image_ref'] = common.single(req, 'image').rstrip('/').split('/')[-1]
    if 'flavor' in present:
        filters['flavorid'] = common.single(req, 'flavor').rstrip('/').split('/')[-1]
    if vm_states:
        filters['exact']['vm_state'] = [v.lower() for v in vm_states]
    if 'task_state' in present:
        filters['exact']['task_state'] = [None if v.lower() in ('none', 'null') else v
                                          for v in params.getall('task_state')]
    if 'power_state' in present:
        try:
            filters['exact']['power_state'] = [int(v) for v in params.getall('power_state')]
        except ValueError:
            raise faults.bad_request('Invalid power_state value')
    if 'progress' in present:
        filters['exact']['progress'] = common.int_param(req, 'progress')
    if 'locked' in present:
        filters['exact']['locked'] = common.bool_param(req, 'locked', strict=True)
    for column in ('created_at', 'launched_at', 'terminated_at'):
        if column in present:
            filters['since'][column] = common.parse_time(req, column,
                                                         common.single(req, column))
    for param, key in (('tags', 'tags'), ('tag', 'tags'), ('tags-any', 'tags_any'),
                       ('not-tags', 'not_tags'), ('not-tags-any', 'not_tags_any')):
        if param in present:
            filters[key] = _csv(common.single(req, param))
    if 'ip' in present or 'ip6' in present:
        filters['ip_nomatch'] = True  # no networking: no server has addresses
    return filters, statuses


def _list(req, detail: bool):
    ctx = req.context
    req.is_detail = detail
    req.app.authorizer.authorize(ctx, RULE % ('detail' if detail else 'index'))
    if common.mv_at_least(req, '2.75'):
        common.check_params(req, _ALL_FILTERS)
    limit, marker = common.paging(req, req.app.conf)
    filters, statuses = _build_filters(req)
    if filters is None:
        instances = []
    else:
        sort_keys, sort_dirs = _sort(req, ctx.is_admin)
        predicate = ((lambda i: views.instance_status(i) in statuses) if statuses else None)
        with faults.remap({exception.Invalid: 400}):
            instances = listing.servers(filters, sort_keys, sort_dirs, limit=limit,
                                        marker=marker, predicate=predicate)
    if detail:
        data = views.ViewData(req, instances)
        items = [views.full(req, i, data) for i in instances]
        path = 'servers/detail'
    else:
        items = [views.basic(req, i) for i in instances]
        path = 'servers'
    body = {'servers': items}
    next_link = common.next_link(req, path, items, limit)
    if next_link:
        body['servers_links'] = next_link
    return common.json_response(body)


def index(req):
    return _list(req, detail=False)


def detail(req):
    return _list(req, detail=True)


def show(req, server_id):
    inst, service, group = req.app.compute_api.get_for_view(req.context, server_id)
    authorize(req, RULE % 'show', inst)
    data = views.ViewData(req, [inst], services=[service] if service else [])
    return common.json_response(
        {'server': views.full(req, inst, data, show_server_groups=True,
                              groups={inst['uuid']: group})})


# ---------------------------------------------------------------- create

def _ref_id(value) -> str:
    return str(value).rstrip('/').split('/')[-1]


def _image_for(req, server: dict):
    has_bdm = bool(server.get('block_device_mapping') or
                   server.get('block_device_mapping_v2'))
    ref = server.get('imageRef')
    if not ref:
        if has_bdm:
            return None
        raise faults.bad_request('Missing imageRef attribute')
    image_id = _ref_id(ref)
    if not common.is_uuid(image_id):
        raise faults.bad_request('Invalid imageRef provided.')
    try:
        return db.image_get(image_id)
    except exception.ImageNotFound:
        raise faults.bad_request('Can not find requested image')


def _flavor_for(req, ref) -> dict:
    flavor_id = _ref_id(ref)
    try:
        flavor = db.flavor_get_by_flavorid(flavor_id, include_disabled=False)
    except exception.FlavorNotFound:
        raise faults.bad_request('Flavor %s could not be found.' % flavor_id)
    ctx = req.context
    if (not flavor['is_public'] and not ctx.is_admin
            and not listing.flavor_has_access(flavor['id'], ctx.project_id)):
        raise faults.bad_request('Flavor %s could not be found.' % flavor_id)
    return flavor


def _check_image_fits(req, flavor: dict, image: dict | None) -> None:
    if image is None:
        return
    if image.get('status', 'active') != 'active':
        raise faults.bad_request('Image %s is not active.' % image['uuid'])
    if flavor['memory_mb'] < (image.get('min_ram') or 0):
        raise faults.bad_request("Flavor's memory is too small for requested image.")
    root_gb = flavor['root_gb']
    if root_gb:
        size_gb = (image.get('size') or 0) / float(1024 ** 3)
        if size_gb > root_gb or (image.get('min_disk') or 0) > root_gb:
            raise faults.bad_request("Flavor's disk is too small for requested image.")
    else:
        req.app.authorizer.authorize(req.context, RULE % 'create:zero_disk_flavor')


def _parse_az(req, value: str | None):
    """``az``, ``az:host``, ``az:host:node``, ``az::node`` -> (az, host, node)."""
    if not value:
        return None, None, None
    parts = value.split(':')
    if len(parts) > 3:
        raise faults.bad_request('Invalid availability_zone %s' % value)
    az = parts[0] or None
    host = parts[1] if len(parts) > 1 and parts[1] else None
    node = parts[2] if len(parts) > 2 and parts[2] else None
    if host or node:
        req.app.authorizer.authorize(req.context, RULE % 'create:forced_host')
    return az, host, node


def _check_networks(server: dict) -> None:
    networks = server.get('networks')
    if not isinstance(networks, list):
        return
    for net in networks:
        net_id = net.get('uuid')
        if net_id is not None and not common.is_uuid(net_id):
            raise faults.bad_request('Bad networks format: network uuid is not in proper '
                                     'format (%s)' % net_id)


def _hints(body: dict) -> dict:
    hints = dict(body.get('os:scheduler_hints') or body.get('OS-SCH-HNT:scheduler_hints')
                 or {})
    for key in ('same_host', 'different_host'):
        if isinstance(hints.get(key), str):
            hints[key] = [hints[key]]
    return hints


def new_password() -> str:
    alphabet = string.ascii_letters + string.digits
    return ''.join(secrets.choice(alphabet) for _ in range(12))


def _admin_pass(server: dict) -> str:
    if server.get('adminPass'):
        return server['adminPass']
    return new_password()


def create(req):
    ctx = req.context
    body = validation.require_body(req)
    validation.validate(body, schemas.create(req.mv))
    server = body['server']
    req.app.authorizer.authorize(ctx, RULE % 'create')
    flavor = _flavor_for(req, server['flavorRef'])
    image = _image_for(req, server)
    _check_image_fits(req, flavor, image)
    _check_networks(server)
    az, host, node = _parse_az(req, server.get('availability_zone'))
    if server.get('host') or server.get('hypervisor_hostname'):
        req.app.authorizer.authorize(ctx, 'compute:servers:create:requested_destination')
        try:
            db.compute_node_get_by_host_and_node(server.get('host') or '',
                                                 server.get('hypervisor_hostname'))
        except exception.ComputeHostNotFound:
            if server.get('host'):
                raise faults.bad_request('Compute host %s could not be found.'
                                         % server['host'])
            raise faults.bad_request('Compute host %s could not be found.'
                                     % server['hypervisor_hostname'])
        host = server.get('host') or host
        node = server.get('hypervisor_hostname') or node
    _check_metadata_quota(ctx, server.get('metadata'))
    min_count = int(server.get('min_count', 1))
    max_count = int(server.get('max_count', min_count))
    if min_count > max_count:
        raise faults.bad_request('min_count must be <= max_count')
    user_data = server.get('user_data')
    if user_data is not None:
        try:
            base64.b64decode(user_data, validate=True)
        except (binascii.Error, ValueError):
            raise faults.bad_request('Userdata content cannot be decoded')
    admin_pass = _admin_pass(server)
    with faults.remap({exception.FlavorNotFound: 400, exception.ImageNotFound: 400,
                       exception.ComputeHostNotFound: 400,
                       exception.InstanceGroupNotFound: 400}), _group_quota():
        instances, reservation_id = req.app.compute_api.create(
            ctx, name=server['name'], flavor=flavor, image=image, min_count=min_count,
            max_count=max_count, availability_zone=az, host=host, node=node,
            metadata=server.get('metadata'), scheduler_hints=_hints(body),
            key_name=server.get('key_name'), description=server.get('description'),
            user_data=user_data, access_ip_v4=server.get('accessIPv4'),
            access_ip_v6=server.get('accessIPv6'),
            config_drive=types.to_bool(server.get('config_drive', False)),
            hostname=server.get('hostname'), tags=server.get('tags'),
            admin_pass=admin_pass)
    if types.to_bool(server.get('return_reservation_id', False)):
        return common.json_response({'reservation_id': reservation_id}, status=202)
    inst = instances[0]
    out = {'id': inst['uuid'], 'links': common.links(req, 'servers', inst['uuid']),
           'OS-DCF:diskConfig': server.get('OS-DCF:diskConfig', 'MANUAL'),
           'security_groups': server.get('security_groups') or [{'name': 'default'}]}
    if req.app.conf.api.enable_instance_password:
        out['adminPass'] = admin_pass
    return common.json_response({'server': out}, status=202,
                                headers={'Location': out['links'][0]['href']})


@contextlib.contextmanager
def _group_quota():
    """A full server group answers with Nova's words (403)."""
    try:
        yield
    except exception.OverQuota as e:
        if e.kwargs.get('overs') == 'server_group_members':
            raise faults.forbidden('Quota exceeded, too many servers in group')
        raise


def _check_metadata_quota(ctx, metadata):
    """The schema bounds each key and value; the project's metadata_items the count."""
    if not metadata:
        return
    allowed = db.quota_get_all(ctx.project_id).get('metadata_items', -1)
    if 0 <= allowed < len(metadata):
        raise faults.forbidden('Maximum number of metadata items exceeds %d' % allowed)


# ---------------------------------------------------------------- update / delete

_UPDATE_FIELDS = {'name': 'display_name', 'description': 'display_description',
                  'accessIPv4': 'access_ip_v4', 'accessIPv6': 'access_ip_v6',
                  'hostname': 'hostname'}


def update(req, server_id):
    body = validation.require_body(req)
    validation.validate(body, schemas.update(req.mv))
    inst = load_server(req, server_id)
    authorize(req, RULE % 'update', inst)
    values = {col: body['server'][key] for key, col in _UPDATE_FIELDS.items()
              if key in body['server']}
    if 'OS-DCF:diskConfig' in body['server']:
        values['auto_disk_config'] = body['server']['OS-DCF:diskConfig'] == 'AUTO'
    for key in ('access_ip_v4', 'access_ip_v6'):
        if key in values and values[key] == '':
            values[key] = None
    if values:
        updated = req.app.compute_api.update(req.context, inst, values)
        inst = updated if isinstance(updated, dict) else load_server(req, server_id)
    return common.json_response(
        {'server': views.full(req, inst, views.ViewData(req, [inst]),
                              show_server_groups=True, update=True)})


def delete(req, server_id):
    inst = load_server(req, server_id)
    authorize(req, RULE % 'delete', inst)
    req.app.compute_api.delete(req.context, inst)
    return common.empty_response(204)
