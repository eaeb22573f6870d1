"""Schemas of POST /servers and PUT /servers/{id}, per microversion."""

import copy
import functools

from novalite.api.schemas import types

_NETWORK_ITEM = {
    'type': 'object',
    'properties': {
        'fixed_ip': {'type': 'string', 'format': 'ipv4'},
        'port': {'type': ['string', 'null'], 'format': 'uuid'},
        'uuid': {'type': 'string'},
    },
    'additionalProperties': False,
}

_BDM_V2 = {
    'type': 'array',
    'items': {'type': 'object', 'properties': {
        'uuid': {'type': 'string'}, 'source_type': {'type': 'string'},
        'destination_type': {'type': 'string'}, 'boot_index': {'type': ['integer', 'string',
                                                                        'null']},
        'volume_size': {'type': ['integer', 'string', 'null']},
        'delete_on_termination': types.BOOLEAN, 'device_name': {'type': 'string'},
        'tag': {'type': 'string'}, 'volume_type': {'type': ['string', 'null']},
        'guest_format': {'type': 'string'}, 'disk_bus': {'type': 'string'},
        'device_type': {'type': 'string'}, 'no_device': {},
    }, 'additionalProperties': False},
}

_BASE = {
    'type': 'object',
    'properties': {
        'server': {
            'type': 'object',
            'properties': {
                'name': types.NAME,
                'imageRef': {'type': 'string'},
                'flavorRef': types.FLAVOR_REF,
                'adminPass': {'type': 'string'},
                'metadata': types.METADATA,
                'networks': {'type': 'array', 'items': _NETWORK_ITEM},
                'OS-DCF:diskConfig': types.DISK_CONFIG,
                'accessIPv4': types.IPV4,
                'accessIPv6': types.IPV6,
                'personality': {'type': 'array', 'items': {'type': 'object', 'properties': {
                    'path': {'type': 'string'}, 'contents': {'type': 'string'}}}},
                'availability_zone': {'type': 'string', 'minLength': 1, 'maxLength': 255},
                'block_device_mapping': {'type': 'array'},
                'block_device_mapping_v2': _BDM_V2,
                'config_drive': types.BOOLEAN,
                'key_name': {'type': 'string', 'minLength': 1, 'maxLength': 255},
                'min_count': types.POSITIVE_INT,
                'max_count': types.POSITIVE_INT,
                'return_reservation_id': types.BOOLEAN,
                'security_groups': {'type': 'array', 'items': {
                    'type': 'object', 'properties': {'name': {'type': 'string'}},
                    'additionalProperties': False}},
                'user_data': {'type': 'string', 'format': 'base64', 'maxLength': 65535},
            },
            'required': ['name', 'flavorRef'],
            'additionalProperties': False,
        },
        'os:scheduler_hints': {'type': 'object'},
        'OS-SCH-HNT:scheduler_hints': {'type': 'object'},
    },
    'required': ['server'],
    'additionalProperties': False,
}

_HINTS = {
    'type': 'object',
    'properties': {
        'same_host': {'type': ['string', 'array'], 'items': {'type': 'string',
                                                              'format': 'uuid'}},
        'different_host': {'type': ['string', 'array'], 'items': {'type': 'string',
                                                                   'format': 'uuid'}},
        'group': {'type': 'string', 'format': 'uuid'},
        'query': {'type': ['string', 'object']},
        'target_cell': {'type': 'string'},
        'build_near_host_ip': {'type': 'string'},
        'cidr': {'type': 'string'},
    },
    'additionalProperties': True,
}


@functools.cache
def create(mv: tuple[int, int]) -> dict:
    schema = copy.deepcopy(_BASE)
    server = schema['properties']['server']
    props = server['properties']
    schema['properties']['os:scheduler_hints'] = _HINTS
    schema['properties']['OS-SCH-HNT:scheduler_hints'] = _HINTS
    if mv >= (2, 19):
        props['description'] = types.DESCRIPTION
    if mv == (2, 32) or mv >= (2, 42):
        props['networks']['items']['properties']['tag'] = {
            'type': 'string', 'maxLength': 60, 'pattern': '^[^,/]*$'}
    if mv >= (2, 37):
        props['networks'] = {'oneOf': [
            props['networks'], {'type': 'string', 'enum': ['none', 'auto']}]}
        server['required'].append('networks')
    if mv >= (2, 52):
        props['tags'] = {'type': 'array', 'maxItems': 50, 'items': {
            'type': 'string', 'minLength': 1, 'maxLength': 60, 'pattern': '^[^,/]*$'}}
    if mv >= (2, 57):
        props.pop('personality')
    if mv >= (2, 63):
        props['trusted_image_certificates'] = {
            'type': ['array', 'null'], 'minItems': 1, 'maxItems': 50, 'uniqueItems': True,
            'items': {'type': 'string', 'minLength': 1}}
    if mv >= (2, 74):
        props['host'] = types.FQDN
        props['hypervisor_hostname'] = types.FQDN
    if mv >= (2, 90):
        props['hostname'] = {'type': 'string', 'minLength': 2, 'maxLength': 63,
                             'pattern': r'^[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?$'}
    if mv >= (2, 94):
        props['hostname'] = {'type': 'string', 'minLength': 2, 'maxLength': 255,
                             'pattern': r'^[a-zA-Z0-9]([a-zA-Z0-9.-]*[a-zA-Z0-9])?$'}
    return schema


@functools.cache
def update(mv: tuple[int, int]) -> dict:
    props = {'name': types.NAME, 'OS-DCF:diskConfig': types.DISK_CONFIG,
             'accessIPv4': {'type': ['string', 'null'], 'oneOf': [
                 {'type': 'string', 'format': 'ipv4'}, {'type': 'null'},
                 {'type': 'string', 'maxLength': 0}]},
             'accessIPv6': {'type': ['string', 'null'], 'oneOf': [
                 {'type': 'string', 'format': 'ipv6'}, {'type': 'null'},
                 {'type': 'string', 'maxLength': 0}]}}
    if mv >= (2, 19):
        props['description'] = types.DESCRIPTION
    if mv >= (2, 90):
        props['hostname'] = create(mv)['properties']['server']['properties']['hostname']
    return {'type': 'object',
            'properties': {'server': {'type': 'object', 'properties': props,
                                      'additionalProperties': False}},
            'required': ['server'], 'additionalProperties': False}
