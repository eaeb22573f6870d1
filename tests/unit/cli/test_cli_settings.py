"""Where the CLI connects and with which token: options, environment, defaults."""

import argparse

import pytest

from novalite.cli import client, main


def _settings(argv=(), env=None):
    args = main.build_parser().parse_args(list(argv) + ['list'])
    return client.resolve_settings(args, environ=env or {})


def test_defaults_without_anything_set():
    s = _settings()
    assert s.endpoint == 'http://127.0.0.1:8774/v2.1'
    assert s.token == 'admin:admin'
    assert s.api_version is None and s.is_admin


def test_novalite_url_gives_endpoint_and_token():
    s = _settings(env={'NOVALITE_URL': 'http://alice:proj@10.0.0.5:8774'})
    assert s.endpoint == 'http://10.0.0.5:8774/v2.1'
    assert s.token == 'alice:proj' and not s.is_admin


def test_novalite_url_user_only_means_project_of_the_same_name():
    s = _settings(env={'NOVALITE_URL': 'http://bob@h:1/v2.1/'})
    assert (s.endpoint, s.token) == ('http://h:1/v2.1', 'bob:bob')


def test_os_variables_win_over_novalite_url():
    env = {'NOVALITE_URL': 'http://alice:proj@h:8774', 'OS_ENDPOINT': 'http://other:9/v2.1',
           'OS_TOKEN': 'admin:admin'}
    s = _settings(env=env)
    assert (s.endpoint, s.token) == ('http://other:9/v2.1', 'admin:admin')


def test_compute_endpoint_variable_and_missing_version_path():
    s = _settings(env={'OS_COMPUTE_ENDPOINT': 'h.example:8774'})
    assert s.endpoint == 'http://h.example:8774/v2.1'


def test_options_win_over_environment():
    s = _settings(['--os-endpoint', 'http://cli:1', '--os-token', 'x:y',
                   '--os-compute-api-version', '2.60'],
                  env={'OS_ENDPOINT': 'http://env:2', 'OS_TOKEN': 'a:b',
                       'OS_COMPUTE_API_VERSION': '2.10'})
    assert (s.endpoint, s.token, s.api_version) == ('http://cli:1/v2.1', 'x:y', '2.60')


@pytest.mark.parametrize('value,expected', [('latest', 'latest'), ('2.latest', 'latest'),
                                            ('2', None), ('2.80', '2.80')])
def test_api_version_values(value, expected):
    assert _settings(env={'OS_COMPUTE_API_VERSION': value}).api_version == expected


def test_bad_api_version_is_a_command_error():
    with pytest.raises(client.CommandError, match='Invalid microversion'):
        _settings(['--os-compute-api-version', 'two'])


def test_auth_type_none_sends_the_placeholder_token():
    assert _settings(env={'OS_AUTH_TYPE': 'none', 'OS_TOKEN': 'admin:admin'}).token == \
        'notused'


def test_auth_type_noauth_builds_token_from_user_and_project():
    s = _settings(env={'OS_AUTH_TYPE': 'noauth', 'OS_USERNAME': 'carol',
                       'OS_PROJECT_ID': 'p1'})
    assert s.token == 'carol:p1'


def test_unknown_auth_type():
    with pytest.raises(client.CommandError, match='Unsupported auth type'):
        _settings(['--os-auth-type', 'password'])


def test_root_url_strips_the_version_path():
    c = client.Client(client.Settings(endpoint='http://h:8774/v2.1'))
    assert c.root_url == 'http://h:8774'


def test_api_error_rendering():
    err = client.APIError(400, 'Invalid input for field', 'req-1')
    assert err.render() == ('ERROR (BadRequest): Invalid input for field (HTTP 400) '
                            '(Request-ID: req-1)')
    assert client.APIError(502, 'bad gateway').render() == \
        'ERROR (HTTP502): bad gateway (HTTP 502)'


def test_every_command_parses_and_has_a_handler():
    parser = main.build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    needed = {'boot', 'list', 'show', 'delete', 'start', 'stop', 'reboot', 'resize',
              'resize-confirm', 'resize-revert', 'migrate', 'live-migration',
              'live-migration-force-complete', 'live-migration-abort', 'migration-list',
              'server-migration-list', 'server-migration-show', 'instance-action-list',
              'instance-action-show', 'flavor-list', 'flavor-show', 'flavor-create',
              'flavor-delete', 'hypervisor-list', 'hypervisor-show', 'service-list',
              'service-enable', 'service-disable', 'service-force-down', 'version-list'}
    assert needed <= set(sub.choices)
    for name, p in sub.choices.items():
        assert p.get_default('func') is not None, name


@pytest.mark.parametrize('argv', [
    ['live-migration', 'vm', 'compute2', '--block-migrate', '--poll'],
    ['live-migration', 'vm', '--block-migrate', 'false', '--wait'],
    ['boot', 'vm', '--flavor', '1', '--image', 'i', '--hint', 'a=b', '--min-count', '2'],
    ['migration-list', '--changes-since', '2020-01-01T00:00:00', '--limit', '3'],
])
def test_argument_shapes(argv):
    args = main.build_parser().parse_args(argv)
    assert args.func


def test_no_command_prints_help_and_fails(capsys):
    assert main.main([]) == 2
    assert 'usage: novalite' in capsys.readouterr().out
