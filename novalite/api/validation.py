"""JSON Schema validation of request bodies, with Nova-style 400 messages."""

import collections
import functools
import threading
import unicodedata

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


def is_printable(char: str) -> bool:
    """Nova's printable characters: letters, marks, numbers, punctuation, symbols and
    ordinary spaces; no control, format, surrogate, private or unassigned code points."""
    category = unicodedata.category(char)
    return not category.startswith('C') and (not category.startswith('Z')
                                             or category == 'Zs')


@_FORMAT_CHECKER.checks('printable')
def _is_printable_text(value):
    return not isinstance(value, str) or all(is_printable(c) for c in value)


def _number_from_str(instance):
    """Digit strings count as numbers for minimum/maximum, as in Nova's validator."""
    if not isinstance(instance, str):
        return instance
    try:
        return int(instance)
    except ValueError:
        try:
            return float(instance)
        except ValueError:
            return None


def _numeric(keyword):
    original = jsonschema.Draft4Validator.VALIDATORS[keyword]

    def check(validator, bound, instance, schema):
        number = _number_from_str(instance)
        if number is None or isinstance(number, bool):
            return
        yield from original(validator, bound, number, schema) or ()
    return check


_Validator = jsonschema.validators.extend(
    jsonschema.Draft4Validator,
    {'minimum': _numeric('minimum'), 'maximum': _numeric('maximum')})


@functools.lru_cache(maxsize=256)
def _end_anchored(pattern: str) -> str:
    """``pattern`` with each ``$`` anchor as ``\\Z``.

    JSON Schema patterns are ECMA-262 regexes, where ``$`` is the end of the string.
    Python's ``$`` also matches before a final newline, so ``^[a-z]+$`` took ``"abc\\n"``
    and a newline slipped past every anchored pattern (flavor ids, descriptions,
    hostnames, metadata keys) although the OpenAPI document refuses it.
    """
    out = []
    escaped = in_class = False
    for char in pattern:
        if escaped:
            escaped = False
        elif char == '\\':
            escaped = True
        elif in_class:
            in_class = char != ']'
        elif char == '[':
            in_class = True
        elif char == '$':
            out.append(r'\Z')
            continue
        out.append(char)
    return ''.join(out)


def _python_patterns(schema):
    """A copy of ``schema`` whose ``pattern`` and ``patternProperties`` regexes mean in
    Python what they mean in JSON Schema."""
    if isinstance(schema, list):
        return [_python_patterns(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {}
    for key, value in schema.items():
        if key == 'pattern' and isinstance(value, str):
            out[key] = _end_anchored(value)
        elif key == 'patternProperties' and isinstance(value, dict):
            out[key] = {_end_anchored(k): _python_patterns(v) for k, v in value.items()}
        elif key == 'properties' and isinstance(value, dict):
            # Property names are data, not keywords: a property called "pattern" stays.
            out[key] = {k: _python_patterns(v) for k, v in value.items()}
        else:
            out[key] = _python_patterns(value)
    return out


_validators: collections.OrderedDict = collections.OrderedDict()
_validators_lock = threading.Lock()


def _validator(schema: dict):
    """The validator of ``schema``, built once per schema object: the schemas are
    module constants or cached per microversion, and must not be changed once used."""
    with _validators_lock:
        entry = _validators.get(id(schema))
        if entry is not None and entry[0] is schema:
            _validators.move_to_end(id(schema))
            return entry[1]
    validator = _Validator(_python_patterns(schema), format_checker=_FORMAT_CHECKER)
    with _validators_lock:
        _validators[id(schema)] = (schema, validator)
        while len(_validators) > 256:
            _validators.popitem(last=False)
    return validator


def validate(body, schema: dict) -> None:
    validator = _validator(schema)
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
