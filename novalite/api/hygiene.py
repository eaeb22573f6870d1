"""Checks every request passes before routing: decodable path, clean text, bounded JSON."""

import json
from urllib.parse import unquote_to_bytes

from novalite.api import faults

# No compute API body comes close; the bound keeps the parser and every recursive walk
# after it (schema validation, views, JSON columns) far from Python's recursion limit.
MAX_JSON_DEPTH = 32


def path_info(environ) -> str:
    """PATH_INFO as text; a path whose bytes are not UTF-8 names no resource (404)."""
    raw = environ.get('PATH_INFO', '')
    try:
        text = raw.encode('latin-1').decode('utf-8')
    except UnicodeError:
        raise faults.not_found('The resource could not be found.')
    _check_text(text, 'The resource could not be found.', code=404)
    return text


def check_query(req) -> None:
    """Query parameters: undecodable bytes, NUL and lone surrogates are a 400."""
    raw = req.environ.get('QUERY_STRING', '')
    if not raw:
        return
    try:
        unquote_to_bytes(raw).decode('utf-8')
    except UnicodeError:
        raise faults.bad_request('Query string is not valid UTF-8.')
    for key, value in req.GET.items():
        _check_text(key, 'Invalid query parameter.')
        _check_text(value, 'Invalid query parameter.')


def parse_json(body: bytes):
    """The decoded body; malformed, too deeply nested or unclean text is a 400."""
    try:
        value = json.loads(body)
    except (ValueError, RecursionError):
        raise faults.bad_request('Malformed request body')
    _walk(value, 0)
    return value


def _walk(value, depth):
    if depth > MAX_JSON_DEPTH:
        raise faults.bad_request('Malformed request body: nested deeper than %d levels.'
                                 % MAX_JSON_DEPTH)
    if isinstance(value, str):
        _check_text(value, 'Invalid string in request body.')
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_text(key, 'Invalid string in request body.')
            _walk(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _walk(item, depth + 1)


def _check_text(text: str, message: str, code: int = 400) -> None:
    # PostgreSQL text cannot hold NUL, and a lone surrogate cannot be encoded as UTF-8
    # by any driver: both would fail deep in the database layer as a 500.
    if '\x00' in text:
        raise faults.HTTPError(code, message + ' NUL characters are not allowed.')
    try:
        text.encode('utf-8')
    except UnicodeEncodeError:
        raise faults.HTTPError(code, message + ' Unpaired surrogates are not allowed.')
