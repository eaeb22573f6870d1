"""Reusable JSON Schema fragments."""

BOOLEAN = {
    'type': ['boolean', 'string'],
    'enum': [True, 'True', 'TRUE', 'true', '1', 'ON', 'On', 'on', 'YES', 'Yes', 'yes',
             'y', 't', False, 'False', 'FALSE', 'false', '0', 'OFF', 'Off', 'off', 'NO',
             'No', 'no', 'n', 'f'],
}

# The strings of BOOLEAN: what a query parameter typed as Nova's boolean takes.
BOOLEAN_STRINGS = [value for value in BOOLEAN['enum'] if isinstance(value, str)]

# Nova's name: printable characters (validation.is_printable: the format), no leading or
# trailing whitespace. The pattern says most of it in a form OpenAPI tools can generate
# from (no controls, no line or paragraph separators); the format adds what it leaves out
# (format characters, surrogates, private use and unassigned code points).
_NOT_PRINTABLE = r'\x00-\x1f\x7f-\x9f\u2028\u2029'
NAME = {
    'type': 'string', 'minLength': 1, 'maxLength': 255, 'format': 'printable',
    'pattern': r'^[^\s%s]([^%s]*[^\s%s])?$' % ((_NOT_PRINTABLE,) * 3),
}

MAX_INT = 2147483647

DESCRIPTION = {'type': ['string', 'null'], 'minLength': 0, 'maxLength': 255}

HOSTNAME_OR_NULL = {
    'type': ['string', 'null'], 'minLength': 1, 'maxLength': 255,
    'pattern': r'^[a-zA-Z0-9-._]*$',
}

FQDN = {'type': 'string', 'minLength': 1, 'maxLength': 255,
        'pattern': r'^[a-zA-Z0-9-._]*$'}

POSITIVE_INT = {'type': ['integer', 'string'], 'pattern': '^[0-9]*$', 'minimum': 1,
                'maximum': MAX_INT, 'minLength': 1}

NON_NEGATIVE_INT = {'type': ['integer', 'string'], 'pattern': '^[0-9]*$', 'minimum': 0,
                    'maximum': MAX_INT, 'minLength': 1}

METADATA = {
    'type': 'object',
    'patternProperties': {
        '^[a-zA-Z0-9-_:. ]{1,255}$': {'type': 'string', 'maxLength': 255},
    },
    'additionalProperties': False,
}

IPV4 = {'type': 'string', 'format': 'ipv4'}
IPV6 = {'type': 'string', 'format': 'ipv6'}

DISK_CONFIG = {'type': 'string', 'enum': ['AUTO', 'MANUAL']}

FLAVOR_REF = {'type': ['string', 'integer'], 'minLength': 1}


def to_bool(value) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ('true', '1', 'on', 'yes', 'y', 't')
