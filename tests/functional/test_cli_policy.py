"""The ``novalite`` CLI shows a live migration's policy and its decisions."""

import json

import pytest

from tests.functional.test_cli import ENV_VARS, _boot, _free_port, run  # noqa: F401

HOSTS = ('compute1', 'compute2', 'compute3')


@pytest.fixture
def api(cloud_factory, monkeypatch, tmp_path):
    """A cloud serving HTTP with a policy file (policies shown), the CLI pointed at it."""
    policies = tmp_path / 'policies.yaml'
    policies.write_text('policies: {}\n')
    cloud = cloud_factory(**{'osapi_compute_listen_port': _free_port(),
                             'migration.policy_file': str(policies)})
    cloud.aio._start_http()
    for var in ENV_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv('NOVALITE_URL', cloud.aio.endpoint.replace('http://',
                                                                  'http://admin:admin@'))
    return cloud


def test_server_migration_show_lists_the_policy_decisions(api, run):  # noqa: F811
    server, _ = _boot(run, flavor='m1.small')
    for h in HOSTS:
        api.hypervisor(h).live_migration_bandwidth_mb_s = 4000
    run('live-migration', 'vm1')
    mig = api.wait_for_migration(server['id'], 'live-migration', ('running',), timeout=15)
    out, _ = run('server-migration-show', 'vm1', str(mig['id']))
    assert 'default' in out and 'policy_selected: default (default)' in out
    shown = json.loads(run('server-migration-show', 'vm1', str(mig['id']), '-f', 'json')[0])
    assert shown['policy'] == 'default'
    assert shown['policy_log'][0]['decision'] == 'policy_selected'
    api.wait_for_migration(server['id'], 'live-migration', ('completed',), timeout=60)


def test_without_a_policy_file_the_migration_body_is_novas(cloud):
    sid = cloud.boot('plain')['id']
    cloud.request('POST', f'/servers/{sid}/action', {'os-migrateLive': {
        'host': None, 'block_migration': 'auto'}}, version='2.34', expect=202)
    mig = cloud.wait_for_migration(sid, 'live-migration', ('completed',), timeout=30)
    assert 'policy' not in mig and 'policy_log' not in mig
    listed = cloud.get_json('/os-migrations', version='2.80')['migrations'][0]
    assert 'policy' not in listed and 'policy_log' not in listed
