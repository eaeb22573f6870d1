"""The OpenAPI 3.1 description of the compute API.

Built from the routes table, the request schemas the handlers validate with (at the
highest microversion) and the response schemas in ``schemas.responses``. The
committed copy lives next to this module as ``openapi.json`` (regenerate it with
``tools/gen_openapi.py``) and is served at ``GET /v2.1/openapi.json`` without a token.

Microversions: bodies are described at the highest advertised version; each
operation carries ``x-openstack-microversion`` with the range it exists in (outside it
the API answers 404).
"""

import copy
import json
import os
import re

from novalite.api import common, microversion, router
from novalite.api.handlers import images, quota_sets, services
from novalite.api.handlers import server_actions as actions
from novalite.api.schemas import flavors as flavor_schemas
from novalite.api.schemas import host_drains as drain_schemas
from novalite.api.schemas import responses as r
from novalite.api.schemas import server_actions as action_schemas
from novalite.api.schemas import server_groups as group_schemas
from novalite.api.schemas import servers as server_schemas
from novalite.api.schemas import types
from novalite.api.views import servers as server_views
from novalite.compute import states
from novalite.db import listing

PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'openapi.json')
MAX = microversion.MAX_VERSION


def _str(name, description=None, schema=None):
    out = {'name': name, 'in': 'query', 'required': False,
           'schema': schema or {'type': 'string'}}
    if description:
        out['description'] = description
    return out


def _int(name, minimum=0):
    return {'name': name, 'in': 'query', 'required': False,
            'schema': {'type': 'integer', 'minimum': minimum, 'maximum': common.MAX_INT}}


def _enum(name, values):
    return _str(name, schema={'type': 'string', 'enum': sorted(values)})


def _any_case(name, values):
    """A parameter the server takes in any ASCII case: an ECMA-262 pattern (no inline
    flags there), each letter as a two-letter class."""
    words = [''.join('[%s%s]' % (c.lower(), c.upper()) if c.isalpha() else re.escape(c)
                     for c in value) for value in sorted(values)]
    return _str(name, schema={'type': 'string', 'pattern': '^(%s)$' % '|'.join(words)})


# What the handlers accept, so that generated values are ones the server takes: an
# empty or free-form value for these is a 400, as in Nova.
TIME = {'type': 'string', 'format': 'date-time'}
BOOL = sorted(common.TRUE_STRINGS + common.FALSE_STRINGS)
# Nova types with_servers as its boolean: exactly these spellings.
WITH_SERVERS = _enum('with_servers', types.BOOLEAN_STRINGS)
PAGING = [_int('limit'), _str('marker')]
SERVER_QUERY = PAGING + [_str(n) for n in (
    'name', 'image', 'flavor', 'reservation_id', 'all_tenants', 'project_id', 'host',
    'tags', 'tags-any', 'not-tags', 'not-tags-any', 'deleted')] + [
    _any_case('status', server_views.ALL_STATUSES), _str('changes-since', schema=TIME),
    _str('changes-before', schema=TIME), _enum('sort_key', listing.SERVER_SORT_KEYS),
    _enum('sort_dir', ('asc', 'desc')), _any_case('locked', BOOL)]
FLAVOR_QUERY = PAGING + [
    _enum('sort_key', listing.FLAVOR_SORT_KEYS), _enum('sort_dir', ('asc', 'desc')),
    _int('minRam'), _int('minDisk'),
    _any_case('is_public', BOOL + ['none'])]
MIGRATION_QUERY = PAGING + [_str(n) for n in (
    'instance_uuid', 'status', 'migration_type', 'host', 'source_compute', 'user_id',
    'project_id', 'hidden')] + [_str('changes-since', schema=TIME),
                                _str('changes-before', schema=TIME)]
ACTION_QUERY = PAGING + [_str('changes-since', schema=TIME),
                         _str('changes-before', schema=TIME)]
HYPERVISOR_QUERY = PAGING + [_str('hypervisor_hostname_pattern'),
                             WITH_SERVERS]
# Path ids the server parses: UUIDs from 2.53 for services and hypervisors, integers for
# server migrations; others are looked up as given (404 when unknown).
PATH_SCHEMAS = {'service_id': {'type': 'string', 'format': 'uuid'},
                'hypervisor_id': {'type': 'string', 'format': 'uuid'},
                'migration_id': {'type': 'integer', 'minimum': 0,
                                 'maximum': common.MAX_INT}}


def _action_body() -> dict:
    """``POST /servers/{id}/action``: exactly one of the known action keys."""
    choices = []
    for key, (_fn, schema, _min) in actions.ACTIONS.items():
        if callable(schema):
            schema = schema(MAX)
        if schema is None:
            schema = {'type': 'object', 'properties': {key: {}}, 'required': [key],
                      'additionalProperties': False}
        choices.append(schema)
    return {'oneOf': choices}


# (path, method) -> (operationId, success status, response schema or None,
#                    request schema or None, query parameters)
OPERATIONS = {
    ('', 'GET'): ('getVersionNoSlash', 200, r.VERSION_DOC, None, []),
    ('/', 'GET'): ('getVersion', 200, r.VERSION_DOC, None, []),
    ('/servers', 'GET'): ('listServers', 200, r.SERVERS_BASIC, None, SERVER_QUERY),
    ('/servers', 'POST'): ('createServer', 202, r.SERVER_CREATED,
                           server_schemas.create(MAX), []),
    ('/servers/detail', 'GET'): ('listServersDetail', 200, r.SERVERS_DETAIL, None,
                                 SERVER_QUERY),
    ('/servers/{server_id}', 'GET'): ('showServer', 200, r.SERVER_ONE, None, []),
    ('/servers/{server_id}', 'PUT'): ('updateServer', 200, r.SERVER_ONE,
                                      server_schemas.update(MAX), []),
    ('/servers/{server_id}', 'DELETE'): ('deleteServer', 204, None, None, []),
    ('/servers/{server_id}/action', 'POST'): (
        'serverAction', [200, 202, 204], None, _action_body(), []),
    ('/servers/{server_id}/migrations', 'GET'): (
        'listServerMigrations', 200, r.SERVER_MIGRATIONS, None, []),
    ('/servers/{server_id}/migrations/{migration_id}', 'GET'): (
        'showServerMigration', 200, r.SERVER_MIGRATION_ONE, None, []),
    ('/servers/{server_id}/migrations/{migration_id}', 'DELETE'): (
        'abortServerMigration', 202, None, None, []),
    ('/servers/{server_id}/migrations/{migration_id}/action', 'POST'): (
        'forceCompleteServerMigration', 202, None, action_schemas.FORCE_COMPLETE, []),
    ('/servers/{server_id}/os-instance-actions', 'GET'): (
        'listInstanceActions', 200, r.ACTIONS, None, ACTION_QUERY),
    ('/servers/{server_id}/os-instance-actions/{request_id}', 'GET'): (
        'showInstanceAction', 200, r.ACTION_ONE, None, []),
    ('/flavors', 'GET'): ('listFlavors', 200, r.FLAVORS_BASIC, None, FLAVOR_QUERY),
    ('/flavors', 'POST'): ('createFlavor', 200, r.FLAVOR_ONE,
                           flavor_schemas.create(MAX), []),
    ('/flavors/detail', 'GET'): ('listFlavorsDetail', 200, r.FLAVORS_DETAIL, None,
                                 FLAVOR_QUERY),
    ('/flavors/{flavor_id}', 'GET'): ('showFlavor', 200, r.FLAVOR_ONE, None, []),
    ('/flavors/{flavor_id}', 'DELETE'): ('deleteFlavor', 202, None, None, []),
    ('/flavors/{flavor_id}', 'PUT'): ('updateFlavor', 200, r.FLAVOR_ONE,
                                      flavor_schemas.UPDATE, []),
    ('/flavors/{flavor_id}/os-extra_specs', 'GET'): (
        'listFlavorExtraSpecs', 200, r.EXTRA_SPECS, None, []),
    ('/flavors/{flavor_id}/os-extra_specs/{key}', 'GET'): (
        'showFlavorExtraSpec', 200, r.EXTRA_SPEC, None, []),
    ('/flavors/{flavor_id}/os-extra_specs', 'POST'): (
        'createFlavorExtraSpecs', 200, r.EXTRA_SPECS, flavor_schemas.EXTRA_SPECS_CREATE, []),
    ('/flavors/{flavor_id}/os-extra_specs/{key}', 'PUT'): (
        'updateFlavorExtraSpec', 200, r.EXTRA_SPEC, flavor_schemas.EXTRA_SPEC_UPDATE, []),
    ('/flavors/{flavor_id}/os-extra_specs/{key}', 'DELETE'): (
        'deleteFlavorExtraSpec', 200, None, None, []),
    ('/os-hypervisors', 'GET'): ('listHypervisors', 200, r.HYPERVISORS_BASIC, None,
                                 HYPERVISOR_QUERY),
    ('/os-hypervisors/detail', 'GET'): ('listHypervisorsDetail', 200,
                                        r.HYPERVISORS_DETAIL, None, HYPERVISOR_QUERY),
    ('/os-hypervisors/statistics', 'GET'): (
        'showHypervisorStatistics', 200, r.HYPERVISOR_STATISTICS, None, []),
    ('/os-hypervisors/{hypervisor_id}', 'GET'): (
        'showHypervisor', 200, r.HYPERVISOR_ONE, None, [WITH_SERVERS]),
    ('/os-hypervisors/{hypervisor_id}/uptime', 'GET'): (
        'showHypervisorUptime', 200, r.HYPERVISOR_UPTIME, None, []),
    ('/os-hypervisors/{pattern}/search', 'GET'): (
        'searchHypervisors', 200, r.HYPERVISORS_BASIC, None, []),
    ('/os-hypervisors/{pattern}/servers', 'GET'): (
        'listHypervisorServers', 200, r.HYPERVISORS_BASIC, None, []),
    ('/os-services', 'GET'): ('listServices', 200, r.SERVICES, None,
                              [_str('host'), _str('binary')]),
    ('/os-services/{service_id}', 'PUT'): ('updateService', 200, r.SERVICE_ONE,
                                           services.UPDATE_V253, []),
    ('/os-services/{service_id}', 'DELETE'): ('deleteService', 204, None, None, []),
    ('/os-migrations', 'GET'): ('listMigrations', 200, r.MIGRATIONS, None,
                                MIGRATION_QUERY),
    ('/os-server-groups', 'GET'): ('listServerGroups', 200, r.SERVER_GROUPS, None,
                                   [_int('limit'), _int('offset'), _str('all_projects')]),
    ('/os-server-groups', 'POST'): ('createServerGroup', 200, r.SERVER_GROUP_ONE,
                                    group_schemas.create(MAX), []),
    ('/os-server-groups/{group_id}', 'GET'): ('showServerGroup', 200, r.SERVER_GROUP_ONE,
                                              None, []),
    ('/os-server-groups/{group_id}', 'DELETE'): ('deleteServerGroup', 204, None, None, []),
    ('/limits', 'GET'): ('showLimits', 200, r.LIMITS, None, [_str('tenant_id')]),
    ('/os-quota-sets/{project_id}', 'GET'): ('showQuotaSet', 200, r.QUOTA_SET, None,
                                             [_str('user_id')]),
    ('/os-quota-sets/{project_id}', 'PUT'): ('updateQuotaSet', 200, r.QUOTA_SET,
                                             quota_sets.UPDATE_SCHEMA, [_str('user_id')]),
    ('/os-quota-sets/{project_id}', 'DELETE'): ('deleteQuotaSet', 202, None, None,
                                                [_str('user_id')]),
    ('/os-quota-sets/{project_id}/defaults', 'GET'): ('showQuotaSetDefaults', 200,
                                                      r.QUOTA_SET, None, []),
    ('/os-quota-sets/{project_id}/detail', 'GET'): ('showQuotaSetDetail', 200,
                                                    r.QUOTA_DETAIL, None, [_str('user_id')]),
    ('/images', 'GET'): ('listImages', 200, r.COMPUTE_IMAGES, None, [_str('name')]),
    ('/images/detail', 'GET'): ('listImagesDetail', 200, r.COMPUTE_IMAGES, None,
                                [_str('name')]),
    ('/images/{image_id}', 'GET'): ('showImage', 200, r.COMPUTE_IMAGE_ONE, None, []),
    ('/os-novalite-images', 'GET'): ('listRegisteredImages', 200, r.GLANCE_IMAGES,
                                     None, []),
    ('/os-novalite-images', 'POST'): ('registerImage', 201, r.GLANCE_IMAGE_ONE,
                                      images.REGISTER, []),
    ('/os-novalite-images/{image_id}', 'DELETE'): ('deleteRegisteredImage', 204, None,
                                                   None, []),
    ('/os-host-drains', 'GET'): ('listHostDrains', 200, r.DRAINS, None, [
        _str('host'), _enum('status', states.DRAIN_ACTIVE + states.DRAIN_DONE)]),
    ('/os-host-drains', 'POST'): ('createHostDrain', 202, r.DRAIN_ONE,
                                  drain_schemas.CREATE, []),
    ('/os-host-drains/{drain_id}', 'GET'): ('showHostDrain', 200, r.DRAIN_ONE, None, []),
    ('/os-host-drains/{drain_id}', 'DELETE'): ('cancelHostDrain', 202, None, None, []),
}


def to_2020(schema):
    """A draft-4 request schema as JSON Schema 2020-12 (OpenAPI 3.1)."""
    if isinstance(schema, list):
        return [to_2020(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: to_2020(v) for k, v in schema.items()}
    for flag, bound in (('exclusiveMinimum', 'minimum'), ('exclusiveMaximum', 'maximum')):
        if isinstance(out.get(flag), bool):
            if out.pop(flag) and bound in out:
                out[flag] = out.pop(bound)
    return out


def _range(methods_entry):
    if isinstance(methods_entry, list):
        low, high, _fn = methods_entry[0]
        return {'min': low, 'max': high or microversion.to_str(MAX)}
    return {'min': microversion.to_str(microversion.MIN_VERSION),
            'max': microversion.to_str(MAX)}


def _operation(path, method, entry) -> dict:
    op_id, ok, body, request, query = OPERATIONS[(path, method)]
    codes = ok if isinstance(ok, list) else [ok]
    responses = {}
    for code in codes:
        if body is None:
            responses[str(code)] = {'description': 'Success, no body.'}
        else:
            responses[str(code)] = {'description': 'Success.', 'content': {
                'application/json': {'schema': copy.deepcopy(body)}}}
    if path not in ('', '/'):
        responses.setdefault('401', {'description': (
            'No valid token. With noauth2 a request without X-Auth-Token that sends '
            'X-Auth-User instead gets a 204 whose X-Auth-Token header holds a token.'),
            'content': {'application/json': {
                'schema': {'$ref': '#/components/schemas/Fault'}}}})
    if request is not None:
        # The size limit sits in front of validation: a body above it is refused whole,
        # whatever it holds (valid or not), and nothing is changed.
        responses['413'] = {'description': (
            'The body is larger than [oslo_middleware]max_request_body_size (114,688 '
            'bytes by default).'), 'content': {'application/json': {
                'schema': {'$ref': '#/components/schemas/Fault'}}}}
    responses['default'] = {'description': 'A Nova-style fault.', 'content': {
        'application/json': {'schema': {'$ref': '#/components/schemas/Fault'}}}}
    op = {'operationId': op_id, 'responses': responses,
          'x-openstack-microversion': _range(entry)}
    params = [{'name': name, 'in': 'path', 'required': True,
               'schema': copy.deepcopy(PATH_SCHEMAS.get(name, {'type': 'string'}))}
              for name in _path_vars(path)]
    params += copy.deepcopy(query)
    if params:
        op['parameters'] = params
    if request is not None:
        op['requestBody'] = {'required': True, 'content': {
            'application/json': {'schema': to_2020(copy.deepcopy(request))}}}
    if path in ('', '/'):
        op['security'] = [{}, {'token': []}]
    return op


# OpenAPI links for schemathesis' stateful phase: what a create returns feeds the
# operations on the new resource. (source operationId, status) -> [(target, parameter,
# runtime expression)].
LINKS = {
    ('createServer', '202'): [
        (target, 'server_id', '$response.body#/server/id')
        for target in ('showServer', 'updateServer', 'deleteServer', 'serverAction',
                       'listServerMigrations', 'listInstanceActions')],
    ('createFlavor', '200'): [
        (target, 'flavor_id', '$response.body#/flavor/id')
        for target in ('showFlavor', 'updateFlavor', 'deleteFlavor',
                       'listFlavorExtraSpecs')],
    ('registerImage', '201'): [
        ('deleteRegisteredImage', 'image_id', '$response.body#/image/id')],
}


def _add_links(paths: dict) -> None:
    for item in paths.values():
        for op in item.values():
            for (source, status), targets in LINKS.items():
                if op.get('operationId') != source:
                    continue
                op['responses'][status]['links'] = {
                    target: {'operationId': target, 'parameters': {param: expression}}
                    for target, param, expression in targets}


def _path_vars(path):
    return [part[1:-1] for part in path.split('/') if part.startswith('{')]


def build() -> dict:
    paths: dict = {}
    for path, methods in router.ROUTES:
        if path == '':
            continue  # the same document as '/'; clients reach both
        item = paths.setdefault(path, {})
        for method, entry in methods.items():
            item[method.lower()] = _operation(path, method, entry)
    _add_links(paths)
    paths['/openapi.json'] = {'get': {
        'operationId': 'getOpenAPI', 'security': [{}],
        'responses': {'200': {'description': 'This document.', 'content': {
            'application/json': {'schema': {'type': 'object'}}}}}}}
    return {
        'openapi': '3.1.0',
        'info': {
            'title': 'novalite compute API',
            'version': microversion.to_str(MAX),
            'description': (
                'A Nova-compatible compute API. Bodies are described at microversion '
                '%s (send OpenStack-API-Version: compute X.Y; the default is 2.1). '
                'With noauth2 the token is user:project; user admin is an administrator.'
                % microversion.to_str(MAX)),
        },
        'servers': [{'url': '/v2.1'}],
        'security': [{'token': []}],
        'paths': paths,
        'components': {
            'securitySchemes': {'token': {'type': 'apiKey', 'in': 'header',
                                          'name': 'X-Auth-Token'}},
            'schemas': {'Fault': r.FAULT},
        },
    }


def dumps(doc: dict) -> str:
    return json.dumps(doc, indent=1, sort_keys=True) + '\n'


_cached = None


def document_bytes() -> bytes:
    """The committed document (generated on the fly if it is missing)."""
    global _cached
    if _cached is None:
        try:
            with open(PATH, 'rb') as f:
                _cached = f.read()
        except OSError:
            _cached = dumps(build()).encode('utf-8')
    return _cached
