"""The REST client and the polling helper with which every test tier drives novalite.

One ``RestClient`` speaks to the compute API either over HTTP (a cluster of daemons, an
all-in-one serving a port) or straight into a WSGI app in this process (no socket), and
``wait_until`` is the one polling loop: a tier picks its own timeout and poll interval
(an in-process cloud answers in microseconds, separate daemons in milliseconds).
"""

import json
import time

import requests
import webob

ADMIN_TOKEN = 'admin:admin'
_CLIENT_TOKEN = object()  # "the client's own token" (None sends no token at all)
_GONE = object()


def wait_until(predicate, timeout=10.0, interval=0.02, message='condition'):
    """Call ``predicate`` until it returns something true, and return that.

    Raises AssertionError after ``timeout`` seconds; ``message`` says what was awaited
    (a callable is asked at that moment, so it can describe the last state seen).
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            what = message() if callable(message) else message
            raise AssertionError(f'timeout after {timeout}s waiting for {what}')
        time.sleep(interval)


class ApiError(AssertionError):
    """A response whose status is not the one the test expected."""

    def __init__(self, method, path, response, expected):
        super().__init__(f'{method} {path}: expected {expected}, got '
                         f'{response.status_int}: {response.body[:500]!r}')
        self.response = response


class Response:
    """Status, headers and body of one response; ``data`` is the body decoded from JSON
    (its text when it is not JSON, None when empty)."""

    def __init__(self, status_int, headers, headerlist, body, content_type):
        self.status_int = status_int
        self.headers = headers
        self.headerlist = headerlist
        self.body = body
        self.content_type = content_type
        self.data = None
        if body:
            try:
                self.data = json.loads(body)
            except ValueError:
                self.data = self.text

    @property
    def text(self):
        return self.body.decode('utf-8', 'replace')


class RestClient:
    """Requests to one compute API endpoint as one user at one microversion.

    ``endpoint`` is the server root ('' for an in-process ``app``), ``prefix`` what
    relative paths hang below (a path starting with ``//`` starts at the root instead).
    Without a ``microversion`` no version header is sent (the API then answers as 2.1).
    ``wait_timeout`` and ``poll_interval`` are the defaults of the waits below.
    """

    def __init__(self, endpoint='', token=ADMIN_TOKEN, microversion='2.80', app=None,
                 prefix='/v2.1', wait_timeout=30.0, poll_interval=0.02):
        self.endpoint = endpoint.rstrip('/')
        self.prefix = prefix
        self.token = token
        self.microversion = microversion
        self.app = app
        self.wait_timeout = wait_timeout
        self.poll_interval = poll_interval
        self._http = None

    @property
    def compute_url(self):
        """The URL of the compute API, as a client library's endpoint setting wants it."""
        return self.endpoint + self.prefix

    # ------------------------------------------------------------------ requests

    def request(self, method, path, body=None, token=_CLIENT_TOKEN, version=None,
                headers=None, raw_body=None, content_type='application/json', expect=None):
        """One request; with ``expect`` any other status raises ApiError."""
        url = path[1:] if path.startswith('//') else self.prefix + path
        all_headers = {}
        token = self.token if token is _CLIENT_TOKEN else token
        if token:
            all_headers['X-Auth-Token'] = token
        version = version or self.microversion
        if version:
            all_headers['OpenStack-API-Version'] = f'compute {version}'
        if body is not None:
            raw_body = json.dumps(body).encode()
        if raw_body is not None and content_type:
            all_headers['Content-Type'] = content_type
        all_headers.update(headers or {})
        if self.app is not None:
            response = self._call_app(method, url, all_headers, raw_body)
        else:
            response = self._call_http(method, url, all_headers, raw_body)
        if expect is not None and response.status_int != expect:
            raise ApiError(method, path, response, expect)
        return response

    def _call_app(self, method, url, headers, raw_body):
        req = webob.Request.blank(url, method=method)
        if raw_body is not None:
            req.body = raw_body
        for key, value in headers.items():
            req.headers[key] = value
        resp = req.get_response(self.app)
        return Response(resp.status_int, resp.headers, resp.headerlist, resp.body,
                        resp.content_type)

    def _call_http(self, method, url, headers, raw_body):
        if self._http is None:
            self._http = requests.Session()
        resp = self._http.request(method, self.endpoint + url, data=raw_body,
                                  headers=headers, timeout=30)
        return Response(resp.status_code, resp.headers, list(resp.headers.items()),
                        resp.content, resp.headers.get('Content-Type', '').split(';')[0])

    def get(self, path, **kw):
        return self.request('GET', path, **kw)

    def get_json(self, path, **kw):
        """The decoded body of a GET that must answer 200."""
        return self.request('GET', path, expect=200, **kw).data

    def post(self, path, body, **kw):
        return self.request('POST', path, body, **kw)

    # ------------------------------------------------------------------ servers

    def action(self, server_id, body, expect=202, **kw):
        return self.request('POST', f'/servers/{server_id}/action', body, expect=expect, **kw)

    def server(self, server_id, **kw):
        return self.get_json(f'/servers/{server_id}', **kw)['server']

    def boot(self, name='vm', flavor='1', image=None, wait=True, token=_CLIENT_TOKEN,
             **extra):
        """Create a server (the first image unless ``image``); with ``wait`` return it
        once ACTIVE, else return the create response's server."""
        body = {'server': {'name': name, 'flavorRef': flavor, 'networks': 'none',
                           'imageRef': image or self.first_image(), **extra}}
        server = self.request('POST', '/servers', body, token=token,
                              expect=202).data['server']
        if wait:
            return self.wait_for_server(server['id'], 'ACTIVE', token=token)
        return server

    def first_image(self):
        return self.get_json('//image/v2/images')['images'][0]['id']

    def wait_until(self, predicate, timeout=None, message='condition'):
        """wait_until() with this client's default timeout and poll interval."""
        return wait_until(predicate, timeout or self.wait_timeout, self.poll_interval,
                          message)

    def wait_for_server(self, server_id, status='ACTIVE', task_state=None, timeout=None,
                        token=_CLIENT_TOKEN, version=None):
        """The server once it shows ``status`` and ``task_state`` (None: no task running).

        Status DELETED waits for a 404 and returns None; a server going to ERROR when
        something else was awaited fails at once, with its fault.
        """
        seen = []

        def settled():
            resp = self.get(f'/servers/{server_id}', token=token, version=version)
            if resp.status_int == 404 and status == 'DELETED':
                return _GONE
            if resp.status_int != 200:
                raise ApiError('GET', f'/servers/{server_id}', resp, 200)
            server = resp.data['server']
            state = (server['status'], server.get('OS-EXT-STS:task_state'))
            if not seen or seen[-1] != state:
                seen.append(state)
            if state == (status, task_state):
                return server
            if server['status'] == 'ERROR' and status != 'ERROR':
                raise AssertionError(f'server went to ERROR: {server.get("fault")}')
            return None

        def describe():
            return f'server {server_id} to be {status}/{task_state}; seen {seen}'

        found = self.wait_until(settled, timeout, describe)
        return None if found is _GONE else found

    def migrations(self, server_id, migration_type=None):
        """The migrations of a server, the newest first, maybe of one type only."""
        migs = self.get_json(f'/os-migrations?instance_uuid={server_id}')['migrations']
        return [m for m in migs if migration_type in (None, m['migration_type'])]

    def wait_for_migration(self, server_id, migration_type=None, status='completed',
                           timeout=None):
        """The newest migration of a server (of ``migration_type``) once its status is
        ``status`` (a string, or a collection of acceptable ones)."""
        wanted = (status,) if isinstance(status, str) else tuple(status)
        last = []

        def newest():
            migs = self.migrations(server_id, migration_type)
            last[:] = migs[:1]
            return migs[0] if migs and migs[0]['status'] in wanted else None

        return self.wait_until(newest, timeout, lambda: f'a {migration_type or "any"} '
                               f'migration of {server_id} in {wanted}; last {last}')
