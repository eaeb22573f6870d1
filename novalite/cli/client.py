"""The CLI's HTTP side: where to connect, how to authenticate, microversion negotiation,
errors that carry the server's message and request id, and name-or-id lookups."""

import dataclasses
import json
import os
import re
import sys
import urllib.parse

import requests

CLIENT_MAX_VERSION = (2, 100)
DEFAULT_URL = 'http://127.0.0.1:8774'
DEFAULT_TOKEN = 'admin:admin'
API_PATH = '/v2.1'
USER_AGENT = 'novalite-cli'
REQUEST_TIMEOUT = 60

UUID_RE = re.compile(r'^[0-9a-fA-F]{8}-?([0-9a-fA-F]{4}-?){3}[0-9a-fA-F]{12}$')

# HTTP status -> the short error name shown to the user (novaclient's vocabulary).
ERROR_NAMES = {
    400: 'BadRequest', 401: 'Unauthorized', 403: 'Forbidden', 404: 'NotFound',
    405: 'MethodNotAllowed', 406: 'NotAcceptable', 409: 'Conflict', 413: 'OverLimit',
    415: 'UnsupportedMediaType', 429: 'RateLimit', 500: 'InternalServerError',
    501: 'HTTPNotImplemented', 503: 'ServiceUnavailable',
}


class CommandError(Exception):
    """A failure to report to the user as ``ERROR (<kind>): <message>``; exit code 1."""

    kind = 'CommandError'

    def __init__(self, message, kind=None):
        super().__init__(message)
        if kind:
            self.kind = kind

    def render(self) -> str:
        return f'ERROR ({self.kind}): {self}'


class APIError(CommandError):
    """A non-2xx answer from the API."""

    def __init__(self, status, message, request_id=None, method=None, url=None):
        super().__init__(message, ERROR_NAMES.get(status, f'HTTP{status}'))
        self.status = status
        self.request_id = request_id
        self.method = method
        self.url = url

    def render(self) -> str:
        text = f'ERROR ({self.kind}): {self} (HTTP {self.status})'
        if self.request_id:
            text += f' (Request-ID: {self.request_id})'
        return text


# ------------------------------------------------------------------ versions

def parse_version(text) -> tuple[int, int]:
    match = re.fullmatch(r'\s*(\d+)\.(\d+)\s*', str(text))
    if not match:
        raise CommandError(f'Invalid microversion {text!r}: expected MAJOR.MINOR, '
                           "for example 2.80, or 'latest'")
    return int(match.group(1)), int(match.group(2))


def format_version(version: tuple[int, int]) -> str:
    return '%d.%d' % version


# ------------------------------------------------------------------ settings

@dataclasses.dataclass
class Settings:
    """Where and how to connect; resolved from options, then environment, then defaults."""

    endpoint: str = DEFAULT_URL + API_PATH
    token: str | None = DEFAULT_TOKEN
    api_version: str | None = None      # None or 'latest' -> negotiate
    auth_type: str = 'admin_token'
    timeout: float = REQUEST_TIMEOUT
    debug: bool = False

    @property
    def user(self) -> str:
        return (self.token or '').split(':', 1)[0]

    @property
    def is_admin(self) -> bool:
        return self.user == 'admin'


def _normalise_endpoint(url: str) -> str:
    """Append ``/v2.1`` when the URL names only the server, drop a trailing slash."""
    url = url.strip().rstrip('/')
    if '://' not in url:
        url = 'http://' + url
    path = urllib.parse.urlsplit(url).path
    if not re.search(r'/v2(\.\d+)?(/|$)', path):
        url += API_PATH
    return url


def _split_novalite_url(url: str) -> tuple[str, str | None]:
    """'http://user:project@host:port[/v2.1]' -> (endpoint without credentials, token)."""
    parts = urllib.parse.urlsplit(url if '://' in url else 'http://' + url)
    token = None
    if parts.username:
        user = urllib.parse.unquote(parts.username)
        project = urllib.parse.unquote(parts.password) if parts.password else user
        token = f'{user}:{project}'
    netloc = parts.hostname or '127.0.0.1'
    if ':' in netloc:
        netloc = f'[{netloc}]'
    if parts.port:
        netloc += f':{parts.port}'
    clean = urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, '', ''))
    return _normalise_endpoint(clean), token


AUTH_TYPES = ('admin_token', 'token', 'noauth', 'noauth2', 'none')


def resolve_settings(args, environ=None) -> Settings:
    """Merge command line options (``args``) with the environment."""
    env = os.environ if environ is None else environ

    def pick(option, *names):
        value = getattr(args, option, None)
        if value not in (None, ''):
            return value
        for name in names:
            if env.get(name):
                return env[name]
        return None

    url_endpoint, url_token = (None, None)
    if env.get('NOVALITE_URL'):
        url_endpoint, url_token = _split_novalite_url(env['NOVALITE_URL'])

    endpoint = pick('os_endpoint', 'OS_ENDPOINT', 'OS_COMPUTE_ENDPOINT')
    endpoint = _normalise_endpoint(endpoint) if endpoint else (
        url_endpoint or DEFAULT_URL + API_PATH)

    auth_type = (pick('os_auth_type', 'OS_AUTH_TYPE') or 'admin_token').lower()
    if auth_type not in AUTH_TYPES:
        raise CommandError(f'Unsupported auth type {auth_type!r}; use one of: '
                           + ', '.join(AUTH_TYPES))
    token = pick('os_token', 'OS_TOKEN') or url_token
    if auth_type == 'none':
        # keystoneauth's "none" plugin sends this placeholder; noauth2 reads it as a
        # non-admin user.
        token = 'notused'
    elif auth_type in ('noauth', 'noauth2') and not token:
        user = env.get('OS_USERNAME') or env.get('OS_USER_ID')
        project = env.get('OS_PROJECT_ID') or env.get('OS_PROJECT_NAME') or user
        token = f'{user}:{project}' if user else None
    token = token or DEFAULT_TOKEN

    version = pick('os_compute_api_version', 'OS_COMPUTE_API_VERSION')
    if version in ('2', '2.latest', 'latest', None):
        version = None if version in (None, '2') else 'latest'
    else:
        parse_version(version)
    return Settings(endpoint=endpoint, token=token, api_version=version,
                    auth_type=auth_type, debug=bool(getattr(args, 'debug', False)),
                    timeout=float(getattr(args, 'timeout', None) or REQUEST_TIMEOUT))


# ------------------------------------------------------------------ HTTP client

class Response:
    """What a call returns: decoded body, status and the request id."""

    def __init__(self, status, body, request_id, headers):
        self.status = status
        self.body = body
        self.request_id = request_id
        self.headers = headers


def _error_message(resp) -> str:
    try:
        body = resp.json()
    except ValueError:
        text = resp.text.strip()
        return text[:500] or resp.reason or 'Unknown error'
    if isinstance(body, dict) and len(body) == 1:
        inner = next(iter(body.values()))
        if isinstance(inner, dict) and 'message' in inner:
            return str(inner['message'])
    if isinstance(body, dict) and 'message' in body:
        return str(body['message'])
    return json.dumps(body)[:500]


class Client:
    """A requests session bound to one endpoint, token and microversion."""

    def __init__(self, settings: Settings, session=None, stderr=None):
        self.settings = settings
        self.http = session or requests.Session()
        self.http.headers.update({'Accept': 'application/json', 'User-Agent': USER_AGENT})
        if settings.token:
            self.http.headers['X-Auth-Token'] = settings.token
        self.stderr = stderr or sys.stderr
        self._version: tuple[int, int] | None = None
        self.server_min: tuple[int, int] | None = None
        self.server_max: tuple[int, int] | None = None

    def close(self):
        self.http.close()

    # ------------------------------------------------------------ plumbing

    @property
    def endpoint(self) -> str:
        return self.settings.endpoint

    @property
    def root_url(self) -> str:
        """The server's root (``http://host:port``) without the API version path."""
        return re.sub(r'/v2(\.\d+)?(/.*)?$', '', self.endpoint)

    @property
    def is_admin(self) -> bool:
        return self.settings.is_admin

    def _send(self, method, url, body=None, params=None, headers=None):
        if self.settings.debug:
            shown = url + ('?' + urllib.parse.urlencode(params, doseq=True) if params else '')
            print(f'REQ: {method} {shown} {json.dumps(body) if body is not None else ""}'
                  f' {headers or ""}'.rstrip(), file=self.stderr)
        try:
            resp = self.http.request(method, url, json=body, params=params, headers=headers,
                                     timeout=self.settings.timeout)
        except requests.exceptions.ConnectionError as exc:
            reason = 'connection refused' if 'refused' in str(exc).lower() else \
                'cannot connect'
            raise CommandError(
                f'Unable to reach the compute API at {url} ({reason}). Is novalite-api '
                'running? Set --os-endpoint / OS_ENDPOINT or NOVALITE_URL.',
                'ConnectionRefused') from None
        except requests.exceptions.Timeout:
            raise CommandError(f'No answer from {url} within {self.settings.timeout:g} s',
                               'Timeout') from None
        except requests.exceptions.RequestException as exc:
            raise CommandError(f'{method} {url} failed: {exc}', 'ConnectionError') from None
        request_id = (resp.headers.get('X-OpenStack-Request-ID')
                      or resp.headers.get('X-Compute-Request-ID'))
        if self.settings.debug:
            print(f'RESP: {resp.status_code} {request_id or ""} {resp.text[:2000]}',
                  file=self.stderr)
        return resp, request_id

    def discover(self):
        """Read the version document; remember the server's microversion range."""
        resp, request_id = self._send('GET', self.endpoint)
        if resp.status_code >= 400:
            raise APIError(resp.status_code, _error_message(resp), request_id, 'GET',
                           self.endpoint)
        try:
            doc = resp.json()
        except ValueError:
            raise CommandError(f'{self.endpoint} did not return a version document; '
                               'is this a compute API endpoint?') from None
        version = doc.get('version') if isinstance(doc, dict) else None
        if not isinstance(version, dict):
            raise CommandError(f'{self.endpoint} did not return a version document')
        self.server_min = parse_version(version.get('min_version') or '2.1')
        self.server_max = parse_version(version['version']) if version.get('version') \
            else (2, 1)
        return version

    @property
    def version(self) -> tuple[int, int]:
        """The microversion every request carries (negotiated on first use)."""
        if self._version is None:
            wanted = self.settings.api_version
            if wanted and wanted != 'latest':
                self._version = parse_version(wanted)
            else:
                self.discover()
                self._version = (self.server_max if wanted == 'latest'
                                 else min(self.server_max, CLIENT_MAX_VERSION))
        return self._version

    def require(self, minimum: str, what: str):
        if self.version < parse_version(minimum):
            raise CommandError(f'{what} needs compute API microversion {minimum} or later '
                               f'(this session uses {format_version(self.version)})',
                               'UnsupportedVersion')

    def request(self, method, path, body=None, params=None, version=None,
                ok=(200, 201, 202, 204)) -> Response:
        ver = format_version(version or self.version)
        headers = {'OpenStack-API-Version': f'compute {ver}',
                   'X-OpenStack-Nova-API-Version': ver}
        url = path if path.startswith('http') else self.endpoint + path
        resp, request_id = self._send(method, url, body, params, headers)
        if resp.status_code not in ok:
            raise APIError(resp.status_code, _error_message(resp), request_id, method, url)
        data = None
        if resp.content:
            try:
                data = resp.json()
            except ValueError:
                data = resp.text
        return Response(resp.status_code, data, request_id, resp.headers)

    def get(self, path, **kw):
        return self.request('GET', path, **kw).body

    def post(self, path, body=None, **kw) -> Response:
        return self.request('POST', path, body=body, **kw)

    def put(self, path, body=None, **kw) -> Response:
        return self.request('PUT', path, body=body, **kw)

    def delete(self, path, **kw) -> Response:
        return self.request('DELETE', path, **kw)

    def action(self, server_id, body, **kw) -> Response:
        return self.post(f'/servers/{server_id}/action', body, **kw)

    # ------------------------------------------------------------ lookups

    def find_server(self, name_or_id) -> dict:
        """A server by id, else by exact name (own project, then all for admins)."""
        try:
            return self.get(f'/servers/{urllib.parse.quote(name_or_id, safe="")}')['server']
        except APIError as exc:
            if exc.status != 404:
                raise
        pattern = '^' + re.escape(name_or_id) + '$'
        matches = self._servers_named(name_or_id, {'name': pattern})
        if not matches and self.is_admin:
            matches = self._servers_named(name_or_id, {'name': pattern, 'all_tenants': '1'})
        if not matches:
            raise CommandError(f'No server with a name or ID of {name_or_id!r} exists.',
                               'NotFound')
        if len(matches) > 1:
            raise CommandError(
                f'Multiple servers are named {name_or_id!r} ('
                + ', '.join(m['id'] for m in matches) + '); use the ID instead.',
                'NoUniqueMatch')
        return self.get(f'/servers/{matches[0]["id"]}')['server']

    def _servers_named(self, name, params):
        servers = self.get('/servers', params=params)['servers']
        return [s for s in servers if s.get('name') == name]

    def find_flavor(self, name_or_id) -> dict:
        try:
            return self.get(f'/flavors/{urllib.parse.quote(name_or_id, safe="")}')['flavor']
        except APIError as exc:
            if exc.status != 404:
                raise
        params = {'is_public': 'None'} if self.is_admin else None
        flavors = self.get('/flavors/detail', params=params)['flavors']
        matches = [f for f in flavors if f.get('name') == name_or_id]
        if not matches:
            raise CommandError(f'No flavor with a name or ID of {name_or_id!r} exists.',
                               'NotFound')
        if len(matches) > 1:
            raise CommandError(f'Multiple flavors are named {name_or_id!r}; use the ID.',
                               'NoUniqueMatch')
        return matches[0]

    def find_image(self, name_or_id) -> str:
        """An image id from a name or id, asking the server's small image API."""
        base = self.root_url + '/image/v2/images'
        if UUID_RE.match(name_or_id):
            resp, _ = self._send('GET', f'{base}/{name_or_id}')
            if resp.status_code in (200, 404) or resp.status_code >= 500:
                # 404: let the compute API give its own "Can not find requested image".
                return name_or_id
        resp, request_id = self._send('GET', base, params={'name': name_or_id})
        if resp.status_code == 404:
            return name_or_id   # no image API here: pass the value through
        if resp.status_code >= 400:
            raise APIError(resp.status_code, _error_message(resp), request_id, 'GET', base)
        images = [i for i in resp.json().get('images', []) if i.get('name') == name_or_id]
        if not images:
            raise CommandError(f'No image with a name or ID of {name_or_id!r} exists.',
                               'NotFound')
        if len(images) > 1:
            raise CommandError(f'Multiple images are named {name_or_id!r}; use the ID.',
                               'NoUniqueMatch')
        return images[0]['id']

    def image_names(self) -> dict:
        """id -> name of every visible image ({} when there is no image API)."""
        resp, _ = self._send('GET', self.root_url + '/image/v2/images')
        if resp.status_code != 200:
            return {}
        try:
            return {i['id']: i.get('name') for i in resp.json().get('images', [])}
        except (ValueError, AttributeError, KeyError):
            return {}
