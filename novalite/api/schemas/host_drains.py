"""Schema of POST /os-host-drains (a novalite extension, no microversion)."""

from novalite.api.schemas import types
from novalite.compute import states

MAX_PARALLEL = 1000

CREATE = {
    'type': 'object',
    'properties': {'drain': {
        'type': 'object',
        'properties': {
            'host': types.FQDN,
            'mode': {'type': 'string', 'enum': list(states.DRAIN_MODES)},
            'max_parallel': {'type': 'integer', 'minimum': 1, 'maximum': MAX_PARALLEL},
        },
        'required': ['host'],
        'additionalProperties': False,
    }},
    'required': ['drain'],
    'additionalProperties': False,
}
