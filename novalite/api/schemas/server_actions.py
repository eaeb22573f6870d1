"""Schemas of POST /servers/{id}/action bodies, per microversion."""

import functools

from novalite.api.schemas import types

REBOOT = {
    'type': 'object',
    'properties': {'reboot': {
        'type': 'object',
        'properties': {'type': {'type': 'string',
                                'enum': ['HARD', 'Hard', 'hard', 'SOFT', 'Soft', 'soft']}},
        'required': ['type'], 'additionalProperties': False}},
    'required': ['reboot'], 'additionalProperties': False,
}

RESIZE = {
    'type': 'object',
    'properties': {'resize': {
        'type': 'object',
        'properties': {'flavorRef': types.FLAVOR_REF,
                       'OS-DCF:diskConfig': types.DISK_CONFIG},
        'required': ['flavorRef'], 'additionalProperties': False}},
    'required': ['resize'], 'additionalProperties': False,
}

MIGRATE_V256 = {
    'type': 'object',
    'properties': {'migrate': {
        'type': ['object', 'null'],
        'properties': {'host': {'type': ['string', 'null'], 'minLength': 1,
                                'maxLength': 255, 'pattern': r'^[a-zA-Z0-9-._]*$'}},
        'additionalProperties': False}},
    'required': ['migrate'], 'additionalProperties': False,
}

LOCK_V273 = {
    'type': 'object',
    'properties': {'lock': {
        'type': ['object', 'null'],
        'properties': {'locked_reason': {'type': 'string', 'minLength': 1,
                                         'maxLength': 255}},
        'additionalProperties': False}},
    'required': ['lock'], 'additionalProperties': False,
}

_BLOCK_AUTO = {'oneOf': [types.BOOLEAN, {'type': 'string', 'enum': ['auto']}]}


@functools.cache
def migrate_live(mv: tuple[int, int]) -> dict:
    props: dict = {'host': types.HOSTNAME_OR_NULL}
    required = ['block_migration', 'host']
    if mv < (2, 25):
        props['block_migration'] = types.BOOLEAN
        props['disk_over_commit'] = types.BOOLEAN
        required.append('disk_over_commit')
    else:
        props['block_migration'] = _BLOCK_AUTO
    if (2, 30) <= mv < (2, 68):
        props['force'] = types.BOOLEAN
    return {
        'type': 'object',
        'properties': {'os-migrateLive': {'type': 'object', 'properties': props,
                                          'required': required,
                                          'additionalProperties': False}},
        'required': ['os-migrateLive'], 'additionalProperties': False,
    }


_ADMIN_PASSWORD = {'type': 'string'}


@functools.cache
def evacuate(mv: tuple[int, int]) -> dict:
    """``onSharedStorage`` (required) up to 2.13, ``force`` from 2.29 to 2.67."""
    props: dict = {'host': types.FQDN, 'adminPass': _ADMIN_PASSWORD}
    required = []
    if mv < (2, 14):
        props['onSharedStorage'] = types.BOOLEAN
        required.append('onSharedStorage')
    if (2, 29) <= mv < (2, 68):
        props['force'] = types.BOOLEAN
    return {
        'type': 'object',
        'properties': {'evacuate': {'type': 'object', 'properties': props,
                                    'required': required, 'additionalProperties': False}},
        'required': ['evacuate'], 'additionalProperties': False,
    }


FORCE_COMPLETE = {
    'type': 'object',
    'properties': {'force_complete': {'type': 'null'}},
    'required': ['force_complete'], 'additionalProperties': False,
}
