"""Discovery, auth, microversion headers and error handling of the REST app."""

import pytest

from novalite.api import microversion
from novalite.db import session
from tests.unit.api import api_fakes

MAX = microversion.to_str(microversion.MAX_VERSION)


@pytest.fixture
def client(conf, tmp_path):
    api_fakes.setup_db(tmp_path)
    client, _compute = api_fakes.make_client(conf)
    yield client
    session.set_engine(None)


def _request_ids(resp):
    rid = resp.headers['X-OpenStack-Request-ID']
    assert rid.startswith('req-') and resp.headers['X-Compute-Request-ID'] == rid
    return rid


def test_root_versions_unversioned(client):
    resp = client.get('/', token=None)
    assert resp.status_int == 200
    (v21,) = resp.data['versions']
    assert v21['id'] == 'v2.1' and v21['version'] == MAX and v21['min_version'] == '2.1'
    assert 'OpenStack-API-Version' not in resp.headers
    _request_ids(resp)


@pytest.mark.parametrize('path', ['/v2.1', '/v2.1/'])
def test_version_document_needs_no_token(client, path):
    resp = client.get(path, token=None)
    assert resp.status_int == 200
    doc = resp.data['version']
    assert doc['id'] == 'v2.1' and doc['status'] == 'CURRENT'
    assert doc['version'] == MAX and doc['min_version'] == '2.1'
    assert doc['links'][0] == {'rel': 'self', 'href': 'http://localhost/v2.1/'}
    assert resp.headers['OpenStack-API-Version'] == 'compute 2.1'


def test_unknown_root_path_is_300(client):
    resp = client.get('/v3/servers', token=None)
    assert resp.status_int == 300
    assert resp.data['choices'][0]['links'][0]['href'].endswith('/v2.1/servers')


def test_noauth2_without_token_hands_out_one(client):
    resp = client.get('/v2.1/servers', token=None,
                      headers={'X-Auth-User': 'bob', 'X-Auth-Project-Id': 'proj'})
    assert resp.status_int == 204
    assert resp.headers['X-Auth-Token'] == 'bob:proj'
    assert resp.headers['X-Server-Management-Url'].endswith('/v2.1/servers/proj')


def test_identity_v3_stub(client):
    resp = client.get('/identity/v3', token=None)
    assert resp.status_int == 200 and resp.data['version']['id'].startswith('v3')


def test_microversion_headers_on_success_and_error(client):
    resp = client.get('/v2.1/servers/nope', version='2.60')
    assert resp.status_int == 404
    assert resp.data['itemNotFound']['code'] == 404
    assert resp.headers['OpenStack-API-Version'] == 'compute 2.60'
    assert resp.headers['X-OpenStack-Nova-API-Version'] == '2.60'
    assert sorted(v for k, v in resp.headerlist if k == 'Vary') == [
        'OpenStack-API-Version', 'X-OpenStack-Nova-API-Version']
    resp = client.get('/v2.1/flavors', version='latest')
    assert resp.headers['X-OpenStack-Nova-API-Version'] == MAX


def test_bad_and_unsupported_versions(client):
    assert client.get('/v2.1/flavors', version='2.01').status_int == 400
    resp = client.get('/v2.1/flavors', version='9.0')
    assert resp.status_int == 406
    assert 'Minimum is 2.1 and maximum is %s' % MAX in resp.data['notAcceptable']['message']
    resp = client.get('/v2.1/flavors', headers={'X-OpenStack-Nova-API-Version': '2.3'})
    assert resp.headers['X-OpenStack-Nova-API-Version'] == '2.3'


def test_project_prefix(client):
    assert client.get('/v2.1/admin/flavors').status_int == 200
    resp = client.get('/v2.1/other/flavors')
    assert resp.status_int == 400
    assert "doesn't match Context's project_id" in resp.data['badRequest']['message']


def test_method_not_allowed(client):
    assert client.request('HEAD', '/v2.1/servers').status_int == 405
    resp = client.request('PATCH', '/v2.1/flavors')
    assert resp.status_int == 405 and resp.data['badMethod']['code'] == 405


def test_unknown_route_404(client):
    assert client.get('/v2.1/os-keypairs').status_int == 404
    assert client.get('/v2.1/servers/a/b/c/d').status_int == 404


def test_body_errors(client):
    resp = client.request('POST', '/v2.1/flavors', raw_body=b'{not json')
    assert resp.status_int == 400
    assert resp.data['badRequest']['message'] == 'Malformed request body'
    resp = client.request('POST', '/v2.1/flavors', raw_body=b'<xml/>',
                          content_type='application/xml')
    assert resp.status_int == 415 and 'badMediaType' in resp.data
    resp = client.request('POST', '/v2.1/flavors', raw_body=b'[1]')
    assert resp.status_int == 400


def test_microversion_gated_route_is_404(client):
    assert client.get('/v2.1/os-hypervisors/statistics', version='2.87').status_int == 200
    assert client.get('/v2.1/os-hypervisors/statistics', version='2.88').status_int == 404
    assert client.get('/v2.1/images', version='2.35').status_int == 200
    assert client.get('/v2.1/images', version='2.36').status_int == 404


def test_unexpected_error_is_500_with_request_id(conf, tmp_path, caplog):
    api_fakes.setup_db(tmp_path)
    compute = api_fakes.FakeComputeAPI()
    client, _ = api_fakes.make_client(conf, compute)
    inst = api_fakes.make_server(project='admin', user='admin')
    compute.fail['stop'] = RuntimeError('boom')
    resp = client.request('POST', '/v2.1/servers/%s/action' % inst['uuid'],
                          {'os-stop': None})
    assert resp.status_int == 500
    rid = _request_ids(resp)
    assert rid in resp.data['computeFault']['message']
    assert 'boom' not in resp.data['computeFault']['message']
    assert any(rid in r.getMessage() for r in caplog.records)
    session.set_engine(None)


def test_policy_denial_is_403(client):
    resp = client.get('/v2.1/os-hypervisors', token='bob:p1')
    assert resp.status_int == 403 and 'forbidden' in resp.data


def test_glance_style_probe_on_compute_endpoint_is_404(client):
    assert client.get('/v2.1/v2/images/abc', version='2.96').status_int == 404
