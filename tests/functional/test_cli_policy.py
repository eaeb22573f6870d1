"""The ``novalite`` CLI shows a live migration's policy and its decisions."""

import json

from tests.functional.test_cli import _boot, api, run  # noqa: F401 - fixtures

HOSTS = ('compute1', 'compute2', 'compute3')


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
