"""Migration policies: the file's validation, the built-in default and the selection."""

import pytest

from novalite.conductor import policies
from novalite.conf import CONF
from novalite.virt import driver as virt_driver

FLAVOR = {'memory_mb': 4096, 'root_gb': 10, 'ephemeral_gb': 0, 'extra_specs': {}}


def _parse(data):
    return policies.parse(data, policies.builtin_default(CONF))


def test_without_a_file_only_the_default_from_the_libvirt_options(conf):
    conf.set_override('live_migration_permit_post_copy', True, group='libvirt')
    conf.set_override('live_migration_bandwidth', 300, group='libvirt')
    loaded = policies.load('')
    assert list(loaded.policies) == ['default'] and loaded.default == 'default'
    default = loaded.default_policy
    assert default.permit_post_copy and default.bandwidth == 300
    assert default.stall_seconds == 0 and default.max_parallel == 0
    settings = default.settings(FLAVOR, block_migration=False)
    assert settings['completion_timeout'] == virt_driver.completion_timeout(
        CONF, {'flavor': FLAVOR}, False)
    assert set(settings) == set(virt_driver.POLICY_KEYS)


def test_a_policy_takes_what_it_leaves_out_from_the_default():
    loaded = _parse({'policies': {'default': {'bandwidth': 100},
                                  'fast': {'permit_post_copy': True, 'stall_seconds': 5}},
                     'default': 'fast', 'projects': {'p1': 'default'}})
    fast = loaded.get('fast')
    assert fast.bandwidth == 100 and fast.permit_post_copy and fast.stall_seconds == 5
    assert loaded.default_policy is fast
    assert loaded.projects == {'p1': 'default'}


@pytest.mark.parametrize('data,message', [
    ([], 'must hold a mapping'),
    ({'policy': {}}, 'unknown top-level keys'),
    ({'policies': {'a': {'bandwith': 1}}}, "unknown key 'bandwith'"),
    ({'policies': {'a': {'bandwidth': -1}}}, 'integer >= 0'),
    ({'policies': {'a': {'completion_timeout_per_gib': 0.5}}}, 'integer >= 0'),
    ({'policies': {'a': {'stall_seconds': -1}}}, 'number >= 0'),
    ({'policies': {'a': {'priority': 'high'}}}, 'must be an integer'),
    ({'policies': {'a': {'permit_post_copy': 'yes'}}}, 'true or false'),
    ({'policies': {'a': {'stall_action': 'explode'}}}, 'post_copy, pause, abort'),
    ({'policies': {'a': []}}, 'must be a mapping'),
    ({'policies': {}, 'default': 'b'}, "default policy 'b' is not defined"),
    ({'policies': {}, 'projects': {'p': 'b'}}, "undefined policy 'b'"),
])
def test_invalid_files_say_what_is_wrong(data, message):
    with pytest.raises(policies.PolicyFileError, match=message):
        _parse(data)


def test_load_names_the_file(tmp_path):
    path = tmp_path / 'p.yaml'
    path.write_text('policies:\n  a: {stall_action: nope}\n')
    with pytest.raises(policies.PolicyFileError, match=str(path)):
        policies.load(str(path))
    with pytest.raises(policies.PolicyFileError, match='cannot read'):
        policies.load(str(tmp_path / 'missing.yaml'))
    path.write_text('policies: [unclosed\n')
    with pytest.raises(policies.PolicyFileError, match='not valid YAML'):
        policies.load(str(path))


def test_selection_precedence_and_unknown_names():
    loaded = _parse({'policies': {'f': {}, 'i': {}, 'p': {}}, 'projects': {'proj': 'p'}})
    flavor = {'extra_specs': {policies.FLAVOR_SPEC: 'f'}}
    image = {'properties': {policies.IMAGE_PROPERTY: 'i'}}
    assert policies.select(loaded, flavor, image, 'proj')[0].name == 'f'
    assert policies.select(loaded, {}, image, 'proj')[0].name == 'i'
    assert policies.select(loaded, {}, None, 'proj')[0].name == 'p'
    policy, log = policies.select(loaded, {}, None, 'other')
    assert policy.name == 'default'
    assert log == [{'decision': 'policy_selected', 'detail': 'default (default)'}]
    policy, log = policies.select(loaded, {'extra_specs': {policies.FLAVOR_SPEC: 'x'}},
                                  image, 'proj')
    assert policy.name == 'default'
    assert [d['decision'] for d in log] == ['policy_unknown', 'policy_selected']


def test_current_keeps_the_last_good_file(conf, tmp_path):
    path = tmp_path / 'p.json'
    path.write_text('{"policies": {"a": {"bandwidth": 1}}}')
    conf.set_override('policy_file', str(path), group='migration')
    assert policies.current().get('a').bandwidth == 1
    path.write_text('{"policies": {"a": {"bandwidth": "x"}}}')
    import os
    os.utime(path, ns=(1, 1))
    assert policies.current().get('a').bandwidth == 1


def test_a_bad_file_stops_the_conductor_at_start(conf, tmp_path):
    good, bad = tmp_path / 'good.yaml', tmp_path / 'bad.yaml'
    good.write_text('policies: {a: {}}\n')
    bad.write_text('policies: {a: {stall_action: sideways}}\n')
    conf.set_override('policy_file', str(good), group='migration')
    assert 'a' in policies.check_at_start().policies
    conf.set_override('policy_file', str(bad), group='migration')
    with pytest.raises(policies.PolicyFileError, match='stall_action'):
        policies.check_at_start()
