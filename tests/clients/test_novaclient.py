"""The ``nova`` CLI (python-novaclient) through the whole move scenario.

novaclient's shell insists on a project and an auth URL even with the admin_token
plugin; neither is contacted. Its default ``2.latest`` negotiates 2.96 (its maximum);
2.1 covers the oldest request shapes (live migration with ``disk_over_commit``).
"""

import subprocess

import pytest

from tests.clients.conftest import (
    TOKEN,
    assert_scenario_records,
    client_env,
    need_cli,
)

IMAGE = 'cirros-0.6.2-x86_64-disk'


class Nova:
    def __init__(self, live, api_version):
        self.cmd = need_cli('nova')
        self.env = client_env(OS_AUTH_TYPE='admin_token', OS_TOKEN=TOKEN,
                              OS_ENDPOINT=live.compute_url, OS_PROJECT_ID='admin',
                              OS_AUTH_URL='http://127.0.0.1:9/unused',
                              OS_COMPUTE_API_VERSION=api_version)

    def run(self, *args):
        proc = subprocess.run([self.cmd, *args], env=self.env, capture_output=True,
                              text=True, timeout=120)
        assert proc.returncode == 0, 'nova %s failed:\n%s\n%s' % (
            ' '.join(args), proc.stdout, proc.stderr)
        return proc.stdout

    def table(self, *args) -> list[dict]:
        """Rows of a prettytable listing as dicts."""
        rows = [line for line in self.run(*args).splitlines() if line.startswith('|')]
        if not rows:
            return []
        split = [[cell.strip() for cell in row.strip('|').split('|')] for row in rows]
        return [dict(zip(split[0], row, strict=False)) for row in split[1:]]

    def properties(self, *args) -> dict:
        return {row['Property']: row['Value'] for row in self.table(*args)}


@pytest.mark.parametrize('api_version', [None, '2.96', '2.1'],
                         ids=['default', '2.96', '2.1'])
def test_nova_scenario(live, api_version):
    nova = Nova(live, api_version)
    assert {'m1.tiny', 'm1.small'} <= {f['Name'] for f in nova.table('flavor-list')}

    booted = nova.properties('boot', '--flavor', 'm1.tiny', '--image', IMAGE,
                             *(['--nic', 'none'] if api_version != '2.1' else []),
                             'vm-nova')
    sid = booted['id']
    live.wait_for_server(sid, 'ACTIVE')
    assert [s['Status'] for s in nova.table('list') if s['ID'] == sid] == ['ACTIVE']
    shown = nova.properties('show', 'vm-nova')
    assert shown['id'] == sid and shown['status'] == 'ACTIVE'

    nova.run('resize', sid, 'm1.small')
    live.wait_for_server(sid, 'VERIFY_RESIZE')
    nova.run('resize-confirm', sid)
    assert live.wait_for_server(sid, 'ACTIVE')['flavor']['original_name'] == 'm1.small'

    host = live.server(sid)['OS-EXT-SRV-ATTR:host']
    nova.run('migrate', sid)
    assert live.wait_for_server(sid, 'VERIFY_RESIZE')['OS-EXT-SRV-ATTR:host'] != host
    nova.run('resize-revert', sid)
    assert live.wait_for_server(sid, 'ACTIVE')['OS-EXT-SRV-ATTR:host'] == host

    # Before 2.25 block_migration is a plain boolean (default False), and the fake
    # hosts share no storage.
    nova.run('live-migration', *(['--block-migrate'] if api_version == '2.1' else []), sid)
    live.wait_for_migration(sid, 'live-migration')
    assert live.wait_for_server(sid, 'ACTIVE')['OS-EXT-SRV-ATTR:host'] != host

    migrations = nova.table('migration-list', '--instance-uuid', sid)
    assert len(migrations) == 3
    if api_version != '2.1':
        assert sorted(m['Type'] for m in migrations) == [
            'live-migration', 'migration', 'resize']
        # Only in-progress live migrations are listed per server; none is left.
        assert nova.table('server-migration-list', sid) == []

    actions = nova.table('instance-action-list', sid)
    assert [a['Action'] for a in actions] == [
        'create', 'resize', 'confirmResize', 'migrate', 'revertResize', 'live-migration']
    detail = nova.run('instance-action', sid, actions[-1]['Request_ID'])
    assert '| live-migration' in detail and "'event': '" in detail, detail
    assert_scenario_records(live, sid)

    nova.run('delete', sid)
    live.wait_for_server(sid, 'DELETED')


def _dead_host(live, host):
    """The host's compute stops and is forced down, as an operator fences it."""
    live.cloud.aio.stop_compute(host)
    live.request('PUT', '/os-services/force-down',
                 {'host': host, 'binary': 'novalite-compute', 'forced_down': True},
                 version='2.11', expect=200)


@pytest.mark.parametrize('api_version', [None, '2.14', '2.1'], ids=['default', '2.14', '2.1'])
def test_nova_evacuate_and_host_evacuate(live, api_version):
    nova = Nova(live, api_version)
    nic = ['--nic', 'none'] if api_version is None else []  # 2.37+ only
    sid = nova.properties('boot', '--flavor', 'm1.tiny', '--image', IMAGE, *nic,
                          'vm-evac')['id']
    src = live.wait_for_server(sid, 'ACTIVE')['OS-EXT-SRV-ATTR:host']
    _dead_host(live, src)
    out = nova.run('evacuate', sid)
    if api_version == '2.1':
        assert 'adminPass' in out  # before 2.14 the answer carries the password
    # 2.95 and later (novaclient's default negotiates 2.96) leave it stopped.
    status = 'SHUTOFF' if api_version is None else 'ACTIVE'
    server = live.wait_for_server(sid, status)
    dest = server['OS-EXT-SRV-ATTR:host']
    assert dest not in (src, None)
    assert live.wait_for_migration(sid, 'evacuation', 'done')['dest_compute'] == dest

    # A whole host: novaclient's host-evacuate loops over the host's servers.
    other = nova.properties('boot', '--flavor', 'm1.tiny', '--image', IMAGE, *nic,
                            'vm-evac-2')['id']
    live.wait_for_server(other, 'ACTIVE')
    host = live.server(other)['OS-EXT-SRV-ATTR:host']
    on_host = [s for s in (sid, other) if live.server(s)['OS-EXT-SRV-ATTR:host'] == host]
    _dead_host(live, host)
    rows = nova.table('host-evacuate', host)
    assert sorted(r['Server UUID'] for r in rows) == sorted(on_host)
    assert all(r['Evacuate Accepted'] == 'True' for r in rows), rows
    for s in on_host:
        live.wait_until(lambda s=s: live.server(s)['OS-EXT-STS:task_state'] is None and
                        live.server(s)['OS-EXT-SRV-ATTR:host'] not in (host, src),
                        message=f'{s} evacuated off {host}')


@pytest.mark.parametrize('api_version', [None, '2.63'], ids=['default', '2.63'])
def test_nova_server_groups(live, api_version):
    nova = Nova(live, api_version)
    created = nova.table('server-group-create', 'spread', 'anti-affinity')
    gid = created[0]['Id']
    booted = nova.properties('boot', '--flavor', 'm1.tiny', '--image', IMAGE, '--nic',
                             'none', '--hint', f'group={gid}', 'vm-g')
    live.wait_for_server(booted['id'], 'ACTIVE')
    listed = nova.table('server-group-list')
    assert [g['Id'] for g in listed] == [gid]
    assert booted['id'] in listed[0]['Members']
    shown = nova.table('server-group-get', gid)[0]
    assert shown['Name'] == 'spread'
    nova.run('delete', booted['id'])
    live.wait_for_server(booted['id'], 'DELETED')
    nova.run('server-group-delete', gid)
    assert nova.table('server-group-list') == []
