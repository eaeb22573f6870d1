"""The OpenAPI document: committed copy up to date, complete, valid, and served."""

import json

import jsonschema
import webob

from novalite.api import openapi, router, wsgi


def test_committed_document_is_generated_one():
    with open(openapi.PATH) as f:
        committed = f.read()
    assert committed == openapi.dumps(openapi.build()), (
        'novalite/api/openapi.json is out of date: run tools/gen_openapi.py')


def test_every_route_is_described():
    doc = openapi.build()
    for path, methods in router.ROUTES:
        if path == '':
            continue
        for method in methods:
            assert method.lower() in doc['paths'][path], (method, path)
    assert set(openapi.OPERATIONS) == {(p, m) for p, ms in router.ROUTES for m in ms}
    ids = [op['operationId'] for item in doc['paths'].values() for op in item.values()]
    assert len(ids) == len(set(ids))


def _schemas(node):
    if isinstance(node, dict):
        if 'schema' in node and isinstance(node['schema'], dict):
            yield node['schema']
        for value in node.values():
            yield from _schemas(value)
    elif isinstance(node, list):
        for value in node:
            yield from _schemas(value)


def test_schemas_are_valid_2020_12():
    doc = openapi.build()
    count = 0
    for schema in _schemas(doc['paths']):
        if '$ref' not in schema:
            jsonschema.Draft202012Validator.check_schema(schema)
            count += 1
    jsonschema.Draft202012Validator.check_schema(doc['components']['schemas']['Fault'])
    assert count > 50


def test_request_schemas_are_the_validated_ones():
    from novalite.api.schemas import servers
    doc = openapi.build()
    body = doc['paths']['/servers']['post']['requestBody']['content']['application/json']
    assert body['schema'] == openapi.to_2020(servers.create(openapi.MAX))
    flavor = doc['paths']['/flavors']['post']['requestBody']['content']['application/json']
    rxtx = flavor['schema']['properties']['flavor']['properties']['rxtx_factor']
    assert rxtx['exclusiveMinimum'] == 0 and 'minimum' not in rxtx


def test_served_without_token(conf):
    app = wsgi.Application(conf, compute_api=object())
    resp = webob.Request.blank('/v2.1/openapi.json').get_response(app)
    assert resp.status_int == 200
    assert resp.content_type == 'application/json'
    assert json.loads(resp.body) == json.loads(openapi.document_bytes())
    post = webob.Request.blank('/v2.1/openapi.json', method='POST').get_response(app)
    assert post.status_int == 405
