"""Microversion parsing and negotiation for the compute API."""

import re

from novalite.conf import CONF

SERVICE_TYPE = 'compute'
HEADER = 'OpenStack-API-Version'
LEGACY_HEADER = 'X-OpenStack-Nova-API-Version'
VERSION_RE = re.compile(r'^([1-9]\d*)\.([1-9]\d*|0)$')

MIN_VERSION = (2, 1)
# Highest implemented version; every behaviour change up to it is honoured by the
# handlers (see spec §2, §7). 2.101+ are not implemented.
MAX_VERSION = (2, 100)


class InvalidVersion(Exception):
    """Malformed version string (400)."""


class UnsupportedVersion(Exception):
    """Well-formed version outside the served range (406)."""


def parse(text: str) -> tuple[int, int]:
    match = VERSION_RE.match(text.strip())
    if not match:
        raise InvalidVersion('API Version String %s is of invalid format. Must be of '
                             'format MajorNum.MinorNum.' % text.strip())
    return int(match.group(1)), int(match.group(2))


def to_str(version: tuple[int, int]) -> str:
    return '%d.%d' % version


def max_version(conf=CONF) -> tuple[int, int]:
    """The advertised maximum: the implemented one, optionally capped by config."""
    cap = conf.api.max_microversion
    if cap:
        try:
            capped = parse(cap)
        except InvalidVersion:
            return MAX_VERSION
        return max(MIN_VERSION, min(capped, MAX_VERSION))
    return MAX_VERSION


def _header_value(headers) -> str | None:
    """The compute entry of the standard header, else the legacy header, else None."""
    std = headers.get(HEADER)
    if std:
        for item in std.split(','):
            parts = item.strip().split(None, 1)
            if len(parts) == 2 and parts[0].lower() == SERVICE_TYPE:
                return parts[1].strip()
    legacy = headers.get(LEGACY_HEADER)
    if legacy:
        return legacy.strip()
    return None


def negotiate(headers, conf=CONF) -> tuple[int, int]:
    """The version a request asks for; absent means the minimum."""
    top = max_version(conf)
    value = _header_value(headers)
    if value is None:
        return MIN_VERSION
    if value.lower() == 'latest':
        return top
    version = parse(value)
    if not MIN_VERSION <= version <= top:
        raise UnsupportedVersion(
            'Version %s is not supported by the API. Minimum is %s and maximum is %s.'
            % (to_str(version), to_str(MIN_VERSION), to_str(top)))
    return version


def add_headers(response, version: tuple[int, int]) -> None:
    text = to_str(version)
    response.headers[HEADER] = '%s %s' % (SERVICE_TYPE, text)
    response.headers[LEGACY_HEADER] = text
    response.headerlist.append(('Vary', HEADER))
    response.headerlist.append(('Vary', LEGACY_HEADER))


def negotiate_or_fault(headers, conf=CONF):
    """The negotiated version, or a 400/406 fault response."""
    from novalite.api import faults
    try:
        return negotiate(headers, conf)
    except InvalidVersion as exc:
        return faults.fault_response(400, str(exc))
    except UnsupportedVersion as exc:
        return faults.fault_response(406, str(exc))
