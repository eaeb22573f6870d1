"""The ``novalite`` CLI run in-process (main(argv)) against a live all-in-one HTTP API."""

import json
import socket

import pytest
import yaml

from novalite.cli import main as cli_main
from novalite.cli import progress
from novalite.conf import CONF

ENV_VARS = ('OS_ENDPOINT', 'OS_COMPUTE_ENDPOINT', 'OS_TOKEN', 'OS_AUTH_TYPE',
            'OS_COMPUTE_API_VERSION', 'OS_USERNAME', 'OS_PROJECT_ID', 'OS_PROJECT_NAME',
            'NOVALITE_URL')


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.fixture
def api(cloud_factory, monkeypatch):
    """A cloud serving HTTP, with NOVALITE_URL pointing the CLI at it as admin."""
    cloud = cloud_factory(**{'osapi_compute_listen_port': _free_port()})
    cloud.aio._start_http()
    for var in ENV_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv('NOVALITE_URL', cloud.aio.endpoint.replace('http://',
                                                                  'http://admin:admin@'))
    return cloud


@pytest.fixture
def run(capsys):
    def invoke(*argv, expect=0):
        code = cli_main.main(list(argv))
        out, err = capsys.readouterr()
        assert code == expect, f'exit {code}\nstdout:\n{out}\nstderr:\n{err}'
        return out, err
    return invoke


def _boot(run, name='vm1', flavor='m1.tiny'):
    out, err = run('boot', name, '--flavor', flavor, '--image', 'cirros-0.6.2-x86_64-disk',
                   '--poll', '-f', 'json')
    return json.loads(out), err


def test_boot_poll_list_show(api, run):
    server, err = _boot(run)
    assert server['status'] == 'ACTIVE'
    assert server['name'] == 'vm1'
    assert 'ACTIVE on compute' in err and 'boot finished in' in err

    out, _ = run('list')
    assert 'vm1' in out and 'ACTIVE' in out and 'Running' in out
    rows = json.loads(run('list', '-f', 'json')[0])
    assert [(r['Name'], r['Status']) for r in rows] == [('vm1', 'ACTIVE')]
    assert run('list', '--status', 'ERROR', '-f', 'value', '-c', 'ID')[0] == ''
    assert run('list', '--all-tenants', '-f', 'value', '-c', 'Name')[0] == 'vm1\n'

    out, _ = run('show', 'vm1')
    assert server['id'] in out and 'm1.tiny (1 vCPU' in out and 'cirros' in out
    by_id = yaml.safe_load(run('show', server['id'], '-f', 'yaml')[0])
    assert by_id['name'] == 'vm1' and by_id['flavor']['original_name'] == 'm1.tiny'
    assert run('show', 'vm1', '-f', 'value', '-c', 'status')[0] == 'ACTIVE\n'

    _, err = run('stop', 'vm1', '--poll')
    assert 'SHUTOFF' in err
    _, err = run('start', 'vm1', '--poll')
    assert 'ACTIVE' in err
    _, err = run('reboot', 'vm1', '--hard', '--poll')
    assert 'reboot finished' in err
    out, _ = run('reboot', 'vm1')
    assert 'Request to reboot server vm1 has been accepted. (Request-ID: req-' in out
    api.wait_for_server(server['id'], 'ACTIVE')

    api.boot('twin')
    api.boot('twin')
    _, err = run('show', 'twin', expect=1)
    assert 'ERROR (NoUniqueMatch): Multiple servers are named' in err

    _, err = run('delete', 'vm1', 'twin-does-not-exist', expect=1)
    assert "No server with a name or ID of 'twin-does-not-exist'" in err
    _, err = run('delete', 'vm1', '--wait')
    assert 'deleted in' in err
    _, err = run('show', server['id'], expect=1)
    assert 'ERROR (NotFound)' in err


def test_resize_confirm_migrate_revert(api, run):
    server, _ = _boot(run)
    _, err = run('resize', 'vm1', 'm1.small', '--poll')
    assert 'VERIFY_RESIZE' in err and 'resize finished in' in err
    _, err = run('resize-confirm', 'vm1', '--poll')
    assert 'ACTIVE' in err
    assert api.server(server['id'])['flavor']['original_name'] == 'm1.small'

    host = api.server(server['id'])['OS-EXT-SRV-ATTR:host']
    out, err = run('migrate', 'vm1', '--wait')
    assert 'VERIFY_RESIZE' in err
    assert api.server(server['id'])['OS-EXT-SRV-ATTR:host'] != host
    _, err = run('resize-revert', 'vm1', '--poll')
    assert 'resize-revert finished' in err
    assert api.server(server['id'])['OS-EXT-SRV-ATTR:host'] == host

    rows = json.loads(run('migration-list', '-f', 'json')[0])
    assert sorted((r['Type'], r['Status']) for r in rows) == [
        ('migration', 'reverted'), ('resize', 'confirmed')]
    rows = json.loads(run('migration-list', '--migration-type', 'resize',
                          '--instance-uuid', 'vm1', '--limit', '5', '-f', 'json')[0])
    assert [r['Status'] for r in rows] == ['confirmed']

    out, _ = run('instance-action-list', 'vm1')
    for action in ('create', 'resize', 'confirmResize', 'migrate', 'revertResize'):
        assert action in out
    actions = json.loads(run('instance-action-list', 'vm1', '-f', 'json')[0])
    request_id = next(a['Request ID'] for a in actions if a['Action'] == 'resize')
    out, _ = run('instance-action-show', 'vm1', request_id)
    assert 'compute_finish_resize' in out
    shown = json.loads(run('instance-action-show', 'vm1', request_id, '-f', 'json')[0])
    assert shown['action'] == 'resize' and shown['events']


HOSTS = ('compute1', 'compute2', 'compute3')


def _hold_live_migration_until_shown(api, monkeypatch):
    """Keep a live migration copying memory until the CLI has printed a running sample.

    A guest that dirties memory faster than the link carries it never converges, so the
    migration cannot end before the poller has seen it; the first running sample the
    poller draws opens the link and stops the dirtying, and the migration completes.
    """
    def set_link(mb_s, dirty):
        for host in HOSTS:
            api.hypervisor(host).live_migration_bandwidth_mb_s = mb_s
            api.hypervisor(host).dirty_rate_mb_s = dirty

    set_link(1.0, 2.0)
    draw = progress.Reporter.update

    def update(reporter, snap):
        draw(reporter, snap)
        migration = snap.migration or {}
        if migration.get('status') == 'running' and migration.get('memory_total_bytes'):
            set_link(1000000.0, 0.0)

    monkeypatch.setattr(progress.Reporter, 'update', update)


def test_live_migration_poll_shows_progress(api, run, monkeypatch):
    server, _ = _boot(run)
    host = api.server(server['id'])['OS-EXT-SRV-ATTR:host']
    _hold_live_migration_until_shown(api, monkeypatch)
    _, err = run('live-migration', 'vm1', '--poll')
    assert 'MIGRATING' in err and 'live-migration finished in' in err
    assert 'memory' in err and 'disk' in err and '(running)' in err
    assert api.server(server['id'])['OS-EXT-SRV-ATTR:host'] != host
    rows = json.loads(run('migration-list', '--migration-type', 'live-migration',
                          '-f', 'json')[0])
    assert rows[0]['Status'] == 'completed'
    assert run('server-migration-list', 'vm1', '-f', 'value')[0] == ''

    # A forced host skips the scheduler; "force" only exists up to 2.67.
    target = next(h for h in HOSTS
                  if h != api.server(server['id'])['OS-EXT-SRV-ATTR:host'])
    _, err = run('live-migration', 'vm1', target, '--force', '--block-migrate', 'true',
                 '--poll')
    assert f'ACTIVE on {target}' in err


def test_live_migration_failure_exits_nonzero(api, run):
    _boot(run)
    # The destination rejects the guest: the migration ends in error, the server stays.
    CONF.set_override('fail_operations', {'pre_live_migration': 'dest says no'},
                      group='fake_driver')
    _, err = run('live-migration', 'vm1', '--poll', expect=1)
    assert 'ERROR (OperationFailed)' in err
    assert "ended 'error'" in err or "ended 'failed'" in err
    assert 'dest says no' in err
    assert 'Request-ID: req-' in err


def test_failures_explain_why(api, run):
    out, _ = run('flavor-create', 'huge', 'huge', '40000', '1', '1', '-f', 'json')
    assert json.loads(out)['ram'] == 40000
    _, err = run('boot', 'big', '--flavor', 'huge', '--image', 'cirros-0.6.2-x86_64-disk',
                 '--poll', expect=1)
    assert 'ERROR (OperationFailed): boot of server big failed' in err
    assert 'No valid host was found' in err
    assert 'RamFilter removed 3 of 3 hosts' in err
    assert 'Traceback' not in err

    _boot(run)
    _, err = run('resize', 'vm1', 'm1.tiny', expect=1)
    assert err.startswith('ERROR (BadRequest): When resizing, instances must change flavor!'
                          ' (HTTP 400) (Request-ID: req-')
    _, err = run('migrate', 'vm1', '--host', 'nowhere', expect=1)
    assert '(HTTP 400)' in err
    _, err = run('show', 'no-such-server', expect=1)
    assert "ERROR (NotFound): No server with a name or ID of 'no-such-server'" in err


def test_flavor_create_list_show_delete(api, run):
    out, _ = run('flavor-create', 'test.one', 'auto', '1024', '5', '2', '--swap', '512',
                 '--ephemeral', '1', '--is-public', 'false', '-f', 'json')
    flavor = json.loads(out)
    assert flavor['vcpus'] == 2 and flavor['swap'] == 512
    assert flavor['os-flavor-access:is_public'] is False
    assert 'test.one' not in run('flavor-list')[0]
    out, _ = run('flavor-list', '--all')
    assert 'test.one' in out and 'm1.tiny' in out
    shown = json.loads(run('flavor-show', 'test.one', '-f', 'json')[0])
    assert shown['id'] == flavor['id']
    out, _ = run('flavor-delete', 'test.one')
    assert 'deleted' in out
    _, err = run('flavor-show', 'test.one', expect=1)
    assert 'ERROR (NotFound)' in err
    _, err = run('flavor-create', 'm1.tiny', 'dup', '1', '1', '1', expect=1)
    assert '(HTTP 409)' in err


def test_server_group_create_boot_show_list_delete(api, run):
    out, _ = run('server-group-create', 'spread', '--policy', 'anti-affinity', '--rule',
                 'max_server_per_host=2', '-f', 'json')
    group = json.loads(out)
    assert group['policy'] == 'anti-affinity'
    assert group['rules'] == 'max_server_per_host=2' and group['members'] == ''
    sids = []
    for i in range(3):
        out, _ = run('boot', f'g{i}', '--flavor', 'm1.tiny', '--image',
                     'cirros-0.6.2-x86_64-disk', '--hint', f"group={group['id']}", '--poll',
                     '-f', 'json')
        sids.append(json.loads(out)['id'])
    shown = json.loads(run('server-group-show', 'spread', '-f', 'json')[0])
    assert sorted(shown['members'].split(', ')) == sorted(sids)
    out, _ = run('server-group-list')
    assert 'spread' in out and group['id'] in out and 'anti-affinity' in out
    out, _ = run('server-group-list', '--all-projects', '-f', 'json')
    assert [g['Name'] for g in json.loads(out)] == ['spread']
    out, _ = run('server-group-create', 'together', '--policy', 'affinity', '-f', 'json')
    together = json.loads(out)['id']
    out, _ = run('server-group-delete', together)
    assert f'Server group together ({together}) deleted.' in out
    out, _ = run('server-group-delete', 'spread')
    assert 'deleted' in out
    _, err = run('server-group-show', 'spread', expect=1)
    assert "No server group with a name or ID of 'spread' exists." in err


def test_server_group_errors(api, run):
    _, err = run('server-group-create', 'bad', '--policy', 'affinity', '--rule',
                 'max_server_per_host=2', expect=1)
    assert 'Only anti-affinity policy supports rules. (HTTP 400)' in err
    _, err = run('server-group-create', 'bad', '--policy', 'anti-affinity', '--rule',
                 'spread=yes', expect=1)
    assert 'expected max_server_per_host=N' in err
    _, err = run('--os-compute-api-version', '2.63', 'server-group-create', 'old',
                 '--policy', 'anti-affinity', '--rule', 'max_server_per_host=2', expect=1)
    assert 'needs compute API microversion 2.64' in err
    out, _ = run('--os-compute-api-version', '2.63', 'server-group-create', 'old',
                 '--policy', 'affinity', '-f', 'json')
    assert json.loads(out)['policy'] == 'affinity'
    _, err = run('boot', 'lost', '--flavor', 'm1.tiny', '--image',
                 'cirros-0.6.2-x86_64-disk', '--hint',
                 'group=9d1d8d0c-5b40-4d8e-9a56-7f9e0d4c1a11', expect=1)
    assert 'Instance group 9d1d8d0c-5b40-4d8e-9a56-7f9e0d4c1a11 could not be found.' in err


def test_hypervisors_services_versions(api, run):
    out, _ = run('hypervisor-list')
    assert 'compute1' in out and 'compute3' in out
    hyp = json.loads(run('hypervisor-show', 'compute2', '-f', 'json')[0])
    assert hyp['hypervisor_hostname'] == 'compute2'

    rows = json.loads(run('service-list', '--binary', 'nova-compute', '-f', 'json')[0])
    assert sorted(r['Host'] for r in rows) == ['compute1', 'compute2', 'compute3']
    out, _ = run('service-disable', 'compute1', 'nova-compute', '--reason', 'maint',
                 '-f', 'json')
    assert json.loads(out)['status'] == 'disabled'
    out, _ = run('service-list', '--host', 'compute1', '-f', 'value', '-c', 'Status',
                 '-c', 'Disabled Reason')
    assert out.split() == ['disabled', 'maint']
    run('service-enable', 'compute1', 'nova-compute')
    out, _ = run('service-force-down', 'compute1', 'nova-compute', '-f', 'json')
    assert json.loads(out)['forced_down'] is True
    out, _ = run('service-force-down', 'compute1', 'nova-compute', '--unset', '-f', 'json')
    assert json.loads(out)['forced_down'] is False

    out, _ = run('version-list')
    assert 'v2.1' in out and 'CURRENT' in out and 'this session uses 2.100' in out

    out, _ = run('--os-compute-api-version', '2.12', 'service-disable', 'compute2',
                 'nova-compute', '-f', 'json')
    assert json.loads(out)['status'] == 'disabled'
    run('--os-compute-api-version', '2.12', 'service-enable', 'compute2', 'nova-compute')
    _, err = run('--os-compute-api-version', '2.20', 'server-migration-list', 'x', expect=1)
    assert 'needs compute API microversion 2.23' in err

    _, err = run('--os-token', 'alice:proj', 'hypervisor-list', expect=1)
    assert 'ERROR (Forbidden)' in err and '(HTTP 403)' in err


def test_connection_refused_is_a_clean_error(run, monkeypatch):
    for var in ENV_VARS:
        monkeypatch.delenv(var, raising=False)
    _, err = run('--os-endpoint', f'http://127.0.0.1:{_free_port()}', 'list', expect=1)
    assert err.startswith('ERROR (ConnectionRefused): Unable to reach the compute API')
    assert 'Traceback' not in err


def test_evacuate_and_host_evacuate(api, run):
    vm, _ = _boot(run, 'vm1')
    src = vm['OS-EXT-SRV-ATTR:host']
    # Refused while the host's compute service is up: a clean error, nothing moves.
    _, err = run('evacuate', 'vm1', expect=1)
    assert f'ERROR (BadRequest): Compute service of {src} is still in use.' in err
    api.aio.stop_compute(src)
    run('service-force-down', src, 'novalite-compute')
    _, err = run('evacuate', 'vm1', '--poll')
    # The CLI speaks the newest microversion: from 2.95 an evacuated server is stopped.
    assert 'evacuate vm1' in err and 'SHUTOFF on compute' in err
    assert api.server(vm['id'])['OS-EXT-SRV-ATTR:host'] not in (src, None)

    # A whole host: every server on it, one row each.
    a, _ = _boot(run, 'a')
    host = a['OS-EXT-SRV-ATTR:host']
    b = api.boot(name='b', availability_zone=f'nova:{host}')
    api.aio.stop_compute(host)
    run('service-force-down', host, 'novalite-compute')
    out, err = run('host-evacuate', host, '--poll', '-f', 'json')
    rows = json.loads(out)
    assert sorted(r['Server UUID'] for r in rows) == sorted([a['id'], b['id']])
    assert all(r['Evacuate Accepted'] for r in rows)
    for sid in (a['id'], b['id']):
        server = api.server(sid)
        assert server['status'] == 'SHUTOFF'
        assert server['OS-EXT-SRV-ATTR:host'] not in (host, None)
    # Nothing is left on the host to evacuate.
    out, _ = run('host-evacuate', host, '-f', 'json')
    assert json.loads(out) == []


def test_host_drain_poll_list_show_cancel(api, run):
    a, _ = _boot(run, 'a')
    host = a['OS-EXT-SRV-ATTR:host']
    b = api.boot(name='b', availability_zone=f'nova:{host}')
    out, err = run('host-drain', host, '--max-parallel', '2', '--poll', '-f', 'json')
    drain = json.loads(out)
    assert (drain['status'], drain['moved'], drain['failed']) == ('completed', 2, 0)
    assert f'drain {host} completed' in err and '2/2 moved, 0 failed' in err
    for sid in (a['id'], b['id']):
        assert api.server(sid)['OS-EXT-SRV-ATTR:host'] not in (host, None)
    out, _ = run('host-drain-list', '--host', host, '-f', 'json')
    assert [(d['Id'], d['Status']) for d in json.loads(out)] == [(drain['id'], 'completed')]
    out, _ = run('host-drain-show', drain['id'], '--servers', '-f', 'json')
    assert sorted((r['Server'], r['State'], r['Move']) for r in json.loads(out)) == sorted(
        [(a['id'], 'moved', 'live'), (b['id'], 'moved', 'live')])
    _, err = run('host-drain-cancel', drain['id'], expect=1)
    assert 'ERROR (Conflict)' in err and 'has already ended' in err
    _, err = run('host-drain', 'no-such-host', expect=1)
    assert 'ERROR (NotFound)' in err

    # A drain that cannot move its server: the report names it and why; exit non-zero.
    c = api.boot(name='c', availability_zone=f'nova:{host}')
    api.request('PUT', '/os-services/enable', {'host': host, 'binary': 'novalite-compute'},
                version='2.1', expect=200)
    for other in ('compute1', 'compute2', 'compute3'):
        if other != host:
            run('service-disable', other, 'novalite-compute')
    out, err = run('host-drain', host, '--mode', 'live', '--poll', '-f', 'json', expect=1)
    rows = json.loads(out)
    assert [(r['Server'], r['State']) for r in rows] == [(c['id'], 'failed')]
    assert 'No valid host' in rows[0]['Reason']
    assert 'ERROR (DrainFailed): 1 of 1 servers could not be moved' in err


def test_migrate_poll_shows_disk_copy_and_eta(cloud_factory, monkeypatch, run):
    cloud = cloud_factory(**{'osapi_compute_listen_port': _free_port(),
                             'fake_driver.disk_copy_mb_per_s': 256.0})
    cloud.aio._start_http()
    for var in ENV_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv('NOVALITE_URL', cloud.aio.endpoint.replace('http://',
                                                                  'http://admin:admin@'))
    _boot(run, 'cold')
    _, err = run('migrate', 'cold', '--poll')
    assert 'VERIFY_RESIZE' in err and 'migrate finished in' in err
    copying = [line for line in err.splitlines() if 'disk ' in line]
    assert copying and '(migrating)' in copying[0] and 'GiB' in copying[0]
    assert any('ETA' in line for line in copying)


def test_flavor_key_set_and_unset(api, run):
    out, _ = run('flavor-key', 'm1.tiny', 'set', 'novalite:migration_policy=standard',
                 'hw:numa_nodes=1', '-f', 'json')
    assert json.loads(out) == {'novalite:migration_policy': 'standard', 'hw:numa_nodes': '1'}
    out, _ = run('flavor-key', 'm1.tiny', 'unset', 'hw:numa_nodes', '-f', 'json')
    assert json.loads(out) == {'novalite:migration_policy': 'standard'}
    _, err = run('flavor-key', 'm1.tiny', 'set', 'novalue', expect=1)
    assert 'Expected KEY=VALUE' in err
    _, err = run('flavor-key', 'm1.tiny', 'unset', 'absent', expect=1)
    assert 'ERROR (NotFound)' in err
