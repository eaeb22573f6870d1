"""/flavors over REST against a real SQLite database."""

import pytest

from novalite.db import api as db
from novalite.db import session
from tests.unit.api import api_fakes


@pytest.fixture
def client(conf, tmp_path):
    api_fakes.setup_db(tmp_path)
    client, _compute = api_fakes.make_client(conf)
    yield client
    session.set_engine(None)


def test_list_and_detail_shapes(client):
    resp = client.get('/v2.1/flavors')
    assert [f['id'] for f in resp.data['flavors']] == ['1', '2', '3', '4', '5']
    assert set(resp.data['flavors'][0]) == {'id', 'name', 'links'}
    tiny = client.get('/v2.1/flavors/detail').data['flavors'][0]
    assert tiny['ram'] == 512 and tiny['disk'] == 1 and tiny['swap'] == ''
    assert tiny['OS-FLV-DISABLED:disabled'] is False and tiny['rxtx_factor'] == 1.0
    assert 'extra_specs' not in tiny and 'description' not in tiny
    tiny = client.get('/v2.1/flavors/1', version='2.75').data['flavor']
    assert tiny['swap'] == 0 and tiny['description'] is None
    assert tiny['extra_specs'] == {}


def test_paging_and_filters(client):
    resp = client.get('/v2.1/flavors?limit=2')
    assert [f['id'] for f in resp.data['flavors']] == ['1', '2']
    assert 'marker=2' in resp.data['flavors_links'][0]['href']
    resp = client.get('/v2.1/flavors?limit=2&marker=4')
    assert [f['id'] for f in resp.data['flavors']] == ['5']
    assert 'flavors_links' not in resp.data
    assert client.get('/v2.1/flavors?marker=nope').status_int == 400
    assert client.get('/v2.1/flavors?limit=-1').status_int == 400
    assert client.get('/v2.1/flavors?limit=x').status_int == 400
    resp = client.get('/v2.1/flavors/detail?minRam=4096&minDisk=80')
    assert [f['id'] for f in resp.data['flavors']] == ['4', '5']
    assert client.get('/v2.1/flavors?minRam=abc').status_int == 400
    resp = client.get('/v2.1/flavors?sort_key=memory_mb&sort_dir=desc')
    assert resp.data['flavors'][0]['id'] == '5'
    assert client.get('/v2.1/flavors?sort_key=bogus').status_int == 400
    assert client.get('/v2.1/flavors?foo=1', version='2.74').status_int == 200
    assert client.get('/v2.1/flavors?foo=1', version='2.75').status_int == 400


def test_is_public_and_private_access(client):
    db.flavor_create('private', 256, 1, flavorid='p', is_public=False)
    ids = [f['id'] for f in client.get('/v2.1/flavors').data['flavors']]
    assert 'p' not in ids
    ids = [f['id'] for f in client.get('/v2.1/flavors?is_public=none').data['flavors']]
    assert 'p' in ids
    ids = [f['id'] for f in client.get('/v2.1/flavors?is_public=false').data['flavors']]
    assert ids == ['p']
    assert client.get('/v2.1/flavors?is_public=maybe').status_int == 400
    assert client.get('/v2.1/flavors/p', token='bob:p1').status_int == 404
    ids = [f['id'] for f in client.get('/v2.1/flavors?is_public=none',
                                       token='bob:p1').data['flavors']]
    assert 'p' not in ids


def test_show_unknown_is_404(client):
    resp = client.get('/v2.1/flavors/m1.small')
    assert resp.status_int == 404
    assert resp.data['itemNotFound']['message'] == 'Flavor m1.small could not be found.'


def test_create_update_delete(client):
    body = {'flavor': {'name': 'new', 'ram': 1024, 'vcpus': 2, 'disk': 10, 'id': 'n1',
                       'description': 'desc'}}
    assert client.request('POST', '/v2.1/flavors', body, version='2.54').status_int == 400
    resp = client.request('POST', '/v2.1/flavors', body, version='2.55')
    assert resp.status_int == 200
    assert resp.data['flavor']['id'] == 'n1' and resp.data['flavor']['description'] == 'desc'
    dup = client.request('POST', '/v2.1/flavors', body, version='2.55')
    assert dup.status_int == 409
    body['flavor'].update(id='n2')
    assert client.request('POST', '/v2.1/flavors', body, version='2.55').status_int == 409
    anon = {'flavor': {'name': 'anon', 'ram': 64, 'vcpus': 1, 'disk': 0}}
    resp = client.request('POST', '/v2.1/flavors', anon)
    assert len(resp.data['flavor']['id']) == 36
    assert client.request('POST', '/v2.1/flavors', anon,
                          token='bob:p1').status_int == 403
    upd = {'flavor': {'description': 'changed'}}
    assert client.request('PUT', '/v2.1/flavors/n1', upd, version='2.54').status_int == 404
    resp = client.request('PUT', '/v2.1/flavors/n1', upd, version='2.55')
    assert resp.status_int == 200 and resp.data['flavor']['description'] == 'changed'
    assert client.request('PUT', '/v2.1/flavors/zz', upd, version='2.55').status_int == 404
    assert client.request('DELETE', '/v2.1/flavors/n1', token='bob:p1').status_int == 403
    assert client.request('DELETE', '/v2.1/flavors/n1').status_int == 202
    assert client.request('DELETE', '/v2.1/flavors/n1').status_int == 404


def test_2_102_drops_disabled_and_rxtx(client, conf):
    conf.set_override('max_microversion', None, group='api')
    resp = client.get('/v2.1/flavors/1', version='2.100')
    assert 'rxtx_factor' in resp.data['flavor']


def test_extra_specs(client):
    db.flavor_create('spec', 256, 1, flavorid='s', extra_specs={'hw:cpu_policy': 'shared'})
    resp = client.get('/v2.1/flavors/s/os-extra_specs')
    assert resp.data == {'extra_specs': {'hw:cpu_policy': 'shared'}}
    assert client.get('/v2.1/flavors/s/os-extra_specs/hw:cpu_policy').data == {
        'hw:cpu_policy': 'shared'}
    assert client.get('/v2.1/flavors/s/os-extra_specs/nope').status_int == 404
    detail = client.get('/v2.1/flavors/s', version='2.61').data['flavor']
    assert detail['extra_specs'] == {'hw:cpu_policy': 'shared'}


def test_extra_specs_set_update_delete(client):
    db.flavor_create('spec', 256, 1, flavorid='w')
    base = '/v2.1/flavors/w/os-extra_specs'
    resp = client.request('POST', base, {'extra_specs': {
        'novalite:migration_policy': 'standard', 'hw:numa_nodes': 2, 'trait:X': True}})
    assert resp.status_int == 200
    assert resp.data == {'extra_specs': {'novalite:migration_policy': 'standard',
                                         'hw:numa_nodes': '2', 'trait:X': 'True'}}
    resp = client.request('PUT', f'{base}/hw:numa_nodes', {'hw:numa_nodes': '1'})
    assert (resp.status_int, resp.data) == (200, {'hw:numa_nodes': '1'})
    assert db.flavor_get_by_flavorid('w')['extra_specs'] == {
        'novalite:migration_policy': 'standard', 'hw:numa_nodes': '1', 'trait:X': 'True'}
    assert client.request('DELETE', f'{base}/trait:X').status_int == 200
    assert client.request('DELETE', f'{base}/trait:X').status_int == 404
    assert client.get(base).data == {'extra_specs': {
        'novalite:migration_policy': 'standard', 'hw:numa_nodes': '1'}}

    # Refused, and nothing changes: bad bodies, a key/URI mismatch, non-admins, no flavor.
    for body in ({}, {'extra_specs': 'x'}, {'extra_specs': {'bad/key': 'v'}},
                 {'extra_specs': {'k': 'v' * 256}}, {'extra_specs': {'k': None}},
                 {'extra_specs': {'k': 'v'}, 'more': 1}):
        assert client.request('POST', base, body).status_int == 400
    assert client.request('PUT', f'{base}/hw:numa_nodes', {'other': '1'}).status_int == 400
    assert client.request('PUT', f'{base}/hw:numa_nodes',
                          {'hw:numa_nodes': '1', 'x': '2'}).status_int == 400
    assert client.request('POST', base, {'extra_specs': {'k': 'v'}},
                          token='bob:p1').status_int == 403
    assert client.request('DELETE', f'{base}/hw:numa_nodes', token='bob:p1').status_int == 403
    assert client.request('POST', '/v2.1/flavors/nope/os-extra_specs',
                          {'extra_specs': {'k': 'v'}}).status_int == 404
    assert client.get(base).data == {'extra_specs': {
        'novalite:migration_policy': 'standard', 'hw:numa_nodes': '1'}}
