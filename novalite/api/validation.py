"""JSON Schema validation of request bodies, with Nova-style 400 messages."""

import jsonschema

from novalite.api import faults

_FORMAT_CHECKER = jsonschema.FormatChecker()


@_FORMAT_CHECKER.checks('uuid')
def _is_uuid(value):
    import uuid
    if not isinstance(value, str):
        return True
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return len(value.replace('-', '')) == 32


@_FORMAT_CHECKER.checks('base64')
def _is_base64(value):
    import base64
    import binascii
    if not isinstance(value, str):
        return True
    try:
        base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


def validate(body, schema: dict) -> None:
    validator = jsonschema.Draft4Validator(schema, format_checker=_FORMAT_CHECKER)
    error = jsonschema.exceptions.best_match(validator.iter_errors(body))
    if error is None:
        return
    if error.path:
        field = '/'.join(str(p) for p in error.path)
        raise faults.bad_request('Invalid input for field/attribute %s. Value: %s. %s'
                                 % (field, error.instance, error.message))
    raise faults.bad_request('Invalid input for field/attribute. %s' % error.message)


def require_body(req) -> dict:
    """The parsed JSON body, 400 when there is none or it is not an object."""
    body = req.json_body_parsed
    if body is None:
        raise faults.bad_request('The request body is missing.')
    if not isinstance(body, dict):
        raise faults.bad_request('The request body must be a JSON object.')
    return body
