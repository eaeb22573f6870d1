"""Schemas of POST /os-server-groups per microversion."""

import copy
import functools

from novalite.api.schemas import types

_POLICIES_21 = ['anti-affinity', 'affinity']
_POLICIES_215 = _POLICIES_21 + ['soft-anti-affinity', 'soft-affinity']

_BASE = {
    'type': 'object',
    'properties': {'server_group': {
        'type': 'object',
        'properties': {
            'name': types.NAME,
            'policies': {'type': 'array', 'minItems': 1, 'maxItems': 1, 'uniqueItems': True,
                         'items': {'type': 'string', 'enum': _POLICIES_21}},
        },
        'required': ['name', 'policies'],
        'additionalProperties': False,
    }},
    'required': ['server_group'],
    'additionalProperties': False,
}


@functools.cache
def create(mv: tuple[int, int]) -> dict:
    schema = copy.deepcopy(_BASE)
    group = schema['properties']['server_group']
    props = group['properties']
    if mv >= (2, 15):
        props['policies']['items']['enum'] = list(_POLICIES_215)
    if mv >= (2, 64):
        del props['policies']
        props['policy'] = {'type': 'string', 'enum': list(_POLICIES_215)}
        props['rules'] = {'type': 'object',
                          'properties': {'max_server_per_host': types.POSITIVE_INT},
                          'additionalProperties': False}
        group['required'] = ['name', 'policy']
    return schema
