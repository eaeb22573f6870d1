"""Helpers shared by handlers: responses, links, paging, query-string parsing."""

import datetime
import json
import re
import urllib.parse
import uuid

import webob

from novalite.api import faults

TRUE_STRINGS = ('1', 't', 'true', 'on', 'y', 'yes')
FALSE_STRINGS = ('0', 'f', 'false', 'off', 'n', 'no')


# Integer columns are 32-bit; larger numbers from a client are a 400, not a DB error.
MAX_INT = 2147483647


def _default(value):
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    raise TypeError('%r is not JSON serialisable' % (value,))


def json_response(body, status: int = 200, headers=None) -> webob.Response:
    resp = webob.Response(status=status, content_type='application/json', charset='UTF-8')
    resp.body = json.dumps(body, default=_default).encode('utf-8')
    for key, value in (headers or {}).items():
        resp.headers[key] = value
    return resp


def empty_response(status: int) -> webob.Response:
    resp = webob.Response(status=status)
    resp.headers.pop('Content-Type', None)
    resp.body = b''
    return resp


def mv_at_least(req, version: str) -> bool:
    major, minor = version.split('.')
    return req.mv >= (int(major), int(minor))


def require_version(req, low: str, high: str | None = None) -> None:
    """404 when the request's microversion is outside [low, high]."""
    if not mv_at_least(req, low) or (high and mv_at_least(req, _next(high))):
        raise faults.not_found('The resource could not be found.')


def _next(version: str) -> str:
    major, minor = version.split('.')
    return '%s.%d' % (major, int(minor) + 1)


# ---------------------------------------------------------------- time formats

def iso_z(value) -> str | None:
    """Server timestamps: YYYY-MM-DDTHH:MM:SSZ."""
    if value is None:
        return None
    return value.strftime('%Y-%m-%dT%H:%M:%SZ')


def iso_micro(value) -> str | None:
    """Migration/action/service timestamps: naive, with microseconds, no Z."""
    if value is None:
        return None
    return value.strftime('%Y-%m-%dT%H:%M:%S.%f')


def parse_time(req, name: str, text: str) -> datetime.datetime:
    """An ISO 8601 query value as naive UTC, else 400."""
    raw = text.strip()
    try:
        if raw.endswith('Z') or raw.endswith('z'):
            raw = raw[:-1] + '+00:00'
        value = datetime.datetime.fromisoformat(raw)
    except ValueError:
        raise faults.bad_request("Invalid input for query parameters %s. Value: %s. "
                                 "'%s' is not a 'date-time'" % (name, text, text))
    if value.tzinfo is not None:
        value = value.astimezone(datetime.UTC).replace(tzinfo=None)
    return value


# ---------------------------------------------------------------- links

def base_url(req, conf) -> str:
    """Host URL for links; [api]compute_link_prefix replaces scheme and host."""
    url = req.host_url + req.script_name
    prefix = conf.api.compute_link_prefix
    if prefix:
        parsed = urllib.parse.urlsplit(url)
        repl = urllib.parse.urlsplit(prefix)
        url = urllib.parse.urlunsplit((repl.scheme or parsed.scheme,
                                       repl.netloc or parsed.netloc,
                                       (repl.path.rstrip('/') + parsed.path).rstrip('/'),
                                       '', ''))
    return url.rstrip('/')


def _project_part(req) -> str:
    return '/' + req.url_project_id if getattr(req, 'url_project_id', None) else ''


def self_href(req, collection: str, item_id) -> str:
    return '%s/v2.1%s/%s/%s' % (base_url(req, req.app.conf), _project_part(req),
                                collection, item_id)


def bookmark_href(req, collection: str, item_id) -> str:
    return '%s%s/%s/%s' % (base_url(req, req.app.conf), _project_part(req), collection,
                           item_id)


def links(req, collection: str, item_id) -> list[dict]:
    return [{'rel': 'self', 'href': self_href(req, collection, item_id)},
            {'rel': 'bookmark', 'href': bookmark_href(req, collection, item_id)}]


def next_link(req, collection_path: str, items: list, limit: int, marker_key: str = 'id'):
    """The ``*_links`` list when the page is full, else None."""
    if not items or len(items) < limit:
        return None
    params = [(k, v) for k, v in req.GET.items() if k not in ('limit', 'marker')]
    params.append(('limit', str(limit)))
    params.append(('marker', str(items[-1][marker_key])))
    href = '%s/v2.1%s/%s?%s' % (base_url(req, req.app.conf), _project_part(req),
                                collection_path, urllib.parse.urlencode(params))
    return [{'rel': 'next', 'href': href}]


# ---------------------------------------------------------------- query strings

def check_params(req, allowed) -> None:
    """400 for query parameters outside ``allowed`` (used from the MV that demands it)."""
    unknown = sorted(set(req.GET.keys()) - set(allowed))
    if unknown:
        raise faults.bad_request('Invalid input for query parameters %s. Additional '
                                 'properties are not allowed (%s was unexpected)'
                                 % (unknown[0], ', '.join(repr(u) for u in unknown)))


def single(req, name: str, default=None):
    """The last value of a query parameter (Nova takes the last of repeated ones)."""
    values = req.GET.getall(name)
    return values[-1] if values else default


# ASCII digits only: Python's int() also takes spaces, a plus sign, underscores and other
# scripts' digits (" 5", "+5", "1_0", "\u0665"), which the document's integers are not.
_INT_RE = re.compile(r'-?[0-9]+')


def parse_int(value) -> int | None:
    """A query or path integer written as ASCII digits (an optional minus), else None."""
    if not isinstance(value, str) or not _INT_RE.fullmatch(value):
        return None
    return int(value)


def int_param(req, name: str, minimum: int = 0, default=None):
    value = single(req, name)
    if value is None:
        return default
    number = parse_int(value)
    if number is None:
        raise faults.bad_request('%s param must be an integer' % name)
    if number < minimum:
        raise faults.bad_request('%s param must be >= %d' % (name, minimum))
    if number > MAX_INT:
        raise faults.bad_request('%s param must be <= %d' % (name, MAX_INT))
    return number


def bool_param(req, name: str, default=None, strict=False):
    value = single(req, name)
    if value is None:
        return default
    if strict:
        # ASCII words in any case, as the document's patterns say; str.lower() would also
        # fold other scripts (the Kelvin sign is a "k"), and no whitespace is stripped.
        low = value.lower() if value.isascii() else ''
    else:
        low = value.strip().lower()
    if low in TRUE_STRINGS:
        return True
    if low in FALSE_STRINGS:
        return False
    if strict:
        raise faults.bad_request("Invalid input for query parameters %s. Value: %s. "
                                 "'%s' is not valid boolean" % (name, value, value))
    return default


def paging(req, conf) -> tuple[int, str | None]:
    """(limit, marker) with the limit capped by [api]max_limit."""
    limit = int_param(req, 'limit', minimum=0)
    max_limit = conf.api.max_limit
    limit = max_limit if limit is None else min(limit, max_limit)
    return limit, single(req, 'marker')


def is_uuid(value) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


_HOST_RE = re.compile(r'^[a-zA-Z0-9-._]*$')


def valid_hostname_text(value: str) -> bool:
    return bool(_HOST_RE.match(value))


MAX_DB_INT = 2 ** 31 - 1


def int_id(value) -> int | None:
    """A database integer id from a URL segment, or None when it cannot be one."""
    number = parse_int(str(value))
    if number is None or not 0 <= number <= MAX_DB_INT:
        return None
    return number
