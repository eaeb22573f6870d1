"""HTTP errors of the API and the one table mapping domain exceptions to status codes."""

import contextlib
import json

import webob

from novalite import exception

FAULT_NAMES = {
    400: 'badRequest', 401: 'unauthorized', 403: 'forbidden', 404: 'itemNotFound',
    405: 'badMethod', 406: 'notAcceptable', 409: 'conflictingRequest', 413: 'overLimit',
    415: 'badMediaType', 429: 'overLimit', 501: 'notImplemented',
    503: 'serviceUnavailable',
}

# Domain exception -> status. Checked in order, first isinstance match wins, so the
# specific classes come before their families. Anything not listed is a 500.
EXCEPTION_STATUS: list[tuple[type[Exception], int]] = [
    (exception.OverQuota, 403),
    (exception.Forbidden, 403),
    (exception.NotFound, 404),
    (exception.NoValidHost, 400),
    (exception.Invalid, 400),
    (exception.Conflict, 409),
    (exception.DatabaseUnavailable, 503),
]


class HTTPError(Exception):
    """Raised by handlers and middleware to end a request with a Nova-style fault."""

    def __init__(self, code: int, message: str = '', headers=None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.headers = headers or {}


def bad_request(message):
    return HTTPError(400, message)


def forbidden(message):
    return HTTPError(403, message)


def not_found(message=''):
    return HTTPError(404, message)


def conflict(message):
    return HTTPError(409, message)


def status_for(exc: Exception) -> int | None:
    """The HTTP status of a domain exception, or None when it is unexpected."""
    for cls, code in EXCEPTION_STATUS:
        if isinstance(exc, cls):
            return code
    return None


@contextlib.contextmanager
def remap(mapping: dict):
    """Give some domain exceptions a different status inside one handler.

    Nova answers e.g. an unknown flavor in a resize with 400, not 404; the handler
    states such exceptions explicitly: ``with remap({FlavorNotFound: 400}): ...``.
    """
    try:
        yield
    except tuple(mapping) as exc:
        for cls, code in mapping.items():
            if isinstance(exc, cls):
                raise HTTPError(code, str(exc))
        raise


def fault_response(code: int, message: str, headers=None) -> webob.Response:
    name = FAULT_NAMES.get(code, 'computeFault')
    body = {name: {'code': code, 'message': message}}
    resp = webob.Response(status=code, content_type='application/json', charset='UTF-8')
    retry = (headers or {}).get('Retry-After')
    if retry is not None and code in (413, 429):
        body[name]['retryAfter'] = str(retry)
    for key, value in (headers or {}).items():
        resp.headers[key] = str(value)
    resp.body = json.dumps(body).encode('utf-8')
    return resp
