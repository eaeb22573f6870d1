"""python-openstackclient (``openstack``) through the whole move scenario.

Auth is the admin_token plugin from the shipped clouds.yaml example; OSC negotiates
the microversion per resource (2.100 for servers) unless one is pinned.
"""

import json
import subprocess

import pytest

from tests.clients.conftest import assert_scenario_records, client_env, need_cli

IMAGE = 'cirros-0.6.2-x86_64-disk'


class Osc:
    def __init__(self, live, tmp_path, api_version):
        self.cmd = need_cli('openstack')
        self.env = client_env(OS_CLIENT_CONFIG_FILE=live.clouds_yaml(tmp_path / 'clouds.yaml'),
                              OS_CLOUD='novalite', HOME=str(tmp_path),
                              OS_COMPUTE_API_VERSION=api_version)

    def run(self, *args):
        proc = subprocess.run([self.cmd, *args], env=self.env, capture_output=True,
                              text=True, timeout=120)
        assert proc.returncode == 0, 'openstack %s failed:\n%s\n%s' % (
            ' '.join(args), proc.stdout, proc.stderr)
        return proc.stdout

    def json(self, *args):
        return json.loads(self.run(*args, '-f', 'json'))


@pytest.mark.parametrize('api_version', [None, '2.100'], ids=['negotiated', '2.100'])
def test_osc_scenario(live, tmp_path, api_version):
    osc = Osc(live, tmp_path, api_version)
    flavors = {f['Name']: f for f in osc.json('flavor', 'list')}
    assert {'m1.tiny', 'm1.small'} <= set(flavors)
    assert [i['Name'] for i in osc.json('image', 'list')] == [IMAGE]

    created = osc.json('server', 'create', '--flavor', 'm1.tiny', '--image', IMAGE,
                       '--no-network', 'vm-osc')
    sid = created['id']
    live.wait_for_server(sid, 'ACTIVE')
    listed = {s['ID']: s for s in osc.json('server', 'list')}
    assert listed[sid]['Status'] == 'ACTIVE'
    assert listed[sid]['Flavor'] == 'm1.tiny'
    assert listed[sid]['Image'] == IMAGE
    shown = osc.json('server', 'show', 'vm-osc')
    assert shown['id'] == sid and shown['status'] == 'ACTIVE'

    osc.run('server', 'resize', '--flavor', 'm1.small', sid)
    live.wait_for_server(sid, 'VERIFY_RESIZE')
    osc.run('server', 'resize', 'confirm', sid)
    assert live.wait_for_server(sid, 'ACTIVE')['flavor']['original_name'] == 'm1.small'

    host = live.server(sid)['OS-EXT-SRV-ATTR:host']
    osc.run('server', 'migrate', sid)
    assert live.wait_for_server(sid, 'VERIFY_RESIZE')['OS-EXT-SRV-ATTR:host'] != host
    osc.run('server', 'resize', 'revert', sid)
    assert live.wait_for_server(sid, 'ACTIVE')['OS-EXT-SRV-ATTR:host'] == host

    osc.run('server', 'migrate', '--live-migration', sid)
    live.wait_for_migration(sid, 'live-migration')
    assert live.wait_for_server(sid, 'ACTIVE')['OS-EXT-SRV-ATTR:host'] != host

    migrations = osc.json('server', 'migration', 'list', '--server', sid)
    assert sorted(m['Type'] for m in migrations) == ['live-migration', 'migration',
                                                     'resize']
    assert {m['Status'] for m in migrations} == {'completed', 'reverted', 'confirmed'}
    assert osc.json('server', 'migration', 'list', '--server', sid,
                    '--status', 'completed')[0]['Type'] == 'live-migration'

    events = osc.json('server', 'event', 'list', sid)
    assert [e['Action'] for e in events][::-1] == [
        'create', 'resize', 'confirmResize', 'migrate', 'revertResize', 'live-migration']
    live_req = events[0]['Request ID']
    event = osc.json('server', 'event', 'show', sid, live_req)
    assert event['action'] == 'live-migration'
    assert event['events'], event
    assert_scenario_records(live, sid)

    osc.run('server', 'delete', '--wait', sid)
    assert osc.json('server', 'list') == []


@pytest.mark.parametrize('api_version', [None, '2.29'], ids=['negotiated', '2.29'])
def test_osc_server_evacuate(live, tmp_path, api_version):
    osc = Osc(live, tmp_path, api_version)
    # Booted over REST: before 2.37 OSC cannot boot without a network here.
    server = live.boot(name='vm-evac')
    sid, src = server['id'], server['OS-EXT-SRV-ATTR:host']
    live.cloud.aio.stop_compute(src)
    osc.run('compute', 'service', 'set', '--down', src, 'novalite-compute')
    target = next(h for h in ('compute1', 'compute2', 'compute3') if h != src)
    # No --wait: this OSC's evacuate --wait compares the lower-cased status with
    # 'ACTIVE' and never returns, whatever the cloud.
    args = ['--host', target] if api_version == '2.29' else []
    osc.run('server', 'evacuate', *args, sid)
    # The negotiated version is past 2.95: the server ends stopped there.
    server = live.wait_for_server(sid, 'ACTIVE' if args else 'SHUTOFF')
    assert server['OS-EXT-SRV-ATTR:host'] not in (src, None)
    if args:
        assert server['OS-EXT-SRV-ATTR:host'] == target
    migs = osc.json('server', 'migration', 'list', '--server', sid)
    assert [(m['Type'], m['Status']) for m in migs] == [('evacuation', 'done')]
    events = osc.json('server', 'event', 'list', sid)
    assert [e['Action'] for e in events][::-1] == ['create', 'evacuate']


def test_osc_server_groups(live, tmp_path):
    osc = Osc(live, tmp_path, None)
    group = osc.json('server', 'group', 'create', '--policy', 'anti-affinity', 'spread')
    gid = group['id']
    assert group['name'] == 'spread'
    sids = []
    for i in range(3):
        created = osc.json('server', 'create', '--flavor', 'm1.tiny', '--image', IMAGE,
                           '--no-network', '--hint', f'group={gid}', f'vm-g{i}')
        sids.append(created['id'])
    hosts = [live.wait_for_server(s, 'ACTIVE')['OS-EXT-SRV-ATTR:host'] for s in sids]
    assert sorted(hosts) == ['compute1', 'compute2', 'compute3']
    shown = osc.json('server', 'group', 'show', 'spread')
    assert shown['id'] == gid
    assert shown['policy'] == 'anti-affinity'
    assert sorted(shown['members'].split(', ') if isinstance(shown['members'], str)
                  else shown['members']) == sorted(sids)
    # A fourth member has no host left: ERROR with NoValidHost.
    fourth = osc.json('server', 'create', '--flavor', 'm1.tiny', '--image', IMAGE,
                      '--no-network', '--hint', f'group={gid}', 'vm-g3')['id']
    fault = live.wait_for_server(fourth, 'ERROR')['fault']
    assert 'ServerGroupAntiAffinityFilter removed 3 of 3 hosts' in fault['details']
    listed = osc.json('server', 'group', 'list')
    assert [g['ID'] for g in listed] == [gid]
    for sid in sids + [fourth]:
        osc.run('server', 'delete', '--wait', sid)
    osc.run('server', 'group', 'delete', gid)
    assert osc.json('server', 'group', 'list') == []
