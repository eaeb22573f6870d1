"""Schemas of POST /flavors and PUT /flavors/{id}."""

import copy
import functools

from novalite.api.schemas import types

_CREATE = {
    'type': 'object',
    'properties': {'flavor': {
        'type': 'object',
        'properties': {
            'name': types.NAME,
            'id': {'type': ['string', 'number', 'null'], 'minLength': 1, 'maxLength': 255,
                   'pattern': r'^[a-zA-Z0-9._-]([a-zA-Z0-9. _-]*[a-zA-Z0-9._-])?$'},
            'ram': {'type': ['integer', 'string'], 'pattern': '^[0-9]+$', 'minimum': 1,
                    'maximum': 2147483647},
            'vcpus': {'type': ['integer', 'string'], 'pattern': '^[0-9]+$', 'minimum': 1,
                      'maximum': 2147483647},
            'disk': {'type': ['integer', 'string'], 'pattern': '^[0-9]+$', 'minimum': 0,
                     'maximum': 2147483647},
            'OS-FLV-EXT-DATA:ephemeral': {'type': ['integer', 'string'],
                                          'pattern': '^[0-9]+$', 'minimum': 0,
                                          'maximum': 2147483647},
            'swap': {'type': ['integer', 'string'], 'pattern': '^[0-9]+$', 'minimum': 0,
                     'maximum': 2147483647},
            'rxtx_factor': {'type': ['number', 'string'],
                            'pattern': r'^[0-9]+(\.[0-9]+)?$', 'minimum': 0,
                            'exclusiveMinimum': True, 'maximum': 3.40282e+38},
            'os-flavor-access:is_public': {'type': 'boolean'},
        },
        'required': ['name', 'ram', 'vcpus', 'disk'],
        'additionalProperties': False}},
    'required': ['flavor'], 'additionalProperties': False,
}

DESCRIPTION = {'type': ['string', 'null'], 'minLength': 0, 'maxLength': 65535,
               'pattern': r'^[^\x00-\x1f\x7f]*$'}


@functools.cache
def create(mv: tuple[int, int]) -> dict:
    schema = copy.deepcopy(_CREATE)
    props = schema['properties']['flavor']['properties']
    if mv >= (2, 55):
        props['description'] = DESCRIPTION
    if mv >= (2, 102):
        props.pop('rxtx_factor')
    return schema


UPDATE = {
    'type': 'object',
    'properties': {'flavor': {'type': 'object',
                              'properties': {'description': DESCRIPTION},
                              'required': ['description'], 'additionalProperties': False}},
    'required': ['flavor'], 'additionalProperties': False,
}


# Extra specs, as Nova's os-flavor-extra-specs takes them: keys of letters, digits and
# "-_:. ", values strings (up to 255 characters), numbers or booleans.
_EXTRA_SPEC_VALUE = {'type': ['string', 'number', 'boolean'], 'minLength': 0,
                     'maxLength': 255}
_EXTRA_SPECS = {'type': 'object',
                'patternProperties': {r'^[a-zA-Z0-9-_:. ]{1,255}$': _EXTRA_SPEC_VALUE},
                'additionalProperties': False}
EXTRA_SPECS_CREATE = {'type': 'object', 'properties': {'extra_specs': _EXTRA_SPECS},
                      'required': ['extra_specs'], 'additionalProperties': False}
EXTRA_SPEC_UPDATE = dict(_EXTRA_SPECS, minProperties=1, maxProperties=1)
