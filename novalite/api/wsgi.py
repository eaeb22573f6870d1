"""The compute API WSGI application: request ids, auth, microversions, routing, faults."""

import logging
import re

import webob
import webob.exc
from oslo_context import context as oslo_context
from oslo_middleware import sizelimit

from novalite import context as nl_context
from novalite.api import auth, faults, hygiene, microversion
from novalite.api.handlers import images, versions
from novalite.api.router import TOP_LEVEL, Router
from novalite.conf import CONF

LOG = logging.getLogger(__name__)

API_PREFIX = '/v2.1'
PROJECT_RE = re.compile(r'^[0-9a-zA-Z_\-]+$')
JSON_TYPES = ('application/json', 'application/vnd.openstack.compute+json')


class Application:
    """One WSGI callable serving discovery, the compute API and the small image API."""

    def __init__(self, conf, compute_api=None):
        self.conf = conf
        self._compute_api = compute_api
        self.router = Router()
        self.authorizer = auth.Authorizer(conf)
        self.keystone = conf.api.auth_strategy == 'keystone'
        self.api_wsgi = (auth.wrap_keystone(self._inner_app, conf) if self.keystone
                         else self._inner_app)
        # oslo.middleware's limiter, as in Nova's pipeline: [oslo_middleware]
        # max_request_body_size (114688 bytes by default) answers 413 before any parsing.
        self._limited = sizelimit.RequestBodySizeLimiter(self._sized_app, conf)

    @property
    def compute_api(self):
        if self._compute_api is None:
            from novalite.api import compute_api
            self._compute_api = compute_api.API()
        return self._compute_api

    # ------------------------------------------------------------ outer layer

    def __call__(self, environ, start_response):
        request_id = nl_context.generate_request_id()
        environ['novalite.request_id'] = request_id
        # A context of this request only, until auth builds the real one: whatever logs
        # before that (keystonemiddleware rejecting a token) logs this request's id, not
        # the one a previous request left in the thread's context store.
        oslo_context.RequestContext(request_id=request_id, overwrite=True)
        req = webob.Request(environ)
        resp = req.get_response(self._limited)
        if resp.status_int == 413 and resp.content_type != 'application/json':
            resp = faults.fault_response(413, 'Request is too large.')
        resp.headers['X-OpenStack-Request-ID'] = request_id
        resp.headers['X-Compute-Request-ID'] = request_id
        return resp(environ, start_response)

    def _sized_app(self, environ, start_response):
        req = webob.Request(environ)
        req.app = self
        try:
            hygiene.path_info(environ)
            hygiene.check_query(req)
            resp = self._top(req)
        except faults.HTTPError as exc:
            resp = faults.fault_response(exc.code, exc.message, exc.headers)
        except Exception:
            resp = self._unexpected(environ['novalite.request_id'])
        return resp(environ, start_response)

    def _top(self, req):
        path = req.path_info
        if path in ('', '/'):
            if req.method != 'GET':
                raise faults.HTTPError(405, 'The method specified is not allowed for this '
                                            'resource.', headers={'Allow': 'GET'})
            return versions.root(req)
        if path in (API_PREFIX, API_PREFIX + '/'):
            return self._version_doc(req)
        if path == API_PREFIX + '/openapi.json':
            return self._openapi(req)
        if path.startswith(API_PREFIX + images.GLANCE_ALIAS):
            # admin_token clients ask image questions of the compute endpoint
            # (``nova boot --image NAME`` -> /v2.1/v2/images?name=NAME).
            req.environ['novalite.area'] = 'image'
            req.environ['novalite.image_prefix'] = API_PREFIX
            return req.get_response(self.api_wsgi)
        if path.startswith(API_PREFIX + '/'):
            req.environ['novalite.area'] = 'compute'
            return req.get_response(self.api_wsgi)
        if path == '/image' or path.startswith('/image/'):
            if path.rstrip('/') in ('/image', '/image/versions'):
                return images.glance_versions(req)
            req.environ['novalite.area'] = 'image'
            return req.get_response(self.api_wsgi)
        if path.rstrip('/') == '/identity/v3' and not self.keystone:
            return versions.identity_v3(req)
        return versions.choices(req)

    def _version_doc(self, req):
        version = microversion.negotiate_or_fault(req.headers, self.conf)
        if isinstance(version, webob.Response):
            return version
        if req.method != 'GET':
            resp = faults.fault_response(405, 'The method specified is not allowed for '
                                              'this resource.', {'Allow': 'GET'})
        else:
            resp = versions.version_doc(req)
        microversion.add_headers(resp, version)
        return resp

    @staticmethod
    def _openapi(req):
        """The OpenAPI document; public like the version document."""
        if req.method not in ('GET', 'HEAD'):
            raise faults.HTTPError(405, 'The method specified is not allowed for this '
                                        'resource.', headers={'Allow': 'GET'})
        from novalite.api import openapi
        resp = webob.Response(status=200, content_type='application/json',
                              charset='UTF-8')
        resp.body = openapi.document_bytes()
        return resp

    def _unexpected(self, request_id):
        LOG.exception('Unexpected error while handling request %s', request_id)
        return faults.fault_response(
            500, 'Unexpected API Error. The error was logged with request id %s.'
            % request_id)

    # ------------------------------------------------------------ authenticated layer

    def _inner_app(self, environ, start_response):
        req = webob.Request(environ)
        req.app = self
        request_id = environ['novalite.request_id']
        version = None
        try:
            ctx = self._context(req, request_id)
            if isinstance(ctx, webob.Response):
                resp = ctx
            else:
                req.context = ctx
                if environ.get('novalite.area') == 'image':
                    req.json_body_parsed = None
                    resp = images.glance_dispatch(req)
                else:
                    version = microversion.negotiate_or_fault(req.headers, self.conf)
                    if isinstance(version, webob.Response):
                        resp, version = version, None
                    else:
                        req.mv = version
                        resp = self._dispatch(req)
        except faults.HTTPError as exc:
            resp = faults.fault_response(exc.code, exc.message, exc.headers)
        except Exception as exc:  # noqa: BLE001 - mapped by the one table or a 500
            code = faults.status_for(exc)
            if code is None:
                resp = self._unexpected(request_id)
            else:
                resp = faults.fault_response(code, str(exc))
        if version is not None:
            microversion.add_headers(resp, version)
        return resp(environ, start_response)

    def _context(self, req, request_id):
        if self.keystone:
            return auth.keystone_context(req, request_id)
        if not req.headers.get('X-Auth-Token'):
            # The legacy handshake (X-Auth-User, as Nova's noauth2 answers any token-less
            # request) hands out a token; a request that simply lacks one is a 401.
            if req.headers.get('X-Auth-User') or req.headers.get('X-Auth-Key'):
                return auth.noauth2_challenge(req)
            raise faults.HTTPError(401, 'The request you have made requires '
                                        'authentication.',
                                   headers={'WWW-Authenticate': 'X-Auth-Token'})
        return auth.noauth2_context(req, request_id)

    def _dispatch(self, req):
        rest = req.path_info[len(API_PREFIX):]
        match = self.router.match(rest)
        url_project = None
        if match is None:
            parts = rest.split('/', 2)
            if (len(parts) == 3 and parts[1] not in TOP_LEVEL
                    and PROJECT_RE.match(parts[1])):
                url_project = parts[1]
                match = self.router.match('/' + parts[2])
        if match is None:
            raise faults.not_found('The resource could not be found.')
        if url_project is not None and url_project != req.context.project_id:
            raise faults.bad_request(
                "Malformed request URL: URL's project_id '%s' doesn't match Context's "
                "project_id '%s'" % (url_project, req.context.project_id))
        req.url_project_id = url_project
        key, path_vars = match
        handler = self.router.handler(key, req.method, req.mv)
        req.json_body_parsed = self._parse_body(req)
        return handler(req, **path_vars)

    @staticmethod
    def _parse_body(req):
        if req.method not in ('POST', 'PUT'):
            return None
        try:
            body = req.body
        except webob.exc.HTTPRequestEntityTooLarge:
            # A chunked body that grew past the limit while being read.
            raise faults.HTTPError(413, 'Request is too large.')
        if not body:
            return None
        ctype = (req.content_type or '').lower()
        if ctype and ctype not in JSON_TYPES:
            raise faults.HTTPError(415, 'Unsupported Content-Type')
        return hygiene.parse_json(body)


def make_app(conf=CONF, compute_api=None):
    """The compute API as a WSGI callable.

    ``compute_api`` defaults to ``novalite.api.compute_api.API()``; it is built here when
    importable, else on first use.
    """
    if compute_api is None:
        try:
            from novalite.api import compute_api as compute_api_mod
        except ImportError:
            LOG.warning('novalite.api.compute_api is not importable yet; it will be loaded '
                        'on first use')
        else:
            compute_api = compute_api_mod.API()
    return Application(conf, compute_api)
