"""os-quota-sets: a project's limits (show, detail, defaults) and their update by admins."""

from novalite.api import common, faults, validation
from novalite.db import api as db

RULE = 'os_compute_api:os-quota-sets:%s'
# API name -> [quota] resource; Nova's API says path *bytes* for the path length.
_API_NAMES = {'instances': 'instances', 'cores': 'cores', 'ram': 'ram',
              'metadata_items': 'metadata_items', 'key_pairs': 'key_pairs',
              'server_groups': 'server_groups',
              'server_group_members': 'server_group_members',
              'injected_files': 'injected_files',
              'injected_file_content_bytes': 'injected_file_content_bytes',
              'injected_file_path_bytes': 'injected_file_path_length'}
# Network quotas went to Neutron; Nova still shows them (always -1 here) before 2.36.
_NETWORK_NAMES = ('fixed_ips', 'floating_ips', 'security_group_rules', 'security_groups',
                  'networks')
_INJECTED = ('injected_files', 'injected_file_content_bytes', 'injected_file_path_bytes')

_LIMIT = {'type': ['integer', 'string'], 'pattern': '^-?[0-9]+$', 'minimum': -1,
          'maximum': 2147483647}


def _names(req) -> list[str]:
    names = list(_API_NAMES)
    if common.mv_at_least(req, '2.57'):
        names = [n for n in names if n not in _INJECTED]
    if not common.mv_at_least(req, '2.36'):
        names += list(_NETWORK_NAMES)
    return names


def update_schema(names) -> dict:
    props = {name: _LIMIT for name in names if name not in _NETWORK_NAMES}
    props['force'] = {'type': ['boolean', 'string']}
    return {'type': 'object',
            'properties': {'quota_set': {'type': 'object', 'properties': props,
                                         'additionalProperties': False}},
            'required': ['quota_set'], 'additionalProperties': False}


# At the highest microversion (the OpenAPI document's).
UPDATE_SCHEMA = update_schema([n for n in _API_NAMES if n not in _INJECTED])


def _values(req, limits: dict) -> dict:
    return {name: limits.get(_API_NAMES.get(name), -1) for name in _names(req)}


def _authorize(req, action, project_id):
    ctx = req.context
    req.app.authorizer.authorize(ctx, RULE % action,
                                 {'project_id': project_id, 'user_id': ctx.user_id})


def show(req, project_id):
    common.check_params(req, {'user_id'})
    _authorize(req, 'show', project_id)
    body = dict(_values(req, db.quota_get_all(project_id)), id=project_id)
    return common.json_response({'quota_set': body})


def detail(req, project_id):
    common.check_params(req, {'user_id'})
    _authorize(req, 'detail', project_id)
    limits = _values(req, db.quota_get_all(project_id))
    usage = db.quota_usage(project_id)
    body = {name: {'limit': limit, 'in_use': usage.get(_API_NAMES.get(name), 0),
                   'reserved': 0}
            for name, limit in limits.items()}
    body['id'] = project_id
    return common.json_response({'quota_set': body})


def defaults(req, project_id):
    common.check_params(req, set())
    _authorize(req, 'defaults', project_id)
    body = dict(_values(req, db.quota_defaults()), id=project_id)
    return common.json_response({'quota_set': body})


def update(req, project_id):
    common.check_params(req, {'user_id'})
    _authorize(req, 'update', project_id)
    body = validation.require_body(req)
    validation.validate(body, update_schema(_names(req)))
    wanted = dict(body['quota_set'])
    force = str(wanted.pop('force', False)).lower() in ('true', '1', 'yes', 'on')
    usage = db.quota_usage(project_id)
    for name, value in wanted.items():
        limit = int(value)
        used = usage.get(_API_NAMES[name], 0)
        if not force and limit != -1 and limit < used:
            raise faults.bad_request(
                'Quota limit %d for %s must be greater than or equal to already used '
                'and reserved %d.' % (limit, name, used))
    for name, value in wanted.items():
        db.quota_set(project_id, _API_NAMES[name], int(value))
    return common.json_response({'quota_set': _values(req, db.quota_get_all(project_id))})


def delete(req, project_id):
    common.check_params(req, {'user_id'})
    _authorize(req, 'delete', project_id)
    db.quota_delete_all(project_id)
    return common.empty_response(202)
