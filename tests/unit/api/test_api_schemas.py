"""Request schemas per microversion."""

import pytest

from novalite.api import faults, validation
from novalite.api.schemas import flavors, server_actions, servers


def _ok(body, schema):
    validation.validate(body, schema)


def _bad(body, schema):
    with pytest.raises(faults.HTTPError) as err:
        validation.validate(body, schema)
    assert err.value.code == 400
    return err.value.message


def _server(**kw):
    return {'server': {'name': 'vm', 'flavorRef': '1', 'imageRef': 'x', **kw}}


def test_create_networks_required_from_2_37():
    _ok(_server(), servers.create((2, 36)))
    _bad(_server(), servers.create((2, 37)))
    for value in ('auto', 'none', [], [{'uuid': 'abc'}]):
        _ok(_server(networks=value), servers.create((2, 37)))
    _bad(_server(networks='some'), servers.create((2, 37)))


def test_create_fields_gated_by_version():
    _bad(_server(description='d'), servers.create((2, 18)))
    _ok(_server(description='d'), servers.create((2, 19)))
    _bad(_server(tags=['a']), servers.create((2, 51)))
    _ok(_server(tags=['a'], networks='none'), servers.create((2, 52)))
    _ok(_server(personality=[], networks='auto'), servers.create((2, 56)))
    _bad(_server(personality=[], networks='none'), servers.create((2, 57)))
    _bad(_server(host='h', networks='none'), servers.create((2, 73)))
    _ok(_server(host='h', networks='none'), servers.create((2, 74)))
    _bad(_server(hostname='h1', networks='none'), servers.create((2, 89)))
    _ok(_server(hostname='h1', networks='none'), servers.create((2, 90)))
    _bad(_server(hostname='a.b', networks='none'), servers.create((2, 90)))
    _ok(_server(hostname='a.b', networks='none'), servers.create((2, 94)))


def test_create_rejects_bad_values():
    schema = servers.create((2, 1))
    _bad({'server': {'flavorRef': '1'}}, schema)
    _bad(_server(name=' lead'), schema)
    _bad(_server(name=''), schema)
    _bad(_server(min_count=0), schema)
    _bad(_server(min_count='x'), schema)
    _ok(_server(min_count='2', max_count=3), schema)
    _bad(_server(metadata={'k': 1}), schema)
    _bad(_server(user_data='not base64!'), schema)
    _ok(_server(user_data='aGVsbG8='), schema)
    _bad(_server(unknown=1), schema)
    _bad({'server': {'name': 'vm', 'flavorRef': '1'}, 'extra': 1}, schema)


def test_network_tag_versions():
    tagged = [{'uuid': 'u', 'tag': 't'}]
    _bad(_server(networks=tagged), servers.create((2, 31)))
    _ok(_server(networks=tagged), servers.create((2, 32)))
    _bad(_server(networks=tagged), servers.create((2, 36)))
    _bad(_server(networks=tagged), servers.create((2, 41)))
    _ok(_server(networks=tagged), servers.create((2, 42)))


@pytest.mark.parametrize('mv,body,ok', [
    ((2, 1), {'host': None, 'block_migration': False, 'disk_over_commit': False}, True),
    ((2, 1), {'host': None, 'block_migration': False}, False),
    ((2, 1), {'host': None, 'block_migration': 'auto', 'disk_over_commit': False}, False),
    ((2, 25), {'host': None, 'block_migration': 'auto'}, True),
    ((2, 25), {'host': None, 'block_migration': 'auto', 'disk_over_commit': False}, False),
    ((2, 25), {'block_migration': 'auto'}, False),
    ((2, 29), {'host': 'h', 'block_migration': True, 'force': True}, False),
    ((2, 30), {'host': 'h', 'block_migration': True, 'force': True}, True),
    ((2, 30), {'host': None, 'block_migration': 'auto'}, True),
    ((2, 67), {'host': 'h', 'block_migration': 'false', 'force': 'yes'}, True),
    ((2, 68), {'host': 'h', 'block_migration': True, 'force': True}, False),
    ((2, 96), {'host': 'bad host', 'block_migration': True}, False),
])
def test_migrate_live_schema(mv, body, ok):
    schema = server_actions.migrate_live(mv)
    wrapped = {'os-migrateLive': body}
    (_ok if ok else _bad)(wrapped, schema)


def test_migrate_and_lock_schemas():
    for value in (None, {}, {'host': 'h'}, {'host': None}):
        _ok({'migrate': value}, server_actions.MIGRATE_V256)
    _bad({'migrate': {'flavor': 1}}, server_actions.MIGRATE_V256)
    _ok({'lock': None}, server_actions.LOCK_V273)
    _ok({'lock': {'locked_reason': 'r'}}, server_actions.LOCK_V273)
    _bad({'lock': {'reason': 'r'}}, server_actions.LOCK_V273)
    _ok({'force_complete': None}, server_actions.FORCE_COMPLETE)
    _bad({'force_complete': 'null'}, server_actions.FORCE_COMPLETE)
    _bad({'reboot': {'type': 'WARM'}}, server_actions.REBOOT)
    _ok({'reboot': {'type': 'soft'}}, server_actions.REBOOT)


def test_flavor_create_schema():
    base = {'name': 'f', 'ram': 512, 'vcpus': 1, 'disk': 0}
    _ok({'flavor': base}, flavors.create((2, 1)))
    _ok({'flavor': dict(base, ram='512', id=7)}, flavors.create((2, 1)))
    _bad({'flavor': dict(base, ram=0)}, flavors.create((2, 1)))
    _bad({'flavor': dict(base, id=' x')}, flavors.create((2, 1)))
    _bad({'flavor': dict(base, description='d')}, flavors.create((2, 54)))
    _ok({'flavor': dict(base, description='d')}, flavors.create((2, 55)))
    _bad({'flavor': {'name': 'f', 'ram': 1, 'vcpus': 1}}, flavors.create((2, 1)))
