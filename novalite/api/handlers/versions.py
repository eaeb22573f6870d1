"""Version discovery documents (and the Keystone v3 stub clients need without Keystone)."""

from novalite.api import common, microversion

MEDIA_TYPES = [{'base': 'application/json',
                'type': 'application/vnd.openstack.compute+json;version=2.1'}]


def _host(req):
    return common.base_url(req, req.app.conf)


def _v21(req) -> dict:
    return {
        'id': 'v2.1', 'status': 'CURRENT',
        'version': microversion.to_str(microversion.max_version(req.app.conf)),
        'min_version': microversion.to_str(microversion.MIN_VERSION),
        'updated': '2013-07-23T11:33:21Z',
        'links': [{'rel': 'self', 'href': _host(req) + '/v2.1/'}],
    }


def root(req):
    """GET / — the unversioned list of API versions."""
    return common.json_response({'versions': [_v21(req)]})


# novalite's own resources beside Nova's, each shown as a link of the version document
# (the only place the version schema clients check leaves open).
EXTENSIONS = ('os-host-drains', 'os-novalite-images')


def version_doc(req, **_kw):
    """GET /v2.1 — what novaclient and keystoneauth read to negotiate."""
    doc = _v21(req)
    doc['links'].append({'rel': 'describedby', 'type': 'text/html',
                         'href': 'http://docs.openstack.org/'})
    for name in EXTENSIONS:
        doc['links'].append({'rel': 'extension', 'type': 'application/json',
                             'href': _host(req) + '/v2.1/' + name})
    doc['media-types'] = MEDIA_TYPES
    return common.json_response({'version': doc})


def choices(req):
    """Any other root path: 300 with where the API lives."""
    path = req.path_info.lstrip('/')
    tail = path.split('/', 1)[1] if '/' in path else ''
    href = _host(req) + '/v2.1/' + tail
    body = {'choices': [{'id': 'v2.1', 'status': 'CURRENT',
                         'links': [{'rel': 'self', 'href': href}],
                         'media-types': MEDIA_TYPES}]}
    return common.json_response(body, status=300)


def identity_v3(req):
    """A Keystone v3 version document so OSC's identity version check passes (noauth2)."""
    return common.json_response({'version': {
        'id': 'v3.14', 'status': 'stable', 'updated': '2020-04-07T00:00:00Z',
        'links': [{'rel': 'self', 'href': _host(req) + '/identity/v3/'}],
        'media-types': [{'base': 'application/json',
                         'type': 'application/vnd.openstack.identity-v3+json'}]}})
